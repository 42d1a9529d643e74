"""WSGI entry point for gunicorn and ``FLASK_APP=wsgi``.

A refused configuration stops gunicorn and ``flask run`` with the refusal. The ``flask`` command
line gets an application that can only say why (``flask security check`` prints the report), so
that an operator sees every unsafe setting instead of a traceback.
"""

from app import create_app
from app.cli import loading_for_a_command, refused_app
from app.config import ConfigurationError, ConfigurationRefused

try:
    app = create_app()
except (ConfigurationRefused, ConfigurationError) as refused:
    if not loading_for_a_command():
        raise
    app = refused_app(refused)
