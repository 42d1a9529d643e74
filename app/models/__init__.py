"""SQLAlchemy 2.0 typed models. Household-scoped tables carry ``household_id`` with
``ON DELETE CASCADE`` and are reached through ``app.gateway.tenancy`` only."""

from app.models.audit import AuditCheckpoint, AuditEvent
from app.models.buyflow import PurchaseIntent, PurchaseRequest, WebhookEvent
from app.models.buyflow_extra import IdempotencyKey, IntentArtifact, IntentEvent
from app.models.households import Household, Item, Member, Outfit, OutfitItem
from app.models.login_flows import LoginFlow
from app.models.users import RefreshToken, User

__all__ = [
    "AuditCheckpoint",
    "AuditEvent",
    "Household",
    "IdempotencyKey",
    "IntentArtifact",
    "IntentEvent",
    "Item",
    "LoginFlow",
    "Member",
    "Outfit",
    "OutfitItem",
    "PurchaseIntent",
    "PurchaseRequest",
    "RefreshToken",
    "User",
    "WebhookEvent",
]
