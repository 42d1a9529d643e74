"""The OpenID provider's metadata and signing keys, fetched over HTTP and cached.

The key set is kept for the Cache-Control max-age of its response (bounded), refetched at most
once per cooldown when a token names an unknown ``kid`` (so a flood of invented kids costs one
fetch), and kept past its expiry while the provider cannot be reached (stale-if-error).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

log = logging.getLogger(__name__)

DEFAULT_TTL = 300.0
MIN_TTL = 30.0
MAX_TTL = 24 * 3600.0
HTTP_TIMEOUT = 3.0
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)


class ProviderUnavailable(Exception):
    """The provider could not be reached and nothing usable is cached."""


def cache_ttl(cache_control: str | None) -> float:
    if not cache_control or "no-store" in cache_control.lower():
        return DEFAULT_TTL if not cache_control else MIN_TTL
    match = _MAX_AGE.search(cache_control)
    if match is None:
        return DEFAULT_TTL
    return min(max(float(match.group(1)), MIN_TTL), MAX_TTL)


class ProviderKeys:
    """Discovery document and JWKS of one issuer, thread-safe, fetched lazily."""

    def __init__(
        self,
        issuer: str,
        cooldown: float,
        http: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.cooldown = cooldown
        self.http = http or requests.Session()
        self.clock = clock
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._keys_expire = 0.0
        self._last_fetch: float | None = None

    # -- discovery ------------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            with self._lock:
                if self._metadata is None:
                    self._metadata = self._discover()
        return self._metadata

    def _discover(self) -> dict[str, Any]:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            response = self.http.get(url, timeout=HTTP_TIMEOUT, allow_redirects=False)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise ProviderUnavailable(f"discovery failed: {type(exc).__name__}") from None
        if not isinstance(document, dict) or document.get("issuer") != self.issuer:
            raise ProviderUnavailable("discovery document names another issuer")
        if not isinstance(document.get("jwks_uri"), str):
            raise ProviderUnavailable("discovery document has no jwks_uri")
        return document

    # -- keys -----------------------------------------------------------------------------------

    def key_set(self) -> KeySet:
        """The cached key set, refreshed when its max-age has passed (stale-if-error)."""
        now = self.clock()
        if self._keys is not None and now < self._keys_expire:
            return self._keys
        with self._lock:
            if self._keys is None or self.clock() >= self._keys_expire:
                self._refresh()
        if self._keys is None:
            raise ProviderUnavailable("no key set")
        return self._keys

    def key_set_with(self, kid: str) -> KeySet:
        """The key set, refetched once per cooldown when ``kid`` is not in it."""
        keys = self.key_set()
        if _has_kid(keys, kid):
            return keys
        with self._lock:
            keys = self._keys or keys
            if _has_kid(keys, kid):
                return keys
            last = self._last_fetch
            if last is None or self.clock() - last >= self.cooldown:
                self._refresh()
        return self._keys or keys

    def _refresh(self) -> None:
        """Fetch the JWKS; on failure keep the last good set (if any)."""
        self._last_fetch = self.clock()
        try:
            uri = self.metadata()["jwks_uri"]
            response = self.http.get(uri, timeout=HTTP_TIMEOUT, allow_redirects=False)
            response.raise_for_status()
            keys = KeySet.import_key_set(_public_only(response.json()))  # type: ignore[arg-type]
        except (requests.RequestException, ValueError, TypeError, KeyError, JoseError,
                ProviderUnavailable) as exc:
            if self._keys is None:
                raise ProviderUnavailable(f"JWKS fetch failed: {type(exc).__name__}") from None
            log.warning("JWKS refresh failed (%s); using the cached keys", type(exc).__name__)
            self._keys_expire = self.clock() + min(self.cooldown, DEFAULT_TTL)
            return
        self._keys = keys
        self._keys_expire = self.clock() + cache_ttl(response.headers.get("Cache-Control"))


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)


def _public_only(document: Any) -> dict[str, Any]:
    """Only asymmetric public signing keys: a provider's JWKS never legitimately holds more."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK set")
    private = {"d", "p", "q", "dp", "dq", "qi", "k"}
    keys = [
        key for key in document["keys"]
        if isinstance(key, dict) and key.get("kty") in {"RSA", "EC", "OKP"}
        and key.get("use", "sig") == "sig" and not private & set(key)
    ]
    return {"keys": keys}
