"""vault:// against a real OpenBao dev server: KV v2 versions, remove, AppRole with a policy that
forbids another household's prefix, token renewal by re-login, start refusal, readiness, CLI."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import hvac
import hvac.exceptions
import pytest
from flask import Flask

from app.config import ConfigurationRefused
from app.secrets import SECRET_STORE, OperationDisabled, SecretAccessDenied, SecretNotFound
from plugins.secrets.vault import VaultStore
from testkit.builders.households import json_object
from testkit.builders.secret_stores import open_store
from testkit.checks.log_leaks import remember
from testkit.config import production_config
from testkit.servers.processes import free_port
from testkit.servers.secrets import OpenBao, openbao_server, unique_prefix

V1, V2 = "vault-version-one-value-4a1b", "vault-version-two-value-9c3d"
HH_A_VALUE, HH_B_VALUE = "vault-household-a-key-0e7f", "vault-household-b-key-6d2c"
BUYFLOW = "vault-buyflow-internal-token-33aa"
remember(V1, V2, HH_A_VALUE, HH_B_VALUE, BUYFLOW)


def kv(server: OpenBao) -> Any:
    return server.client().secrets.kv.v2


def seed(server: OpenBao, path: str, value: str) -> None:
    kv(server).create_or_update_secret(path=path, secret={"value": value}, mount_point="secret")


def test_set_keeps_versions_and_remove_deletes_them_all(openbao: OpenBao) -> None:
    prefix = unique_prefix("versions")
    store = open_store(openbao.url(prefix, enable_set="true", enable_remove="true"),
                       VAULT_TOKEN=openbao.root_token)
    store.set("api_key", V1)
    store.set("api_key", V2)
    metadata = kv(openbao).read_secret_metadata(path=f"{prefix}/api_key", mount_point="secret")
    assert metadata["data"]["current_version"] == 2
    first = kv(openbao).read_secret_version(path=f"{prefix}/api_key", version=1,
                                            mount_point="secret", raise_on_deleted_version=True)
    assert first["data"]["data"] == {"value": V1}
    assert store.get("api_key") == {"api_key": V2}
    store.remove("api_key")
    with pytest.raises(hvac.exceptions.InvalidPath):  # metadata and every version are gone
        kv(openbao).read_secret_metadata(path=f"{prefix}/api_key", mount_point="secret")


def test_remove_is_refused_unless_enabled_and_every_version_stays(openbao: OpenBao) -> None:
    prefix = unique_prefix("keep")
    seed(openbao, f"{prefix}/api_key", V1)
    seed(openbao, f"{prefix}/api_key", V2)
    store = open_store(openbao.url(prefix, enable_set="true"), VAULT_TOKEN=openbao.root_token)
    with pytest.raises(OperationDisabled):
        store.remove("api_key")
    metadata = kv(openbao).read_secret_metadata(path=f"{prefix}/api_key", mount_point="secret")
    assert sorted(metadata["data"]["versions"]) == ["1", "2"]


def approle(server: OpenBao, prefix: str, household: str) -> tuple[str, str]:
    """A role whose policy reads the app's own names and one household's subtree, nothing else."""
    root = server.client()
    try:
        root.sys.enable_auth_method("approle")
    except hvac.exceptions.InvalidRequest:
        pass  # enabled by an earlier test
    name = f"hg-{uuid.uuid4().hex[:8]}"
    root.sys.create_or_update_policy(name=name, policy=f'''
path "secret/data/{prefix}/+" {{ capabilities = ["read"] }}
path "secret/data/{prefix}/tenant/{household}/*" {{ capabilities = ["read"] }}
''')
    root.auth.approle.create_or_update_approle(name, token_policies=[name], token_ttl="10m")
    role_id = root.auth.approle.read_role_id(name)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(name)["data"]["secret_id"]
    remember(secret_id)
    return role_id, secret_id


def test_approle_reads_its_household_and_is_refused_another(
    openbao: OpenBao, make_app: Callable[..., Flask]
) -> None:
    prefix = unique_prefix("approle")
    seed(openbao, f"{prefix}/tenant/hh_a/api_key", HH_A_VALUE)
    seed(openbao, f"{prefix}/tenant/hh_b/api_key", HH_B_VALUE)
    seed(openbao, f"{prefix}/buyflow_token", BUYFLOW)
    role_id, secret_id = approle(openbao, prefix, "hh_a")
    app = make_app(SECRET_STORE_URL=openbao.url(prefix), VAULT_ROLE_ID=role_id,
                   VAULT_SECRET_ID=secret_id, BUYFLOW_INTERNAL_TOKEN=["secret:buyflow_token"])
    assert app.config["BUYFLOW_INTERNAL_TOKEN"] == [BUYFLOW]
    store = SECRET_STORE.get(app)
    assert store.for_tenant("hh_a").get("api_key") == {"api_key": HH_A_VALUE}
    with pytest.raises(SecretAccessDenied) as denied:
        store.for_tenant("hh_b").get("api_key")
    assert HH_B_VALUE not in str(denied.value) and secret_id not in str(denied.value)
    # A token that expired or was revoked: the store logs in again with its AppRole.
    assert isinstance(store, VaultStore)
    openbao.client().auth.token.revoke(store._client.token)
    assert store.for_tenant("hh_a").get("api_key") == {"api_key": HH_A_VALUE}


def test_several_names_in_one_get_and_missing_ones_named(openbao: OpenBao) -> None:
    prefix = unique_prefix("several")
    seed(openbao, f"{prefix}/one", V1)
    seed(openbao, f"{prefix}/two", V2)
    store = open_store(openbao.url(prefix), VAULT_TOKEN=openbao.root_token)
    assert store.get("one", "two") == {"one": V1, "two": V2}
    with pytest.raises(SecretNotFound) as missing:
        store.get("one", "three")
    assert missing.value.names == ("three",)


@pytest.mark.parametrize("environment", ["production", "development"])
def test_an_unreachable_vault_refuses_the_start(
    make_app: Callable[..., Flask], environment: str
) -> None:
    url = f"vault://127.0.0.1:{free_port()}/secret/app?tls=false&timeout=2"
    config = production_config() if environment == "production" else {}
    with pytest.raises(ConfigurationRefused) as refused:
        make_app(**{**config, "HEARTHGATE_ENV": environment, "SECRET_STORE_URL": url,
                    "VAULT_TOKEN": "vault-token-never-logged-1234"})
    assert any("SECRET_STORE_URL" in p and "unavailable" in p for p in refused.value.problems)
    assert "vault-token-never-logged-1234" not in str(refused.value)


def test_a_rejected_token_or_no_credentials_refuse_the_start(
    openbao: OpenBao, make_app: Callable[..., Flask]
) -> None:
    remember("vault-token-that-is-wrong-5678")
    with pytest.raises(ConfigurationRefused, match="SECRET_STORE_URL") as refused:
        make_app(SECRET_STORE_URL=openbao.url("x"), VAULT_TOKEN="vault-token-that-is-wrong-5678")
    assert "vault-token-that-is-wrong-5678" not in str(refused.value)
    with pytest.raises(ConfigurationRefused, match="SECRET_STORE_URL.*VAULT_TOKEN"):
        make_app(SECRET_STORE_URL=openbao.url("x"))


def test_readyz_and_security_check_report_the_store_without_values(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    with openbao_server() as server:
        prefix = unique_prefix("ready")
        seed(server, f"{prefix}/buyflow_token", BUYFLOW)
        app = make_app(SECRET_STORE_URL=server.url(prefix), VAULT_TOKEN=server.root_token,
                       BUYFLOW_INTERNAL_TOKEN=["secret:buyflow_token"])
        client, runner = app.test_client(), app.test_cli_runner()
        ready = client.get("/readyz")
        assert ready.status_code == 200 and json_object(ready)["components"]["secrets"] == "ok"
        checked = runner.invoke(args=["security", "check"])
        assert "secret store: vault reachable" in checked.output
        server.stop()
        with caplog.at_level(logging.WARNING):
            down = client.get("/readyz")
            checked = runner.invoke(args=["security", "check"])
        assert down.status_code == 503 and json_object(down)["components"]["secrets"] == "down"
        assert "secrets" in json_object(down)["message"]
        assert checked.exit_code == 1 and "vault secret store is unavailable" in checked.output
        for text in (down.get_data(as_text=True), checked.output, caplog.text):
            assert BUYFLOW not in text and server.root_token not in text


def test_cli_reads_vault_masked_unless_reveal(openbao: OpenBao, make_app: Callable[..., Flask]) -> None:
    prefix = unique_prefix("cli")
    seed(openbao, f"{prefix}/payment_key", V1)
    seed(openbao, f"{prefix}/tenant/hh_a/payment_key", HH_A_VALUE)
    app = make_app(SECRET_STORE_URL=openbao.url(prefix), VAULT_TOKEN=openbao.root_token)
    runner = app.test_cli_runner()
    masked = runner.invoke(args=["secrets", "get", "payment_key"])
    assert masked.exit_code == 0 and "payment_key=" in masked.output and V1 not in masked.output
    shown = runner.invoke(args=["secrets", "get", "payment_key", "--reveal"])
    assert V1 in shown.output
    tenant = runner.invoke(args=["secrets", "get", "--household", "hh_a", "payment_key"])
    assert tenant.exit_code == 0 and HH_A_VALUE not in tenant.output
    assert HH_A_VALUE in runner.invoke(
        args=["secrets", "get", "--household", "hh_a", "--reveal", "payment_key"]).output
    refused = runner.invoke(args=["secrets", "set", "payment_key", "--value", V2])
    assert refused.exit_code != 0 and "not enabled" in refused.output and V2 not in refused.output
    assert json.dumps(kv(openbao).read_secret_version(
        path=f"{prefix}/payment_key", mount_point="secret", raise_on_deleted_version=True,
    )["data"]["data"]) == json.dumps({"value": V1})
