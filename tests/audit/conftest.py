"""The audit trail: records, hash chains, signing, checkpoints and proofs, witnesses, exports,
anomaly alerts, and no secret in any stored detail. No fixture is shared by this folder alone
(``testkit.builders.audit`` writes and tampers with events)."""
