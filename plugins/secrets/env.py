"""``env://`` (optionally ``env://?prefix=HG_``): secrets are environment variables, as Heroku
config vars are. Read-only: a process cannot change its own deployment's config vars."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult

from app.hookspecs import hookimpl
from app.secrets import SecretStore, StoreOptions


class EnvStore(SecretStore):
    name = "env"

    def __init__(
        self, prefix: str = "", environ: Mapping[str, str] | None = None,
        options: StoreOptions | None = None,
    ) -> None:
        super().__init__(options)
        self.prefix = prefix
        self._environ = environ

    def backend_fetch(self, names: list[str]) -> dict[str, str]:
        environ = os.environ if self._environ is None else self._environ
        found = {}
        for name in names:
            value = environ.get(self.prefix + name)
            if value is not None:
                found[name] = value
        return found


@hookimpl
def secret_store(
    scheme: str, url: SplitResult, query: dict[str, list[str]], config: dict[str, Any]
) -> SecretStore | None:
    if scheme != "env":
        return None
    prefix = query.get("prefix", [""])[-1]
    return EnvStore(prefix=prefix, options=StoreOptions.from_query(query))
