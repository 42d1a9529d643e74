"""Households, members, items and outfits, and invitations, through HTTP. No fixture is shared
by this folder alone (``app``, ``client``, ``auth`` are in tests/conftest.py)."""
