"""A real OpenID provider (npm ``oidc-provider``, tests/oidc_provider/server.mjs) for the identity
tests, plus helpers every ``test_auth_*`` module shares.

The fixtures are ``oidc_provider`` (tests/identity/conftest.py) and ``own_provider``
(tests/conftest.py)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from testkit import ROOT
from testkit.servers.processes import free_port, missing, stop, wait_for_port

PROVIDER_DIR = ROOT / "tests" / "oidc_provider"
CLIENT_ID = "hearthgate"
CLIENT_SECRET = "test-oidc-client-secret-0123456789abcdef"  # noqa: S105 - the test provider's
CALLBACK_URL = "http://localhost/api/auth/oidc/callback"
SPA_URL = "https://spa.example.test/logged-in"


@dataclass
class OidcProvider:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def id_token(self, account: str = "alice", nonce: str | None = None) -> str:
        data = {"grant_type": "urn:hearthgate:test:id-token", "account": account}
        if nonce:
            data["nonce"] = nonce
        response = self.http.post(f"{self.issuer}/token", data=data,
                                  auth=(CLIENT_ID, CLIENT_SECRET), timeout=10)
        response.raise_for_status()
        token: str = response.json()["id_token"]
        return token

    def sign(self, payload: dict[str, Any], **header: Any) -> str:
        """``payload`` signed with the provider's current private key (RS256)."""
        response = self.http.post(f"{self.issuer}/test/sign",
                                  json={"header": header, "payload": payload}, timeout=10)
        response.raise_for_status()
        token: str = response.json()["token"]
        return token

    def rotate(self) -> str:
        kid: str = self.http.post(f"{self.issuer}/test/rotate", timeout=10).json()["kid"]
        return kid

    def set_jwks_max_age(self, seconds: int) -> None:
        self.http.post(f"{self.issuer}/test/jwks-max-age", json={"maxAge": seconds},
                       timeout=10).raise_for_status()

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = self.http.get(f"{self.issuer}/test/stats", timeout=10).json()
        return result

    def jwks(self) -> dict[str, Any]:
        result: dict[str, Any] = self.http.get(f"{self.issuer}/jwks", timeout=10).json()
        return result

    def stop(self) -> None:
        stop(self.proc)

    def config(self, **extra: Any) -> dict[str, Any]:
        """App settings that trust this provider."""
        return {
            "AUTH_OIDC_ISSUER": self.issuer,
            "AUTH_OIDC_AUDIENCE": CLIENT_ID,
            "AUTH_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "AUTH_OIDC_CALLBACK_URL": CALLBACK_URL,
            "AUTH_OIDC_REDIRECT_URIS": [SPA_URL],
            **extra,
        }


def start_provider(tmp: Path, callback_url: str = CALLBACK_URL) -> OidcProvider:
    """The provider, its one client allowed to return to ``callback_url``."""
    node = shutil.which("node")
    if node is None:
        missing("node is not installed")
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        missing("npm oidc-provider is not installed: npm ci --prefix tests/oidc_provider")
    assert node
    port = free_port()
    log = tmp / f"oidc-provider-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [node, str(PROVIDER_DIR / "server.mjs"), str(port), callback_url, CLIENT_SECRET],
            cwd=PROVIDER_DIR, stdout=out, stderr=subprocess.STDOUT,
        )
    provider = OidcProvider(port=port, proc=proc, log=log)
    try:
        wait_for_port(port, proc=proc)
    except Exception:
        provider.stop()
        raise
    return provider


# -- JOSE helpers for hand-made tokens ---------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    head, body, signature = token.split(".")

    def pad(segment: str) -> str:
        return segment + "=" * (-len(segment) % 4)

    return (json.loads(base64.urlsafe_b64decode(pad(head))),
            json.loads(base64.urlsafe_b64decode(pad(body))), signature)


# -- secrets must never reach a log line ---------------------------------------------------------


class SecretWatch:
    """Values a test handled (tokens, passwords); none may appear in any captured log record."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, *values: str | None) -> None:
        for value in values:
            if value and len(value) >= 8:
                self.values.add(value)
