"""The plugin contract. Every hook is declared here, typed and documented; a plugin module
implements some of them with ``@hookimpl``. Built-in plugins (``plugins/``) use the same hooks
as third-party packages registered under the ``hearthgate`` entry-point group, which import what
they need from ``app.plugin_api``.

A hook implementation may take fewer arguments than its specification (pluggy passes only the
ones it names), so an argument added to a hook breaks no plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from urllib.parse import SplitResult

    import click
    from flask import Blueprint, Flask

    from app.hooktypes import LoginProvider, Verifier
    from app.models import User
    from app.secrets import SecretStore
    from app.settings import Setting

hookspec = pluggy.HookspecMarker("hearthgate")
hookimpl = pluggy.HookimplMarker("hearthgate")


@hookspec(firstresult=True)
def secret_store(
    scheme: str, url: SplitResult, query: dict[str, list[str]], config: dict[str, Any]
) -> SecretStore | None:
    """Open the secret store for ``SECRET_STORE_URL``.

    :param scheme: the URL's scheme, e.g. ``vault``; return ``None`` for a scheme you don't serve.
    :param url: the split URL.
    :param query: the URL's parsed query string (store options such as ``enable_set``).
    :param config: the settings read so far (no secrets yet).
    """


@hookspec
def login_providers(app: Flask) -> list[LoginProvider] | None:
    """Login providers for ``POST /api/auth/login``; each decides whether it handles a body.

    :param app: the application being built.
    """


@hookspec
def webhook_verifiers(app: Flask) -> dict[str, Verifier] | None:
    """Webhook signature verifiers by provider name (e.g. ``{"hyperbeam": verify}``).

    :param app: the application being built.
    """


@hookspec(firstresult=True)
def limiter_storage(uri: str, config: dict[str, Any]) -> str | None:
    """Accept a rate-limiter storage URI (return it, possibly rewritten) or ``None``.

    :param uri: ``RATELIMIT_STORAGE_URI``.
    :param config: the application's settings.
    """


@hookspec
def permissions_for_user(user: User, claims: dict[str, Any] | None) -> list[str] | None:
    """Extra permissions for a user at login or refresh (e.g. mapped from provider groups).

    Called whenever an access token is minted. A session (refresh-token family) keeps the claims
    it was opened with, so a login and every refresh of its session pass the same ``claims``:
    a grant derived from them lasts as long as the session, and changes at the user's next login.

    :param user: the ``User`` row.
    :param claims: the verified ID-token claims the session was opened with (ID-token login or
        the authorization-code flow; without ``nonce``, ``at_hash`` and ``c_hash``), or ``None``
        for sessions that did not come from an identity provider (local accounts).
    """


@hookspec
def audit_sink(event: dict[str, Any], app: Flask) -> None:
    """Forward a committed audit event (already redacted) to an external sink. Called from the
    worker's audit-sink thread, one event at a time, in commit order, inside an application
    context of ``app``; may block (it holds no request), and an exception is logged.

    :param event: the event as stored: chain, seq, action, resource, decision, hashes...
    :param app: the application; ``app.config`` holds every setting (a plugin's own from
        ``register_settings`` included, secrets resolved).
    """


@hookspec
def audit_witness(
    chain: str, note: str, consistency: Callable[[int], list[bytes]], app: Flask
) -> None:
    """Witness an audit checkpoint: keep it outside the service's database, and refuse one that
    does not extend the checkpoint you hold. Called from the worker's audit-checkpoint thread (or
    ``flask audit checkpoint``) after the checkpoint committed, in order per chain, inside an
    application context of ``app``; may block.

    :param chain: the chain (``hearthgate/<chain>`` is the note's origin).
    :param note: the checkpoint as a C2SP signed note (verify it with the audit public key).
    :param consistency: ``consistency(old_size)`` returns the RFC 9162 consistency proof from the
        tree of ``old_size`` entries to this checkpoint's (``app.audit.merkle.verify_consistency``).
    :param app: the application; ``app.config`` holds every setting (a plugin's own included).
    :raises WitnessRefused: (``app.plugin_api``) to refuse it; the service logs that at ERROR.
    """


@hookspec(firstresult=True)
def mail_sender(
    config: dict[str, Any], instance_path: str
) -> Callable[[str, str, str], None] | None:
    """A ``send(to, subject, body)`` callable for outgoing mail (password resets).

    ``send`` is called from the mail queue's thread, outside any request or application context
    (``plugins.mail.MailQueue``): it takes what it needs from ``config`` now. What it raises
    is logged by type only.

    :param config: the application's settings.
    :param instance_path: the Flask instance folder.
    """


@hookspec
def register_blueprints(app: Flask) -> list[Blueprint] | None:
    """Extra blueprints to register on the application. Every route must be declared with
    ``app.gateway.contracts.endpoint``: a plain Flask route refuses the start, naming it.

    :param app: the application being built.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``flask`` command line.

    :param cli: the application's command group.
    """


@hookspec
def register_settings() -> list[Setting] | None:
    """The plugin's own settings, declared as the core declares its (``app.settings.Setting``).

    Each is read from the environment with its default, parsed by its kind, read through the
    secret store when it is a secret (a value ``secret:NAME`` as well), listed by ``flask security
    check`` and visible to every other hook in ``config``. A name that the core, Flask or
    another plugin already declares refuses the start.
    """


@hookspec
def startup_checks(config: dict[str, Any]) -> list[str] | None:
    """Unsafe-configuration messages; in production any message refuses the start.

    :param config: the application's settings, secrets resolved.
    """
