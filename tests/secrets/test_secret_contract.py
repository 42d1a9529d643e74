"""The store contract, run against every store: memory, env, file, a real OpenBao (vault://) and a
real moto server (aws-sm://). Values are written straight into the backend, behind the store."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from app.secrets import (
    BackendUnavailable,
    InvalidSecretName,
    OperationDisabled,
    SecretNotFound,
    SecretStore,
)
from testkit.builders.secret_stores import ALL_STORES, WRITABLE_STORES, Backend, make_backend
from testkit.checks.log_leaks import remember

VALUES = {
    "alpha": "contract-alpha-value-7f3a",
    "beta": "contract-beta-value-91c2",
    "gamma": "contract-gamma-value-0d4e",
    "new": "contract-new-value-55b1",
    "newer": "contract-newer-value-a8e0",
    "tenant_a": "contract-tenant-a-value-3c6d",
    "tenant_b": "contract-tenant-b-value-e2f9",
}
remember(*VALUES.values())


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as servers:
        yield servers


def _backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             stack: ExitStack) -> Backend:
    return make_backend(request.param, request, tmp_path, monkeypatch, stack)


@pytest.fixture(params=ALL_STORES)
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
            stack: ExitStack) -> Backend:
    return _backend(request, tmp_path, monkeypatch, stack)


@pytest.fixture(params=WRITABLE_STORES)
def writable(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             stack: ExitStack) -> Backend:
    return _backend(request, tmp_path, monkeypatch, stack)


def handed_out(store: SecretStore) -> list[str]:
    seen: list[str] = []
    store.on_value = seen.append
    return seen


def test_get_several_names_in_one_call(backend: Backend) -> None:
    for name in ("alpha", "beta", "gamma"):
        backend.seed(name, VALUES[name])
    store = backend.open()
    seen = handed_out(store)
    assert store.get("gamma", "alpha") == {"gamma": VALUES["gamma"], "alpha": VALUES["alpha"]}
    assert list(store.get("gamma", "alpha")) == ["gamma", "alpha"]
    assert set(seen) == {VALUES["gamma"], VALUES["alpha"]}  # both joined the redaction filter


def test_missing_names_are_named_and_no_value_is_in_the_error(backend: Backend) -> None:
    backend.seed("alpha", VALUES["alpha"])
    store = backend.open()
    with pytest.raises(SecretNotFound) as missing:
        store.get("alpha", "absent_one", "absent_two")
    assert missing.value.names == ("absent_one", "absent_two")
    assert VALUES["alpha"] not in str(missing.value)


def test_set_and_remove_are_refused_unless_enabled(backend: Backend) -> None:
    backend.seed("alpha", VALUES["alpha"])
    store = backend.open()
    with pytest.raises(OperationDisabled) as refused:
        store.set("alpha", VALUES["new"])
    assert refused.value.operation == "set" and VALUES["new"] not in str(refused.value)
    with pytest.raises(OperationDisabled):
        store.remove("alpha")
    with pytest.raises(OperationDisabled):
        store.for_tenant("hh_a").set("alpha", VALUES["new"])
    assert backend.read("alpha") == VALUES["alpha"]  # the backend did not change
    assert store.get("alpha") == {"alpha": VALUES["alpha"]}


def test_read_only_stores_stay_read_only_when_asked_to_write(backend: Backend) -> None:
    if backend.writable:
        assert backend.open(writable=True).options.enable_set
        return
    try:
        store = backend.open(writable=True)
    except ValueError as refused:  # file:// refuses the option outright
        assert "read-only" in str(refused)
        return
    with pytest.raises(OperationDisabled):
        store.set("alpha", VALUES["new"])
    assert backend.read("alpha") is None


def test_set_get_remove_when_enabled(writable: Backend) -> None:
    store = writable.open(writable=True)
    store.set("alpha", VALUES["new"])
    assert writable.read("alpha") == VALUES["new"]
    assert store.get("alpha") == {"alpha": VALUES["new"]}
    store.set("alpha", VALUES["newer"])
    assert store.get("alpha") == {"alpha": VALUES["newer"]}
    store.remove("alpha")
    assert writable.read("alpha") is None
    with pytest.raises(SecretNotFound):
        store.get("alpha")
    store.remove("alpha")  # removing what is not there is not an error


def test_cache_serves_until_its_ttl_then_refreshes(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("app.secrets.time.monotonic", lambda: clock[0])
    backend.seed("alpha", VALUES["alpha"])
    store = backend.open(ttl=30)
    assert store.get("alpha")["alpha"] == VALUES["alpha"]
    backend.seed("alpha", VALUES["new"])  # rotated in the backend
    clock[0] += 29
    assert store.get("alpha")["alpha"] == VALUES["alpha"]
    clock[0] += 2
    assert store.get("alpha")["alpha"] == VALUES["new"]


def test_cache_writes_through_on_set_and_evicts_on_remove(
    writable: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.secrets.time.monotonic", lambda: 1000.0)  # the TTL never runs out
    writable.seed("alpha", VALUES["alpha"])
    store = writable.open(writable=True, ttl=3600)
    assert store.get("alpha")["alpha"] == VALUES["alpha"]
    store.set("alpha", VALUES["new"])
    assert store.get("alpha")["alpha"] == VALUES["new"]
    store.remove("alpha")
    with pytest.raises(SecretNotFound):
        store.get("alpha")


def test_last_good_value_serves_through_an_outage_with_a_warning(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    private = getattr(backend, "private", None)
    if private is not None:
        backend = private()  # this test stops the server
    clock = [1000.0]
    monkeypatch.setattr("app.secrets.time.monotonic", lambda: clock[0])
    backend.seed("alpha", VALUES["alpha"])
    backend.seed("beta", VALUES["beta"])
    store = backend.open(ttl=10)
    assert store.get("alpha")["alpha"] == VALUES["alpha"]
    with backend.outage(store), caplog.at_level(logging.WARNING, logger="app.secrets"):
        clock[0] += 60
        assert store.get("alpha") == {"alpha": VALUES["alpha"]}
        with pytest.raises(BackendUnavailable) as never_cached:
            store.get("beta")  # nothing good to fall back on
        assert VALUES["beta"] not in str(never_cached.value)
    warnings = [r for r in caplog.records if r.name == "app.secrets"]
    assert warnings and "alpha" in warnings[0].getMessage()
    assert VALUES["alpha"] not in caplog.text


def test_tenant_views_prefix_every_name(backend: Backend) -> None:
    backend.seed("tenant:hh_a:api_key", VALUES["tenant_a"])
    backend.seed("tenant:hh_b:api_key", VALUES["tenant_b"])
    backend.seed("api_key", VALUES["alpha"])
    store = backend.open()
    assert store.for_tenant("hh_a").get("api_key") == {"api_key": VALUES["tenant_a"]}
    assert store.for_tenant("hh_b").get("api_key") == {"api_key": VALUES["tenant_b"]}
    assert store.get("api_key") == {"api_key": VALUES["alpha"]}
    with pytest.raises(SecretNotFound) as missing:
        store.for_tenant("hh_c").get("api_key")
    assert missing.value.names == ("api_key",)


def test_tenant_writes_land_under_the_prefix_only(writable: Backend) -> None:
    store = writable.open(writable=True)
    store.for_tenant("hh_a").set("webhook", VALUES["tenant_a"])
    assert writable.read("tenant:hh_a:webhook") == VALUES["tenant_a"]
    assert writable.read("webhook") is None
    with pytest.raises(SecretNotFound):
        store.get("webhook")
    with pytest.raises(SecretNotFound):
        store.for_tenant("hh_b").get("webhook")
    store.for_tenant("hh_a").remove("webhook")
    assert writable.read("tenant:hh_a:webhook") is None


@pytest.mark.parametrize("name", [
    "tenant:hh_a:api_key", "a:b", "../api_key", "a/b", "", ".hidden", "..", "x" * 200, "a\nb",
    "a b",
])
def test_names_that_could_escape_their_scope_are_refused(backend: Backend, name: str) -> None:
    backend.seed("tenant:hh_a:api_key", VALUES["tenant_a"])
    store = backend.open()
    seen = handed_out(store)
    with pytest.raises(InvalidSecretName):
        store.get(name)
    with pytest.raises(InvalidSecretName):
        store.for_tenant("hh_b").get(name)
    assert seen == []


@pytest.mark.parametrize("household_id", ["hh_a:x", "../hh_a", "", "hh/a", "hh a"])
def test_household_ids_that_could_escape_are_refused(backend: Backend, household_id: str) -> None:
    store = backend.open()
    with pytest.raises(InvalidSecretName):
        store.for_tenant(household_id)


def test_check_passes_on_a_reachable_backend(backend: Backend) -> None:
    backend.open().check()
