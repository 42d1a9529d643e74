"""Secret stores, one module per URL scheme."""
