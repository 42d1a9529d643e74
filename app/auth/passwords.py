"""The password hash of local accounts (argon2id with the library's defaults): the passwords
plugin verifies with ``hasher``, and ``flask users create --password`` sets one."""

from __future__ import annotations

from argon2 import PasswordHasher

hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return hasher.hash(password)
