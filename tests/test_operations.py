"""Health, readiness, OpenAPI, migrations and the Procfile's gunicorn."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from app.db import Base, Database
from app.gateway.defaultdeny import UNCONTRACTED_ROUTES
from testkit.builders.households import json_object
from testkit.servers.processes import free_port, stop, wait_for_port
from testkit.typing import MakeApp

ROOT = Path(__file__).resolve().parent.parent


LISTED = {route.endpoint for route in UNCONTRACTED_ROUTES}  # served without one, by design


def test_healthz(client: FlaskClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"status": "ok"}


def test_readyz_checks_the_database(client: FlaskClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200
    assert json_object(r)["components"]["database"] == "ok"


def test_readyz_names_a_down_database_fast(make_app: MakeApp) -> None:
    app = make_app(DATABASE_URL=f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    started = time.monotonic()
    r = app.test_client().get("/readyz")
    assert r.status_code == 503
    assert json_object(r)["components"]["database"] == "down"
    assert "database" in json_object(r)["message"]
    assert time.monotonic() - started < 5


def test_openapi_is_valid_and_carries_the_extensions(make_app: MakeApp) -> None:
    from testkit.apps import sample as sample_routes

    app = make_app()
    app.register_blueprint(sample_routes.bp)
    document = app.test_client().get("/api/openapi.json").get_json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    operation = document["paths"]["/api/sample/guarded"]["get"]
    assert operation["x-required-permissions"] == ["items:read", "audit:read"]
    assert operation["x-public"] is False and operation["x-rate-limit"]
    assert "403" in operation["responses"] and "401" in operation["responses"]
    echo = document["paths"]["/api/sample/echo"]["post"]
    assert echo["x-public"] is True
    schema_ref = echo["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body_schema = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert set(body_schema["properties"]) == {"name", "amountMinor"}
    scoped = document["paths"]["/api/sample/households/{householdId}/items/{itemId}"]["delete"]
    assert scoped["x-household-roles"] == ["owner"] and "404" in scoped["responses"]


def test_every_api_route_has_a_contract(app: Flask) -> None:
    from app.gateway.contracts import contract_of

    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") and rule.endpoint not in LISTED:
            assert contract_of(app.view_functions[rule.endpoint]) is not None, rule.rule


def test_migrations_match_the_models(app: Flask) -> None:
    with Database.engine(app).connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_flask_db_upgrade_on_a_fresh_database(make_app: MakeApp, tmp_path: Path) -> None:
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    from sqlalchemy import inspect

    tables = set(inspect(Database.engine(app)).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables


def test_no_work_at_import_time() -> None:
    code = "import app, app.models, app.gateway.contracts, plugins.secrets.memory; " \
           "import os; print(os.path.exists('instance'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    assert out.stdout.strip() in {"True", "False"}
    assert out.stderr == ""


@pytest.mark.slow
def test_procfile_web_process_serves(tmp_path: Path) -> None:
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    assert procfile["web"].startswith("gunicorn") and "release" in procfile
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "2",
           "HEARTHGATE_ENV": "development", "DATABASE_URL": f"sqlite:///{tmp_path / 'g.sqlite3'}",
           "FLASK_APP": "wsgi", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    release = subprocess.run(procfile["release"], shell=True, cwd=ROOT, env=env,  # noqa: S602
                             capture_output=True, text=True, timeout=120)
    assert release.returncode == 0, release.stderr
    proc = subprocess.Popen(procfile["web"].split(), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=30, proc=proc)
        r = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        r = requests.get(f"http://127.0.0.1:{port}/api/nope", timeout=5)
        assert r.status_code == 404 and r.json()["error"] == "NotFound"
    finally:
        stop(proc)


def test_readme_documents_every_setting() -> None:
    from app.settings import SETTINGS

    readme = (ROOT / "README.md").read_text()
    missing = [s.name for s in SETTINGS if f"`{s.name}`" not in readme]
    assert missing == []
