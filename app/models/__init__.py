"""SQLAlchemy 2.0 typed models. Household-scoped tables carry ``household_id`` with
``ON DELETE CASCADE`` and are reached through ``app.gateway.tenancy`` only."""

from app.models.audit import AuditCheckpoint, AuditEvent
from app.models.buyflow import (
    IntentStatus,
    PurchaseIntent,
    PurchaseRequest,
    RequestStatus,
    WebhookEvent,
)
from app.models.households import (
    Household,
    HouseholdRole,
    Invitation,
    Item,
    Member,
    Outfit,
    OutfitItem,
)
from app.models.idempotency_keys import IdempotencyKey
from app.models.intent_records import IntentArtifact, IntentEvent
from app.models.login_flows import LoginFlow
from app.models.sealed import install as _install_sealed
from app.models.users import AuthSession, RefreshToken, User

_install_sealed()  # the encrypted columns' events, once every model is mapped

__all__ = [
    "AuditCheckpoint",
    "AuditEvent",
    "AuthSession",
    "Household",
    "HouseholdRole",
    "IdempotencyKey",
    "IntentArtifact",
    "IntentEvent",
    "IntentStatus",
    "Invitation",
    "Item",
    "LoginFlow",
    "Member",
    "Outfit",
    "OutfitItem",
    "PurchaseIntent",
    "PurchaseRequest",
    "RefreshToken",
    "RequestStatus",
    "User",
    "WebhookEvent",
]
