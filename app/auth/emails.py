"""Email addresses as identities: one canonical form per address, so that look-alikes cannot
hold two accounts, and domains that imitate another by mixing scripts are refused.

``canonical_email``: NFKC (a fullwidth ``ａ`` is ``a``), trimmed and lower-cased, the domain
through IDNA 2008 with the UTS #46 mapping (``idna``; ``xn--`` and Unicode spellings of one
domain are one domain, kept in its Unicode form). Refused (``InvalidEmail``): no ``@``, an empty
side, a domain IDNA rejects, and a domain label that mixes scripts (a Cyrillic ``а`` among Latin
letters; Han with kana or Hangul, as Japanese and Korean write, is one writing) or is written
wholly in letters that look Latin in another script (``аррӏе``).
"""

from __future__ import annotations

import functools
import unicodedata

import idna

# Letters of other scripts that are read as Latin ones (Unicode's confusables for a-z).
_LATIN_LOOKALIKES = frozenset(
    "аеорсухіјѕԁһӏԛԝвкмнтпгʏ"  # Cyrillic
    "αεοριυνκτχγηϲ"  # Greek
    "ıօսհոցաԁ"  # Armenian and others
)
_COMMON = frozenset("0123456789-")
# Scripts written together (UTS #39 "highly restrictive"): anything else in one label is mixed.
_WRITTEN_TOGETHER = (
    frozenset({"LATIN", "CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA"}),
    frozenset({"LATIN", "CJK", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "HANGUL"}),
)


class InvalidEmail(ValueError):
    """Not an address this service accepts (the reason is for the client)."""


def _script(char: str) -> str:
    """The script of a letter, from its Unicode name (``LATIN``, ``CYRILLIC``, ``GREEK``…)."""
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else "UNKNOWN"


def _check_label(label: str) -> None:
    letters = [c for c in label if c not in _COMMON]
    scripts = {_script(c) for c in letters}
    if len(scripts) > 1 and not any(scripts <= allowed for allowed in _WRITTEN_TOGETHER):
        raise InvalidEmail("the domain mixes scripts")
    if scripts and scripts != {"LATIN"} and all(c in _LATIN_LOOKALIKES for c in letters):
        raise InvalidEmail("the domain imitates a Latin one")


# Pure per domain, and most logins name one of a few domains: the IDNA round trip is done once
# per domain (bounded, so a stream of distinct domains costs memory no more than this). Refused
# domains raise, and an exception is never cached.
@functools.lru_cache(maxsize=4096)
def canonical_domain(domain: str) -> str:
    try:
        ascii_form = idna.encode(domain, uts46=True, transitional=False)
        unicode_form = idna.decode(ascii_form)
    except (idna.IDNAError, UnicodeError, ValueError):
        raise InvalidEmail("the domain is not a valid internationalised domain name") from None
    for label in unicode_form.split("."):
        _check_label(label)
    return unicode_form


def canonical_email(email: str) -> str:
    value = unicodedata.normalize("NFKC", email).strip()
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise InvalidEmail("not an email address")
    return f"{local.lower()}@{canonical_domain(domain.lower())}"
