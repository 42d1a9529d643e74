"""``file:///run/secrets``: one file per secret, as Docker and Kubernetes mount them. Read-only.

Secret ``NAME`` is the file ``DIR/NAME`` (a household's ``tenant/<id>/NAME``); one trailing
newline is stripped, since editors and ``echo`` add one. A name never leaves the directory:
names cannot contain ``/`` or start with ``.``, and a symlink resolving outside is not followed
(Kubernetes' ``..data`` links stay inside, so they work).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote

from app.hookspecs import hookimpl
from app.secrets import BackendUnavailable, SecretStore, StoreOptions, backend_path

log = logging.getLogger(__name__)


class FileStore(SecretStore):
    name = "file"

    def __init__(self, directory: Path | str, options: StoreOptions | None = None) -> None:
        options = options or StoreOptions()
        if options.enable_set or options.enable_remove:
            raise ValueError("file:// secret stores are read-only (no enable_set/enable_remove)")
        super().__init__(options)
        self.directory = Path(directory)

    def describe(self) -> str:
        return f"file://{self.directory}"

    def check(self) -> None:
        if not self.directory.is_dir():
            raise BackendUnavailable(self.name, f"{self.directory} is not a directory")

    def backend_fetch(self, names: list[str]) -> dict[str, str]:
        self.check()
        root = self.directory.resolve()
        found: dict[str, str] = {}
        for name in names:
            path = (root / backend_path(name)).resolve()
            if not path.is_relative_to(root):
                log.warning("secret %s resolves outside %s; ignored", name, root)
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                continue
            except (OSError, UnicodeDecodeError) as exc:
                raise BackendUnavailable(self.name, f"{name}: {type(exc).__name__}") from None
            found[name] = _strip_newline(text)
        return found


def _strip_newline(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


@hookimpl
def secret_store(
    scheme: str, url: SplitResult, query: dict[str, list[str]], config: dict[str, Any]
) -> SecretStore | None:
    if scheme != "file":
        return None
    if url.netloc not in ("", "localhost"):
        raise ValueError("file:// secret store URL must be file:///ABSOLUTE/DIRECTORY")
    directory = unquote(url.path)
    if not directory.startswith("/"):
        raise ValueError("file:// secret store URL must name an absolute directory")
    return FileStore(directory, StoreOptions.from_query(query))
