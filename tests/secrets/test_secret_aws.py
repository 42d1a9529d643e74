"""aws-sm:// against a real moto server through boto3: AWSCURRENT only, create-on-set, forced
remove, start refusal, and botocore's DEBUG logging kept away from secret values."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from flask import Flask

from app.config import ConfigurationRefused
from app.secrets import OperationDisabled
from testkit.builders.households import json_object
from testkit.builders.secret_stores import open_store
from testkit.checks.log_leaks import remember
from testkit.config import production_config
from testkit.servers.processes import free_port
from testkit.servers.secrets import AWS_REGION, Moto, unique_prefix

CURRENT = "aws-current-value-5e1d"
PENDING = "aws-pending-value-c04b"
CREATED = "aws-created-on-set-7a9f"
DEBUG_ONLY = "aws-value-seen-under-debug-2b68"
SETTING = "aws-orchestrator-token-0f3e"
remember(CURRENT, PENDING, CREATED, DEBUG_ONLY, SETTING)

pytestmark = pytest.mark.usefixtures("aws_credentials")


def test_remove_with_a_recovery_window_can_be_restored(moto: Moto) -> None:
    prefix = unique_prefix("recover")
    store = open_store(moto.url(prefix, enable_set="true", enable_remove="true",
                                recovery_days="7"))
    store.set("webhook", CREATED)
    store.remove("webhook")
    client = moto.client()
    described = client.describe_secret(SecretId=f"{prefix}/webhook")
    assert "DeletedDate" in described  # scheduled for deletion in 7 days, not gone
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.get_secret_value(SecretId=f"{prefix}/webhook")
    client.restore_secret(SecretId=f"{prefix}/webhook")
    assert client.get_secret_value(SecretId=f"{prefix}/webhook")["SecretString"] == CREATED


def test_only_the_awscurrent_stage_is_served(moto: Moto) -> None:
    prefix = unique_prefix("stage")
    client = moto.client()
    client.create_secret(Name=f"{prefix}/api_key", SecretString=CURRENT)
    pending = client.put_secret_value(SecretId=f"{prefix}/api_key", SecretString=PENDING,
                                      VersionStages=["AWSPENDING"])
    store = open_store(moto.url(prefix))
    assert store.get("api_key") == {"api_key": CURRENT}
    current_id = client.describe_secret(SecretId=f"{prefix}/api_key")["VersionIdsToStages"]
    old = next(v for v, stages in current_id.items() if "AWSCURRENT" in stages)
    client.update_secret_version_stage(  # the rotation finishes
        SecretId=f"{prefix}/api_key", VersionStage="AWSCURRENT",
        MoveToVersionId=pending["VersionId"], RemoveFromVersionId=old)
    assert store.get("api_key") == {"api_key": PENDING}


def test_set_creates_a_missing_secret_then_adds_versions(moto: Moto) -> None:
    prefix = unique_prefix("create")
    store = open_store(moto.url(prefix, enable_set="true", enable_remove="true"))
    store.set("webhook", CREATED)
    client = moto.client()
    assert client.get_secret_value(SecretId=f"{prefix}/webhook")["SecretString"] == CREATED
    store.set("webhook", CURRENT)
    versions = client.list_secret_version_ids(SecretId=f"{prefix}/webhook")["Versions"]
    assert len(versions) == 2
    store.for_tenant("hh_a").set("webhook", PENDING)
    assert client.get_secret_value(
        SecretId=f"{prefix}/tenant/hh_a/webhook")["SecretString"] == PENDING
    store.remove("webhook")  # no recovery window: the name can be created again at once
    store.set("webhook", CREATED)
    assert store.get("webhook") == {"webhook": CREATED}


def test_set_is_refused_unless_enabled_and_nothing_is_created(moto: Moto) -> None:
    prefix = unique_prefix("refuse")
    store = open_store(moto.url(prefix))
    with pytest.raises(OperationDisabled):
        store.set("webhook", CREATED)
    listed = moto.client().list_secrets(Filters=[{"Key": "name", "Values": [prefix]}])
    assert listed["SecretList"] == []


def test_botocore_debug_logging_never_carries_a_value(
    moto: Moto, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = unique_prefix("debug")
    moto.client().create_secret(Name=f"{prefix}/api_key", SecretString=DEBUG_ONLY)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("botocore").setLevel(logging.DEBUG)
        store = open_store(moto.url(prefix))
        store.on_value = lambda value: None  # only the store's own defence is under test
        assert store.get("api_key") == {"api_key": DEBUG_ONLY}
    assert DEBUG_ONLY not in caplog.text


def test_settings_are_read_from_secrets_manager(moto: Moto, make_app: Callable[..., Flask]) -> None:
    prefix = unique_prefix("settings")
    moto.client().create_secret(Name=f"{prefix}/ORCHESTRATOR_INTERNAL_TOKEN", SecretString=SETTING)
    app = make_app(SECRET_STORE_URL=moto.url(prefix))
    assert app.config["ORCHESTRATOR_INTERNAL_TOKEN"] == [SETTING]
    assert json_object(app.test_client().get("/readyz"))["components"]["secrets"] == "ok"


def test_an_unreachable_endpoint_refuses_a_production_start(make_app: Callable[..., Flask]) -> None:
    url = f"aws-sm://{AWS_REGION}/app?endpoint=http://127.0.0.1:{free_port()}&timeout=1"
    with pytest.raises(ConfigurationRefused) as refused:
        make_app(**production_config(SECRET_STORE_URL=url))
    assert any("SECRET_STORE_URL" in p and "aws-sm" in p for p in refused.value.problems)
