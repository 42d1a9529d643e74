"""The plugin system: built-ins and a really pip-installed third-party package, same hooks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pluggy
import pytest
from flask import Flask

import app.plugins
from app import hookspecs
from app.plugins import BUILTIN_PLUGINS, build_manager, describe

ROOT = Path(__file__).resolve().parent.parent

PLUGIN_SOURCE = '''
from app.hookspecs import hookimpl

CALLS = []


@hookimpl
def startup_checks(config):
    CALLS.append("startup_checks")
    return []


@hookimpl
def register_commands(cli):
    import click

    @cli.command("hello-plugin")
    def hello():
        click.echo("hello from hg-test-plugin; checks ran: " + ",".join(CALLS))
'''


def pip_install(target: Path, *sources: Path) -> None:
    """``pip install`` into a target directory: no index, no build isolation, no dependencies."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), *map(str, sources)],
        check=True, capture_output=True, timeout=300,
    )


def tiny_distribution(src: Path, name: str, module: str, entry_point: str) -> Path:
    (src / f"{module}.py").write_text(PLUGIN_SOURCE)
    (src / "pyproject.toml").write_text(textwrap.dedent(f'''
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{name}"
        version = "1.2.3"

        [project.entry-points.hearthgate]
        {entry_point} = "{module}"

        [tool.setuptools]
        py-modules = ["{module}"]
    '''))
    return src


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build a tiny distribution and ``pip install`` it into a target directory."""
    src = tiny_distribution(tmp_path_factory.mktemp("plugin-src"), "hg-test-plugin",
                            "hg_test_plugin", "hg_test")
    target = tmp_path_factory.mktemp("site")
    pip_install(target, src)
    assert list(target.glob("hg_test_plugin-1.2.3.dist-info"))
    return target


def _flask(args: list[str], site: Path | str, tmp_path: Path, **env: str
           ) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ)
    environ.update({
        "PYTHONPATH": f"{site}{os.pathsep}{ROOT}",
        "FLASK_APP": "wsgi",
        "HEARTHGATE_ENV": "test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'plugins.sqlite3'}",
        "LOG_JSON": "false",
        **env,
    })
    return subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=120)


def test_installed_plugin_is_loaded_listed_and_its_hooks_called(installed_plugin: Path, tmp_path: Path) -> None:
    listed = _flask(["plugins", "list"], installed_plugin, tmp_path)
    assert listed.returncode == 0, listed.stderr
    line = next(li for li in listed.stdout.splitlines() if li.startswith("hg_test "))
    assert "1.2.3" in line and "installed" in line
    assert "register_commands" in line and "startup_checks" in line
    assert any(li.startswith("plugins.secrets.memory ") and "secret_store" in li
               for li in listed.stdout.splitlines())
    hello = _flask(["hello-plugin"], installed_plugin, tmp_path)
    assert hello.returncode == 0, hello.stderr
    assert "checks ran: startup_checks" in hello.stdout


def test_allow_list_excludes_unlisted_installed_plugins(installed_plugin: Path, tmp_path: Path) -> None:
    listed = _flask(["plugins", "list"], installed_plugin, tmp_path, HEARTHGATE_PLUGINS="someone_else")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [li for li in lines if "hg_test" in li] == [
        "hg_test  (installed from hg-test-plugin)  not loaded: not in HEARTHGATE_PLUGINS"]
    assert any(li.startswith("plugins.secrets.memory ") for li in lines)  # built-ins always load
    # The allow-list's name that matches no installed plugin is a warning, naming it.
    assert "HEARTHGATE_PLUGINS names someone_else, but no installed plugin" in listed.stderr
    allowed = _flask(["plugins", "list"], installed_plugin, tmp_path, HEARTHGATE_PLUGINS="hg_test")
    line = next(li for li in allowed.stdout.splitlines() if li.startswith("hg_test "))
    assert "(installed from hg-test-plugin)" in line and "not loaded" not in allowed.stdout
    assert "HEARTHGATE_PLUGINS names" not in allowed.stderr


def test_a_second_plugin_with_a_taken_entry_point_name_is_not_loaded_and_named(
    installed_plugin: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    src = tiny_distribution(tmp_path_factory.mktemp("twin-src"), "hg-twin-plugin",
                            "hg_twin_plugin", "hg_test")
    twin = tmp_path_factory.mktemp("twin-site")
    pip_install(twin, src)
    listed = _flask(["plugins", "list"], f"{installed_plugin}{os.pathsep}{twin}", tmp_path)
    assert listed.returncode == 0, listed.stderr
    loaded = [li for li in listed.stdout.splitlines() if li.startswith("hg_test ")]
    assert len(loaded) == 1
    other = "hg-twin-plugin" if "hg-test-plugin" in loaded[0] else "hg-test-plugin"
    assert (f"plugin hg_test of {other} is not loaded: another installed plugin has that "
            "entry-point name") in listed.stderr


def test_the_readmes_plugin_example_declares_its_setting_and_checks_it(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's example, run as it is printed: its setting reaches ``config``."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Writing a plugin"):]
    code = section[section.index("```python\n") + len("```python\n"):]
    example = types.ModuleType("readme_example")
    exec(compile(code[:code.index("```")], "README.md", "exec"), example.__dict__)  # noqa: S102
    build = app.plugins.build_manager

    def with_example(allow: list[str] | None = None, extra: Iterable[object] = ()) -> Any:
        return build(allow, [*extra, example])

    monkeypatch.setattr(app.plugins, "build_manager", with_example)
    off = make_app()
    assert off.config["MY_SETTING"] is False
    checked = off.test_cli_runner().invoke(args=["security", "check"]).output
    assert "UNSAFE: MY_SETTING is off" in checked
    assert "plugin setting MY_SETTING (bool) of extra-0-readme_example: false" in checked
    monkeypatch.setenv("MY_SETTING", "yes")
    on = make_app()
    assert on.config["MY_SETTING"] is True
    checked = on.test_cli_runner().invoke(args=["security", "check"]).output
    assert "MY_SETTING is off" not in checked
    assert "plugin setting MY_SETTING (bool) of extra-0-readme_example: true" in checked


def test_misspelled_hook_fails_at_start() -> None:
    class Misspelled:
        @hookspecs.hookimpl
        def secret_stor(self, scheme: str) -> None:
            return None

    pm = build_manager()
    pm.register(Misspelled())
    with pytest.raises(pluggy.PluginValidationError):
        pm.check_pending()


def test_builtins_are_registered_through_the_manager() -> None:
    pm = build_manager()
    names = {info.name for info in describe(pm)}
    assert set(BUILTIN_PLUGINS) <= names


def test_every_hook_is_documented_with_each_argument_and_in_the_readme() -> None:
    """Every hookspec has a docstring with :param: lines for each argument and a row in the
    README (Datasette's rule; tests/test_plugin_hooks.py checks that each is called)."""
    import inspect

    for name, spec in inspect.getmembers(hookspecs, inspect.isfunction):
        if not hasattr(spec, "hearthgate_spec"):
            continue
        doc = inspect.getdoc(spec) or ""
        assert doc, name
        for param in inspect.signature(spec).parameters:
            assert f":param {param}:" in doc, (name, param)
    readme = (ROOT / "README.md").read_text()
    for name, spec in inspect.getmembers(hookspecs, inspect.isfunction):
        if hasattr(spec, "hearthgate_spec"):
            assert f"`{name}`" in readme, f"hook {name} is not documented in README.md"


EXAMPLE = ROOT / "tests" / "fixtures" / "example_plugin"
_NOT_SOURCE = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", ".mypy_cache")


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Hearthgate itself (as a package, not this checkout) and the example plugin, installed with
    pip into one target directory; and a copy of the example's tree, where its tests run."""
    hearthgate = tmp_path_factory.mktemp("hearthgate-src")
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, hearthgate / name)
    for package in ("app", "plugins"):
        shutil.copytree(ROOT / package, hearthgate / package, ignore=_NOT_SOURCE)
    example = tmp_path_factory.mktemp("example") / "example_plugin"
    shutil.copytree(EXAMPLE, example, ignore=_NOT_SOURCE)
    target = tmp_path_factory.mktemp("site")
    pip_install(target, hearthgate, example)
    return target, example


