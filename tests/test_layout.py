"""The suite's own layout: test modules live in one folder per promise, each with its conftest.py;
at most 10 files stay at the top of tests/; no fixture name is defined in more than two files
(tests/ and testkit/); pytest plugins are declared only by tests/conftest.py; neither bench/
nor testkit/ imports anything from tests/; and no module of tests/ (test module or conftest.py)
imports another: what tests share lives in testkit/."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

from testkit import ROOT

TESTS = ROOT / "tests"
PROMISES = {"gateway", "identity", "households", "buyflow", "audit", "secrets", "ratelimit",
            "database", "contract", "deployed"}
MAX_TOP_LEVEL_FILES = 10
MAX_FILES_PER_FIXTURE = 2


# Not the suite's own: the OpenID provider's npm project, and tests/fixtures (packages written as
# a third party writes them, with their own tests, installed by tests/test_plugins.py).
OUTSIDE = {"oidc_provider", "fixtures", "node_modules", "__pycache__"}


def python_files(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py")
                  if not OUTSIDE.intersection(p.relative_to(folder).parts))


def is_fixture(decorator: ast.expr) -> bool:
    """``@pytest.fixture``, ``@pytest.fixture(...)``, ``@fixture`` or ``@fixture(...)``."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(target, ast.Attribute) and target.attr == "fixture") or (
        isinstance(target, ast.Name) and target.id == "fixture")


def fixture_names(path: Path) -> set[str]:
    """The names a module defines fixtures under (``name=`` when given, else the function's)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in filter(is_fixture, node.decorator_list):
            name = node.name
            if isinstance(decorator, ast.Call):
                for keyword in decorator.keywords:
                    if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                        name = str(keyword.value.value)
            names.add(name)
    return names


def imported_modules(path: Path) -> set[str]:
    """Every module the file imports, at any depth (in functions too); a relative import is
    named by its dots, e.g. ``.test_bola``."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            modules.add("." * node.level + (node.module or ""))
    return modules


# An import statement of the suite's package anywhere in a file's text: also in code a test
# writes out as a string for a subprocess to run (a gunicorn app module, say).
IMPORT_OF_TESTS = re.compile(r"^\s*(?:from\s+tests(?:\.|\s)|import\s+tests\b)", re.MULTILINE)


def test_at_most_ten_files_at_the_top_of_tests() -> None:
    files = sorted(p.name for p in TESTS.iterdir() if p.is_file())
    assert len(files) <= MAX_TOP_LEVEL_FILES, files


def test_every_test_module_is_in_a_promise_folder_with_its_conftest() -> None:
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and p.name not in OUTSIDE}
    assert folders == PROMISES
    for folder in PROMISES:
        assert (TESTS / folder / "conftest.py").is_file(), folder
        assert (TESTS / folder / "__init__.py").is_file(), folder
        nested = [p for p in (TESTS / folder).iterdir() if p.is_dir() and p.name != "__pycache__"]
        assert not nested, nested
    # Anything else in a promise folder is a test module: support belongs to testkit.
    for path in python_files(*(TESTS / folder for folder in PROMISES)):
        assert path.name in {"conftest.py", "__init__.py"} or path.name.startswith("test_"), path


def test_no_fixture_name_is_defined_in_more_than_two_files() -> None:
    defined_in: dict[str, list[str]] = defaultdict(list)
    for path in python_files(TESTS, ROOT / "testkit"):
        for name in fixture_names(path):
            defined_in[name].append(str(path.relative_to(ROOT)))
    assert defined_in["make_app"] == ["tests/conftest.py"]  # the scan sees fixtures at all
    crowded = {name: files for name, files in defined_in.items()
               if len(files) > MAX_FILES_PER_FIXTURE}
    assert not crowded, crowded


def test_only_the_root_conftest_declares_pytest_plugins() -> None:
    declaring = []
    for path in python_files(TESTS, ROOT / "testkit"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if any(isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in targets):
                declaring.append(str(path.relative_to(ROOT)))
    assert declaring == ["tests/conftest.py"]


def test_bench_and_testkit_import_nothing_from_tests() -> None:
    offenders: dict[str, list[str]] = {}
    for path in python_files(ROOT / "bench", ROOT / "testkit"):
        found = sorted(m for m in imported_modules(path) if m.split(".")[0] == "tests")
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert not offenders, offenders
    assert "testkit.config" in imported_modules(TESTS / "conftest.py")  # the scan sees imports


def imports_of_the_suite(path: Path) -> list[str]:
    """The imports of the suite's own modules in a file: ``tests.*``, relative ones, and import
    statements of ``tests`` in strings."""
    found = sorted(m for m in imported_modules(path)
                   if m.split(".")[0] == "tests" or m.startswith("."))
    return found + [m.group(0).strip()
                    for m in IMPORT_OF_TESTS.finditer(path.read_text(encoding="utf-8"))]


def test_no_module_of_tests_imports_another(tmp_path: Path) -> None:
    scanned = python_files(TESTS)
    offenders = {str(path.relative_to(ROOT)): found
                 for path in scanned if (found := imports_of_the_suite(path))}
    assert not offenders, offenders
    assert TESTS / "audit" / "conftest.py" in scanned and TESTS / "test_layout.py" in scanned
    # The scan sees an import in a function, a relative one and one in a string.
    probe = tmp_path / "test_probe.py"
    probe.write_text("def f():\n    from tests.contract.test_bola import USERS\n"
                     "from .test_bola import CASES\n"
                     "APP = \"\"\"\nimport tests.gateway\n\"\"\"\n", encoding="utf-8")
    assert imports_of_the_suite(probe) == [".test_bola", "tests.contract.test_bola",
                                           "from tests.", "import tests"]
