"""Application state is reached only through typed slots (``app/state.py``): no module of app/,
plugins/, tests/ or bench/ touches ``app.extensions`` under a Hearthgate key, an app keeps one
entry of its own there, and a slot reads and writes its own app's value only."""

from __future__ import annotations

import ast
import importlib
import os
import pkgutil
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from app import state
from app.state import AppState, Slot

# The repository: the folder of .importlinter above this module (wherever tests/ nests it).
ROOT = next(p for p in Path(__file__).resolve().parents if (p / ".importlinter").is_file())
SWEPT = ("app", "plugins", "tests", "bench")
# The accessor itself, and this module, which reads app.extensions to prove the state's entry is
# the only Hearthgate one.
EXEMPT = {ROOT / "app" / "state.py", Path(__file__).resolve()}
KEY_METHODS = {"get", "setdefault", "pop", "__getitem__", "__setitem__", "__delitem__",
               "__contains__"}


def _foreign_key(node: ast.AST | None) -> bool:
    """A literal key that is not Hearthgate's (another extension's entry may be read)."""
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)
            and not node.value.startswith("hearthgate"))


def extension_accesses(source: str) -> list[int]:
    """Lines where ``<anything>.extensions`` is used other than with a literal key that is not
    Hearthgate's: a Hearthgate key, a key held in a name or constant, or the dict itself handed
    on (aliased, iterated, passed), which would hide the key from this check."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr == "extensions"):
            continue
        parent = parents.get(node)
        if isinstance(parent, ast.Subscript) and parent.value is node:
            allowed = _foreign_key(parent.slice)
        elif (isinstance(parent, ast.Attribute) and parent.attr in KEY_METHODS
              and isinstance(call := parents.get(parent), ast.Call) and call.func is parent):
            allowed = bool(call.args) and _foreign_key(call.args[0])
        elif (isinstance(parent, ast.Compare) and node in parent.comparators
              and all(isinstance(op, (ast.In, ast.NotIn)) for op in parent.ops)):
            allowed = _foreign_key(parent.left)
        else:
            allowed = False
        if not allowed:
            found.append(node.lineno)
    return sorted(found)


def swept_files() -> Iterator[Path]:
    for top in SWEPT:
        for folder, subfolders, files in os.walk(ROOT / top):  # symlinks are not followed
            # tests/fixtures holds packages written as third parties write them (their own keys).
            subfolders[:] = [d for d in subfolders
                             if d not in ("node_modules", "__pycache__", "fixtures")]
            for name in files:
                if name.endswith(".py"):
                    yield Path(folder) / name


def test_no_module_reaches_app_extensions_under_a_hearthgate_key() -> None:
    files = [path for path in swept_files() if path not in EXEMPT]
    offenders = {
        str(path.relative_to(ROOT)): lines for path in files
        if (lines := extension_accesses(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}, (
        "app.extensions is reached outside app/state.py; declare a Slot next to the value's type "
        f"and use SLOT.get(app) / .find / .set / .setdefault / .pop: {offenders}"
    )
    # The sweep saw every package it names, and would see the accessor's own accesses.
    assert {path.relative_to(ROOT).parts[0] for path in files} == set(SWEPT)
    assert len(extension_accesses((ROOT / "app" / "state.py").read_text(encoding="utf-8"))) >= 3


def test_the_sweep_flags_every_form_of_a_hearthgate_key_and_no_other_extension() -> None:
    refused = textwrap.dedent('''
        KEY = "hearthgate.db"
        app.extensions["hearthgate.db"]()
        current_app.extensions["hearthgate.limiter"] = limiter
        self.app.extensions.get("hearthgate.mail")
        app.extensions.setdefault("hearthgate.readiness", {})
        app.extensions.pop("hearthgate.dev_principal", None)
        assert "hearthgate.limiter" not in app.extensions
        app.extensions[KEY]
        app.extensions[module.KEY]
        extensions = app.extensions
        for name in app.extensions: pass
        describe(app.extensions)
    ''')
    assert extension_accesses(refused) == list(range(3, 14))
    allowed = textwrap.dedent('''
        app.extensions["cors"]
        app.extensions.get("sqlalchemy")
        assert "limiter" in app.extensions
        KEY = "hearthgate.db"  # a string alone reaches nothing
    ''')
    assert extension_accesses(allowed) == []


# Every slot a default test app sets while it starts (a new piece of state belongs here).
STARTED = {
    "db", "db.engine", "db.begin_steps", "db.on_commit", "plugins", "secrets", "tokens", "verified_tokens", "readiness",
    "trusted_proxy_count", "login_providers", "login_throttle", "audit.signer",
    "audit.checkpointer", "audit_sinks", "plugin_settings", "ratelimit_storage", "crypto.keys",
}


def test_an_app_keeps_one_extension_entry_of_its_own(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    assert [key for key in app.extensions if key.startswith("hearthgate")] == ["hearthgate"]
    found = app.extensions["hearthgate"]
    assert isinstance(found, AppState) and state.of(app) is found
    # store_fallbacks lives from the configuration until the secret store is open, no longer.
    assert {slot.name for slot in found.values} == STARTED
    with app.app_context():
        assert state.of() is found
    assert app.test_client().get("/api/openapi.json").status_code == 200
    assert {slot.name for slot in found.values} == STARTED | {"openapi"}


def test_optional_state_is_set_only_with_its_feature(make_app: Callable[..., Flask]) -> None:
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://",
                   AUDIT_ANOMALY_ENABLED=True, DEVELOPMENT_AUTH_ENABLED=True)
    extra = {slot.name for slot in state.of(app).values} - STARTED
    assert extra == {"limiter", "rate_limit", "audit.anomaly", "dev_principal"}


def test_a_slot_reads_and_writes_its_own_app_only() -> None:
    counted: Slot[list[int]] = Slot("test.counted")
    first, second = Flask("first"), Flask("second")
    assert state.init_app(first) is state.init_app(first)  # attached once, then kept
    state.init_app(second)
    with pytest.raises(KeyError, match="'test.counted' is not set"):
        counted.get(first)
    assert counted.find(first) is None and counted.pop(first) is None
    values = counted.set(first, [1])
    assert counted.get(first) is values and counted.find(second) is None
    assert counted.setdefault(first, [2]) is values and counted.setdefault(second, [3]) == [3]
    with first.app_context():
        assert counted.get() is values and counted.find() is values
    assert counted.pop(first) is values and counted.find(first) is None
    assert counted.get(second) == [3]
    assert repr(state.of(second)) == "AppState(test.counted)"


def test_an_app_that_create_app_did_not_build_has_no_state() -> None:
    bare = Flask("bare")
    slot: Slot[int] = Slot("test.bare")
    uses: tuple[Callable[[], object], ...] = (
        lambda: slot.get(bare), lambda: slot.find(bare), lambda: slot.set(bare, 1))
    for use in uses:
        with pytest.raises(KeyError, match="no Hearthgate state"):
            use()
    assert bare.extensions == {}  # nothing attached on the way


def test_every_slot_has_its_own_name() -> None:
    """Names are only for errors and ``AppState``'s repr, where two alike would be ambiguous."""
    slots: dict[int, Slot[object]] = {}  # a slot imported by other modules counts once
    for package in ("app", "plugins"):
        root = importlib.import_module(package)
        found = pkgutil.walk_packages(root.__path__, prefix=f"{package}.")
        for module in [root, *(importlib.import_module(info.name) for info in found)]:
            slots.update({id(v): v for v in vars(module).values() if isinstance(v, Slot)})
    names = sorted(slot.name for slot in slots.values())
    assert names == sorted(set(names))
    assert set(names) == STARTED | {"limiter", "rate_limit", "audit.anomaly", "dev_principal",
                                    "openapi", "store_fallbacks", "webhook_verifiers", "oidc",
                                    "mail"}
