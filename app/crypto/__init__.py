"""Encryption at rest of the free text people and upstream services write (API.md, "Defense in
depth at the database").

``keys`` holds the key ring read from ``DATA_ENCRYPTION_KEYS``; ``fields`` lists the encrypted
columns and seals or opens one value (AES-256-GCM, the table, column and row id as associated
data); ``rotate`` re-encrypts stored values under the current key (``flask data rotate``). The
models wire the writes and the ORM reads (``app.models.sealed``); any other read path calls
``fields.decode``.
"""
