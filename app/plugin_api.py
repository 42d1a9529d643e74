"""The public API for plugin authors: import from here, and only from here.

Everything this module offers keeps its name and meaning across minor versions of Hearthgate (a
change that breaks a plugin written against it comes with a major version and a note in the
README); every other module of ``app`` and ``plugins`` is internal and may change at any time.
The hooks themselves are specified, typed and documented in ``app.hookspecs`` (the README's
"Writing a plugin" lists them); ``app.plugin_testing`` is the matching pytest plugin.

- ``hookimpl`` marks a hook implementation;
- ``Setting`` declares a plugin's own setting (``register_settings``), ``settings_table`` renders
  the README table of settings; ``ConfigurationRefused`` refuses the start;
- ``SecretStore`` and ``StoreOptions`` make a secret store (``secret_store``), with its errors and
  the name helpers ``check_name`` and ``backend_path``; ``secret_store(app)`` is the
  application's store;
- ``endpoint`` declares a route's contract (``register_blueprints``) with ``Header``, answers
  with ``Reply``, reads the caller as ``Principal`` and the request as ``Call``; ``Body`` and
  ``Schema`` are the bases of request and response models;
- ``LoginProvider``, ``LoginBody``, ``Identity``, ``LoginFailed`` (``login_providers``),
  ``Verifier``, ``WebhookRejected`` (``webhook_verifiers``), ``User`` (``permissions_for_user``)
  and ``WitnessRefused`` (``audit_witness``) type the other hooks.
"""

from __future__ import annotations

from app.audit.witness import WitnessRefused
from app.config import ConfigurationRefused
from app.context import Principal
from app.gateway.contracts import Call, Header, Reply, endpoint
from app.gateway.schemas import Body, Schema
from app.hookspecs import hookimpl
from app.hooktypes import Identity, LoginBody, LoginFailed, LoginProvider, Verifier, WebhookRejected
from app.models import User
from app.secrets import (
    BackendUnavailable,
    InvalidSecretName,
    OperationDisabled,
    SecretAccessDenied,
    SecretNotFound,
    SecretStore,
    SecretStoreError,
    StoreOptions,
    backend_path,
    check_name,
    secret_store,
)
from app.settings import Kind, Setting, settings_table

__all__ = [
    "BackendUnavailable",
    "Body",
    "Call",
    "ConfigurationRefused",
    "Header",
    "Identity",
    "InvalidSecretName",
    "Kind",
    "LoginBody",
    "LoginFailed",
    "LoginProvider",
    "OperationDisabled",
    "Principal",
    "Reply",
    "Schema",
    "SecretAccessDenied",
    "SecretNotFound",
    "SecretStore",
    "SecretStoreError",
    "Setting",
    "StoreOptions",
    "User",
    "Verifier",
    "WebhookRejected",
    "WitnessRefused",
    "backend_path",
    "check_name",
    "endpoint",
    "hookimpl",
    "secret_store",
    "settings_table",
]
