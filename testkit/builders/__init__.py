"""Rows, users, tokens and clients that tests and benchmarks build before they act."""
