"""One adapter per store for the shared contract tests: open the store through its URL and the
plugin hook, write values straight into the backend (behind the store's back), cause an outage."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from app.plugins import build_manager
from app.secrets import BackendUnavailable, SecretStore, backend_path, split_store_url
from testkit.servers.secrets import Moto, OpenBao, moto_server, openbao_server, unique_prefix

ALL_STORES = ("memory", "env", "file", "vault", "aws-sm")
WRITABLE_STORES = ("memory", "vault", "aws-sm")


def open_store(url: str, **config: Any) -> SecretStore:
    scheme, parts, query = split_store_url(url)
    store: SecretStore | None = build_manager().hook.secret_store(
        scheme=scheme, url=parts, query=query, config=config)
    assert store is not None, url
    return store


def _query(writable: bool, ttl: float) -> dict[str, str]:
    flag = "true" if writable else "false"
    return {"enable_set": flag, "enable_remove": flag, "cache_ttl": str(ttl)}


class Backend:
    """What every adapter offers the contract tests."""

    kind = ""
    writable = False

    def open(self, writable: bool = False, ttl: float = 0) -> SecretStore:
        raise NotImplementedError

    def seed(self, name: str, value: str) -> None:
        raise NotImplementedError

    def read(self, name: str) -> str | None:
        raise NotImplementedError

    @contextmanager
    def outage(self, store: SecretStore) -> Iterator[None]:
        raise NotImplementedError
        yield


class MemoryBackend(Backend):
    kind, writable = "memory", True

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def open(self, writable: bool = False, ttl: float = 0) -> SecretStore:
        query = "&".join(f"{k}={v}" for k, v in _query(writable, ttl).items())
        store = open_store(f"memory://?{query}")
        store._values = self.values  # type: ignore[attr-defined]  # share the backend's dict
        return store

    def seed(self, name: str, value: str) -> None:
        self.values[name] = value

    def read(self, name: str) -> str | None:
        return self.values.get(name)

    @contextmanager
    def outage(self, store: SecretStore) -> Iterator[None]:
        # An in-process dict cannot go down; the outage is simulated at the fetch boundary.
        def down(names: list[str]) -> dict[str, str]:
            raise BackendUnavailable(store.name, "simulated")

        original = store.backend_fetch
        store.backend_fetch = down  # type: ignore[method-assign]
        yield
        store.backend_fetch = original  # type: ignore[method-assign]


class EnvBackend(MemoryBackend):
    kind, writable = "env", False

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__()
        self.monkeypatch = monkeypatch
        self.prefix = unique_prefix("env").replace("-", "_").upper() + "_"

    def open(self, writable: bool = False, ttl: float = 0) -> SecretStore:
        query = "&".join(f"{k}={v}" for k, v in _query(writable, ttl).items())
        return open_store(f"env://?prefix={self.prefix}&{query}")

    def seed(self, name: str, value: str) -> None:
        self.monkeypatch.setenv(self.prefix + name, value)

    def read(self, name: str) -> str | None:
        return os.environ.get(self.prefix + name)


class FileBackend(Backend):
    kind, writable = "file", False

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir()

    def open(self, writable: bool = False, ttl: float = 0) -> SecretStore:
        query = "&".join(f"{k}={v}" for k, v in _query(writable, ttl).items())
        return open_store(f"file://{self.directory}?{query}")

    def seed(self, name: str, value: str) -> None:
        path = self.directory / backend_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")

    def read(self, name: str) -> str | None:
        path = self.directory / backend_path(name)
        return path.read_text().removesuffix("\n") if path.exists() else None

    @contextmanager
    def outage(self, store: SecretStore) -> Iterator[None]:
        aside = self.directory.with_name(self.directory.name + "-unmounted")
        self.directory.rename(aside)  # the volume is gone
        try:
            yield
        finally:
            aside.rename(self.directory)


class VaultBackend(Backend):
    kind, writable = "vault", True

    def __init__(self, server: OpenBao, stack: ExitStack) -> None:
        self.server = server
        self.stack = stack
        self.prefix = unique_prefix("vault")

    def open(self, writable: bool = False, ttl: float = 0) -> SecretStore:
        return open_store(self.server.url(self.prefix, **_query(writable, ttl)),
                          VAULT_TOKEN=self.server.root_token)

    def _path(self, name: str) -> str:
        return f"{self.prefix}/{backend_path(name)}"

    def seed(self, name: str, value: str) -> None:
        self.server.client().secrets.kv.v2.create_or_update_secret(
            path=self._path(name), secret={"value": value}, mount_point="secret")

    def read(self, name: str) -> str | None:
        import hvac.exceptions

        try:
            response = self.server.client().secrets.kv.v2.read_secret_version(
                path=self._path(name), mount_point="secret", raise_on_deleted_version=True)
        except hvac.exceptions.InvalidPath:
            return None
        value: str = response["data"]["data"]["value"]
        return value

    def private(self) -> VaultBackend:
        """The same adapter on a server of its own, which the test may stop."""
        return VaultBackend(self.stack.enter_context(openbao_server()), self.stack)

    @contextmanager
    def outage(self, store: SecretStore) -> Iterator[None]:
        self.server.stop()
        yield


class AwsBackend(Backend):
    kind, writable = "aws-sm", True

    def __init__(self, server: Moto, stack: ExitStack) -> None:
        self.server = server
        self.stack = stack
        self.prefix = unique_prefix("aws")

    def open(self, writable: bool = False, ttl: float = 0) -> SecretStore:
        return open_store(self.server.url(self.prefix, **_query(writable, ttl)))

    def _id(self, name: str) -> str:
        return f"{self.prefix}/{backend_path(name)}"

    def seed(self, name: str, value: str) -> None:
        client = self.server.client()
        try:
            client.put_secret_value(SecretId=self._id(name), SecretString=value)
        except client.exceptions.ResourceNotFoundException:
            client.create_secret(Name=self._id(name), SecretString=value)

    def read(self, name: str) -> str | None:
        client = self.server.client()
        try:
            value: str = client.get_secret_value(SecretId=self._id(name))["SecretString"]
        except client.exceptions.ResourceNotFoundException:
            return None
        return value

    def private(self) -> AwsBackend:
        return AwsBackend(self.stack.enter_context(moto_server()), self.stack)

    @contextmanager
    def outage(self, store: SecretStore) -> Iterator[None]:
        self.server.stop()
        yield


def make_backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch, stack: ExitStack) -> Backend:
    if kind == "memory":
        return MemoryBackend()
    if kind == "env":
        return EnvBackend(monkeypatch)
    if kind == "file":
        return FileBackend(tmp_path / "secrets")
    if kind == "vault":
        return VaultBackend(request.getfixturevalue("openbao"), stack)
    request.getfixturevalue("aws_credentials")
    return AwsBackend(request.getfixturevalue("moto"), stack)
