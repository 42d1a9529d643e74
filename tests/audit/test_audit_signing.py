"""The audit signing key: from the secret store, generated outside production, refused when
missing in production or not an Ed25519 PEM; auditors load public keys (several) from PEM."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from app import create_app
from app.audit.signing import (
    PublicKeys,
    Signer,
    generate_pem,
    key_id,
    load_private_key,
    public_pem,
    signer,
)
from app.config import ConfigurationRefused
from app.logs import redactor
from app.secrets import SECRET_STORE
from testkit.config import production_config


def test_development_generates_a_key_and_keeps_it_in_the_store(app: Flask) -> None:
    stored = SECRET_STORE.get(app).get("AUDIT_SIGNING_KEY")["AUDIT_SIGNING_KEY"]
    assert load_private_key(stored).public_key() == signer(app).public_key
    assert redactor.redact(f"key={stored}") == "key=[REDACTED]"


def test_a_configured_key_is_used(make_app: Callable[..., Flask]) -> None:
    pem = generate_pem()
    app = make_app(AUDIT_SIGNING_KEY=pem)
    assert signer(app).key_id == key_id(load_private_key(pem).public_key())
    assert app.config["AUDIT_SIGNING_KEY"] == pem


def test_production_refuses_to_start_without_a_key(database_url: str) -> None:
    with pytest.raises(ConfigurationRefused) as refused:
        create_app(production_config(DATABASE_URL=database_url, AUDIT_SIGNING_KEY=None))
    assert any("AUDIT_SIGNING_KEY" in p for p in refused.value.problems)


NOT_ED25519 = ["not a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"]


@pytest.mark.parametrize("value", NOT_ED25519, ids=["text", "bad-pem"])
def test_a_key_that_is_not_ed25519_pem_is_refused_everywhere(make_app: Callable[..., Flask],
                                                            value: str) -> None:
    with pytest.raises(ConfigurationRefused) as refused:
        make_app(AUDIT_SIGNING_KEY=value)
    assert "AUDIT_SIGNING_KEY" in str(refused.value) and value not in str(refused.value)


def test_public_keys_verify_only_what_their_private_halves_signed() -> None:
    old, new = load_private_key(generate_pem()), load_private_key(generate_pem())
    bundle = PublicKeys.from_pem(public_pem(old.public_key()) + public_pem(new.public_key()))
    payload = {"chain": "system", "seq": 3}
    for key in (old, new):
        s = Signer(key)
        assert bundle.verify(payload, s.sign(payload), s.key_id)
        assert not bundle.verify({**payload, "seq": 4}, s.sign(payload), s.key_id)
    stranger = Signer(load_private_key(generate_pem()))
    assert not bundle.verify(payload, stranger.sign(payload), stranger.key_id)
    with pytest.raises(ValueError):
        PublicKeys.from_pem("no key here")
