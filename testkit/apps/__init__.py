"""Blueprints and WSGI modules that exist only for tests."""
