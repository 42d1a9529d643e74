"""WSGI entry point for gunicorn and ``FLASK_APP=wsgi``."""

from app import create_app

app = create_app()
