"""The plugin system: built-ins and a really pip-installed third-party package, same hooks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pluggy
import pytest

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


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build a tiny distribution and ``pip install`` it into a target directory."""
    src = tmp_path_factory.mktemp("plugin-src")
    (src / "hg_test_plugin.py").write_text(PLUGIN_SOURCE)
    (src / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "hg-test-plugin"
        version = "1.2.3"

        [project.entry-points.hearthgate]
        hg_test = "hg_test_plugin"

        [tool.setuptools]
        py-modules = ["hg_test_plugin"]
    '''))
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(src)],
        check=True, capture_output=True,
    )
    assert list(target.glob("hg_test_plugin-1.2.3.dist-info"))
    return target


def _flask(args: list[str], site: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
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
    assert "hg_test" not in listed.stdout
    assert "plugins.secrets.memory" in listed.stdout  # built-ins always load
    allowed = _flask(["plugins", "list"], installed_plugin, tmp_path, HEARTHGATE_PLUGINS="hg_test")
    assert "hg_test" in allowed.stdout


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


def test_every_hook_is_documented_and_implemented_or_tested() -> None:
    """Every hookspec has a docstring with :param: lines for each argument (Datasette's rule)."""
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
