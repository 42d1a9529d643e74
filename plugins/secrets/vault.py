"""``vault://HOST:PORT/MOUNT/PREFIX?tls=false``: HashiCorp Vault (or OpenBao) KV version 2 via hvac.

Secret ``NAME`` is the KV entry ``PREFIX/NAME`` (a household's ``PREFIX/tenant/<id>/NAME``, so a
policy can grant one household's subtree), field ``value``. ``set`` writes a new version (older
ones are kept); ``remove`` deletes the metadata, i.e. every version.

Credentials: ``VAULT_TOKEN``, or ``VAULT_ROLE_ID`` + ``VAULT_SECRET_ID`` for AppRole (logged in
lazily and again when the token has expired). Query options: ``tls`` (default true), ``ca`` (CA
bundle path), ``approle_mount`` (default ``approle``), ``namespace``, ``timeout`` (seconds, 5).
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import SplitResult

from app.hookspecs import hookimpl
from app.logs import redactor
from app.secrets import (
    BackendUnavailable,
    SecretAccessDenied,
    SecretStore,
    StoreOptions,
    backend_path,
)

VALUE_FIELD = "value"


class VaultStore(SecretStore):
    name = "vault"

    def __init__(
        self,
        address: str,
        mount: str,
        prefix: str = "",
        *,
        token: str | None = None,
        role_id: str | None = None,
        secret_id: str | None = None,
        approle_mount: str = "approle",
        verify: bool | str = True,
        namespace: str | None = None,
        timeout: float = 5.0,
        options: StoreOptions | None = None,
    ) -> None:
        import hvac

        super().__init__(options)
        if not token and not (role_id and secret_id):
            raise ValueError("vault:// needs VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID")
        self.address = address
        self.mount = mount
        self.prefix = prefix.strip("/")
        self._role = (role_id, secret_id) if role_id and secret_id else None
        self._approle_mount = approle_mount
        self._login_lock = threading.Lock()
        self._client = hvac.Client(
            url=address, token=token, verify=verify, namespace=namespace, timeout=timeout
        )
        self._logged_in = bool(token) and self._role is None

    def describe(self) -> str:
        return f"vault {self.address} {self.mount}/{self.prefix}"

    def path_of(self, name: str) -> str:
        path = backend_path(name)
        return f"{self.prefix}/{path}" if self.prefix else path

    # -- backend calls, with one AppRole re-login when the token was refused --------------
    def _call(self, names: list[str], operation: Any) -> Any:
        import hvac.exceptions as errors
        import requests

        for attempt in (1, 2):
            try:
                self._login()
                return operation(self._client.secrets.kv.v2)
            except errors.Forbidden:
                if attempt == 1 and self._role is not None:
                    self._logged_in = False  # the token may have expired: log in afresh
                    continue
                raise SecretAccessDenied(names, self.name) from None
            except (errors.VaultError, requests.RequestException) as exc:
                if isinstance(exc, errors.InvalidPath):
                    raise
                raise BackendUnavailable(self.name, type(exc).__name__) from None
        raise AssertionError("unreachable")

    def _login(self) -> None:
        if self._logged_in:
            return
        import hvac.exceptions as errors
        import requests

        with self._login_lock:
            if self._logged_in or self._role is None:
                return
            role_id, secret_id = self._role
            try:
                self._client.auth.approle.login(
                    role_id=role_id, secret_id=secret_id, mount_point=self._approle_mount
                )
            except (errors.VaultError, requests.RequestException) as exc:
                reason = f"AppRole login: {type(exc).__name__}"
                raise BackendUnavailable(self.name, reason) from None
            redactor.add(self._client.token)
            self._logged_in = True

    # -- the store ------------------------------------------------------------------------
    def check(self) -> None:
        import hvac.exceptions as errors
        import requests

        try:
            self._client.sys.read_health_status(method="GET")
        except (errors.VaultError, requests.RequestException) as exc:
            raise BackendUnavailable(self.name, type(exc).__name__) from None
        self._login()
        try:
            authenticated = self._client.is_authenticated()
        except requests.RequestException as exc:
            raise BackendUnavailable(self.name, type(exc).__name__) from None
        if not authenticated:
            raise BackendUnavailable(self.name, "the token is not valid")

    def backend_fetch(self, names: list[str]) -> dict[str, str]:
        import hvac.exceptions as errors

        found: dict[str, str] = {}
        for name in names:
            path = self.path_of(name)
            try:
                response = self._call([name], lambda kv, path=path: kv.read_secret_version(
                    path=path, mount_point=self.mount, raise_on_deleted_version=True))
            except errors.InvalidPath:
                continue
            value = (response.get("data") or {}).get("data", {}).get(VALUE_FIELD)
            if isinstance(value, str):
                found[name] = value
        return found

    def backend_store(self, name: str, value: str) -> None:
        path = self.path_of(name)
        self._call([name], lambda kv: kv.create_or_update_secret(
            path=path, secret={VALUE_FIELD: value}, mount_point=self.mount))

    def backend_delete(self, name: str) -> None:
        import hvac.exceptions as errors

        path = self.path_of(name)
        try:
            self._call([name], lambda kv: kv.delete_metadata_and_all_versions(
                path=path, mount_point=self.mount))
        except errors.InvalidPath:
            pass


def _flag(query: dict[str, list[str]], name: str, default: bool) -> bool:
    if name not in query:
        return default
    return query[name][-1].lower() in {"1", "true", "yes", "on"}


@hookimpl
def secret_store(
    scheme: str, url: SplitResult, query: dict[str, list[str]], config: dict[str, Any]
) -> SecretStore | None:
    if scheme != "vault":
        return None
    if not url.hostname:
        raise ValueError("vault:// secret store URL needs a host: vault://HOST:PORT/MOUNT/PREFIX")
    mount, _, prefix = url.path.strip("/").partition("/")
    if not mount:
        raise ValueError("vault:// secret store URL needs a KV v2 mount: vault://HOST:PORT/MOUNT")
    tls = _flag(query, "tls", True)
    port = f":{url.port}" if url.port else ""
    address = f"{'https' if tls else 'http'}://{url.hostname}{port}"
    verify: bool | str = query["ca"][-1] if "ca" in query else True
    for credential in ("VAULT_TOKEN", "VAULT_ROLE_ID", "VAULT_SECRET_ID"):
        if config.get(credential):
            redactor.add(str(config[credential]))
    return VaultStore(
        address, mount, prefix,
        token=config.get("VAULT_TOKEN"),
        role_id=config.get("VAULT_ROLE_ID"),
        secret_id=config.get("VAULT_SECRET_ID"),
        approle_mount=query.get("approle_mount", ["approle"])[-1],
        verify=verify,
        namespace=query.get("namespace", [None])[-1],
        timeout=float(query.get("timeout", ["5"])[-1]),
        options=StoreOptions.from_query(query),
    )
