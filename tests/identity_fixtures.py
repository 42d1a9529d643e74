"""Fixtures of the identity tests, loaded as a plugin by the ``test_auth_*`` modules
(``pytest_plugins``) so that the session-scoped provider starts once; those modules apply
``secret_watch`` to every test they hold. Never import this module directly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.identity_services import OidcProvider, SecretWatch, start_provider


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """One provider for the session; tests that rotate keys or stop it start their own."""
    provider = start_provider(tmp_path_factory.mktemp("oidc"))
    yield provider
    provider.stop()


@pytest.fixture
def own_provider(tmp_path: Path) -> Iterator[OidcProvider]:
    provider = start_provider(tmp_path)
    yield provider
    provider.stop()


@pytest.fixture
def secret_watch(caplog: pytest.LogCaptureFixture) -> Iterator[SecretWatch]:
    import logging

    caplog.set_level(logging.DEBUG)
    watch = SecretWatch()
    yield watch
    text = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''}"
        for phase in ("setup", "call") for r in caplog.get_records(phase)  # type: ignore[arg-type]
    )
    leaked = [v[:12] + "…" for v in watch.values if v in text]
    assert not leaked, f"secret values in log output: {leaked}"
