"""Identity: local accounts, OIDC login, sessions and tokens, step-up, email addresses, voice
sessions. ``oidc_provider`` is one real OpenID provider for the session; a test that rotates keys or
stops the provider takes ``own_provider`` (tests/conftest.py) instead."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testkit.servers.oidc import OidcProvider, start_provider


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """One provider for the session; tests that rotate keys or stop it start their own."""
    provider = start_provider(tmp_path_factory.mktemp("oidc"))
    yield provider
    provider.stop()
