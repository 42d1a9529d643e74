"""The secret-store interface with the memory:// and env:// stores."""

from __future__ import annotations

import logging

import pytest

from app.logs import redactor
from app.secrets import SECRET_STORE, OperationDisabled, SecretNotFound, StoreOptions
from plugins.secrets.env import EnvStore
from plugins.secrets.memory import MemoryStore
from testkit.typing import MakeApp


def test_get_several_names_in_one_call() -> None:
    store = MemoryStore({"A": "alpha-value", "B": "beta-value"})
    assert store.get("A", "B") == {"A": "alpha-value", "B": "beta-value"}


def test_missing_names_are_named_without_values() -> None:
    store = MemoryStore({"A": "alpha-value"})
    with pytest.raises(SecretNotFound) as missing:
        store.get("A", "NOPE", "ALSO")
    assert missing.value.names == ("NOPE", "ALSO")
    assert "alpha-value" not in str(missing.value)


def test_only_get_unless_enabled() -> None:
    store = MemoryStore({"A": "alpha-value"}, StoreOptions())
    with pytest.raises(OperationDisabled) as refused:
        store.set("A", "new-secret-value")
    assert "new-secret-value" not in str(refused.value)
    with pytest.raises(OperationDisabled):
        store.remove("A")
    assert store.get("A") == {"A": "alpha-value"}
    writable = MemoryStore({}, StoreOptions(enable_set=True, enable_remove=True))
    writable.set("K", "v-123456")
    assert writable.get("K") == {"K": "v-123456"}
    writable.remove("K")
    with pytest.raises(SecretNotFound):
        writable.get("K")


def test_cache_serves_until_ttl_and_write_through(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("app.secrets.time.monotonic", lambda: clock[0])
    store = MemoryStore({"A": "one-111"}, StoreOptions(enable_set=True, cache_ttl=10))
    assert store.get("A")["A"] == "one-111"
    store._values["A"] = "two-222"  # the backend changes behind the cache
    assert store.get("A")["A"] == "one-111"
    clock[0] += 11
    assert store.get("A")["A"] == "two-222"
    store.set("A", "three-333")
    assert store.get("A")["A"] == "three-333"


def test_env_store_reads_variables_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HG_TOKEN", "from-env-token")
    store = EnvStore(prefix="HG_")
    assert store.get("TOKEN") == {"TOKEN": "from-env-token"}
    with pytest.raises(SecretNotFound):
        store.get("OTHER")
    with pytest.raises(OperationDisabled):
        EnvStore(options=StoreOptions(enable_set=True)).set("X", "y")


def test_settings_are_read_through_the_store(make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HGT_AUTH_JWT_SECRET", "jwt-secret-from-env-store-0123456789")
    monkeypatch.setenv("HGT_MY_TOKEN", "internal-from-reference-0001")
    app = make_app(SECRET_STORE_URL="env://?prefix=HGT_", AUTH_JWT_SECRET=None,
                   BUYFLOW_INTERNAL_TOKEN=["secret:MY_TOKEN"])
    assert app.config["AUTH_JWT_SECRET"] == "jwt-secret-from-env-store-0123456789"
    assert app.config["BUYFLOW_INTERNAL_TOKEN"] == ["internal-from-reference-0001"]


def test_values_handed_out_are_redacted_from_logs(make_app: MakeApp, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(SECRET_STORE_URL="memory://")
    store = SECRET_STORE.get(app)
    store.set("PAYMENT_KEY", "pk-live-very-secret-value")
    store.get("PAYMENT_KEY")
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("connecting with %s", "pk-live-very-secret-value")
    assert "pk-live-very-secret-value" not in caplog.text
    assert "[REDACTED]" in caplog.text
    assert redactor.redact("x pk-live-very-secret-value y") == "x [REDACTED] y"


def test_secrets_cli_masks_unless_reveal(make_app: MakeApp) -> None:
    app = make_app()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["secrets", "set", "CLI_KEY", "--value", "cli-secret-value-42"]).exit_code == 0
    masked = runner.invoke(args=["secrets", "get", "CLI_KEY"])
    assert masked.exit_code == 0 and "cli-secret-value-42" not in masked.output
    assert "CLI_KEY=" in masked.output
    shown = runner.invoke(args=["secrets", "get", "CLI_KEY", "--reveal"])
    assert "cli-secret-value-42" in shown.output
    assert runner.invoke(args=["secrets", "rm", "CLI_KEY"]).exit_code == 0
    assert runner.invoke(args=["secrets", "get", "CLI_KEY"]).exit_code != 0


def test_unknown_scheme_is_refused(make_app: MakeApp) -> None:
    from app.config import ConfigurationRefused

    with pytest.raises(ConfigurationRefused, match="SECRET_STORE_URL"):
        make_app(SECRET_STORE_URL="nosuch://x")


def test_an_outage_costs_one_backend_call_per_retry_interval_not_one_per_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.secrets import STALE_RETRY_SECONDS, BackendUnavailable

    clock = [1000.0]
    monkeypatch.setattr("app.secrets.time.monotonic", lambda: clock[0])
    calls: list[list[str]] = []

    class Flaky(MemoryStore):
        down = False

        def backend_fetch(self, names: list[str]) -> dict[str, str]:
            calls.append(names)
            if self.down:
                raise BackendUnavailable("flaky")
            return super().backend_fetch(names)

    store = Flaky({"A": "value-aaaa"}, StoreOptions(cache_ttl=60))
    assert store.get("A") == {"A": "value-aaaa"}
    store.down = True
    clock[0] += 61  # expired: the next read refreshes, fails, serves the last good value
    assert [store.get("A")["A"] for _ in range(20)] == ["value-aaaa"] * 20
    assert len(calls) == 2
    clock[0] += STALE_RETRY_SECONDS + 0.1
    store.get("A")
    assert len(calls) == 3