def _in(site: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python args`` seeing the installed packages only: this checkout is not on the path."""
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("HEARTHGATE", "MYPY", "PYTEST", "FLASK"))}
    environ.update({"PYTHONPATH": str(site), "HEARTHGATE_ENV": "test", "LOG_JSON": "false",
                    **env})
    return subprocess.run([sys.executable, *args], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_the_example_plugin_installs_with_pip_and_passes_its_own_tests(
    installed_example: tuple[Path, Path],
) -> None:
    site, example = installed_example
    assert (site / "app" / "py.typed").is_file() and (site / "app" / "plugin_api.py").is_file()
    assert list(site.glob("hearthgate_example-0.3.0.dist-info"))
    found = _in(site, example, "-c", "import app, hearthgate_example; print(app.__file__)")
    assert found.stdout.strip() == str(site / "app" / "__init__.py"), found.stderr
    tests = _in(site, example, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests")
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "7 passed" in tests.stdout


@pytest.mark.slow
def test_the_example_plugin_passes_mypy_strict_against_the_installed_package(
    installed_example: tuple[Path, Path], tmp_path: Path,
) -> None:
    """``py.typed`` makes the installed package's annotations count: without it, mypy --strict
    refuses the example's subclasses of ``Any`` and its untyped decorators."""
    site, example = installed_example
    checked = _in(site, example, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"),
                  "src", "tests")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Success: no issues found in 3 source files" in checked.stdout


@pytest.mark.slow
def test_the_installed_example_is_loaded_through_its_entry_point(
    installed_example: tuple[Path, Path], tmp_path: Path,
) -> None:
    site, _ = installed_example
    env = {"FLASK_APP": "app", "DATABASE_URL": f"sqlite:///{tmp_path / 'example.sqlite3'}"}
    listed = _in(site, tmp_path, "-m", "flask", "plugins", "list", **env)
    assert listed.returncode == 0, listed.stderr
    line = next(li for li in listed.stdout.splitlines() if li.startswith("example "))
    assert line == ("example  0.3.0  (installed from hearthgate-example)  hooks: audit_sink, "
                    "register_blueprints, register_settings, secret_store, startup_checks")
    checked = _in(site, tmp_path, "-m", "flask", "security", "check", **env)
    assert "plugin setting EXAMPLE_GREETING (str) of example: set" in checked.stdout
    assert "plugin setting EXAMPLE_AUDIT_TOKEN (str, secret) of example: unset" in checked.stdout
    excluded = _in(site, tmp_path, "-m", "flask", "plugins", "list", HEARTHGATE_PLUGINS="other",
                   **env)
    assert ("example  (installed from hearthgate-example)  not loaded: not in HEARTHGATE_PLUGINS"
            in excluded.stdout)
