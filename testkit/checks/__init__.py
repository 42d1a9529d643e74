"""pytest plugins that every test runs under, loaded by ``tests/conftest.py``."""
