"""Keyed hashing of people's identifiers at the boundary (docs/PRODUCT.md §3).

Phone numbers, national ids, addresses, company names and device serials never reach a store
in clear. :class:`Pseudonymiser` normalises a value (so that spellings of one thing meet),
then hashes it with HMAC-SHA256 under a secret from configuration: equal values link, nobody
without the secret can reverse or test a guess. Investigators see :meth:`mask` forms.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from typing import Final, Literal

IdentifierKind = Literal["phone", "national_id", "address", "company", "device", "name"]
KINDS: Final[tuple[str, ...]] = ("phone", "national_id", "address", "company", "device", "name")

_PREFIX: Final[dict[str, str]] = {
    "phone": "ph_",
    "national_id": "nid_",
    "address": "ad_",
    "company": "co_",
    "device": "dv_",
    "name": "nm_",
}
# NOTE: legal-form suffixes are dropped so that "X有限公司", "X公司" and "X Co., Ltd." meet.
_COMPANY_SUFFIXES: Final = (
    "股份有限公司", "有限责任公司", "有限公司", "集团", "公司",
    "co ltd", "company limited", "limited", "ltd", "inc", "corp", "co",
)
_PUNCT: Final = re.compile(r"[\s\W_]+", re.UNICODE)
_MIN_SECRET_BYTES: Final = 16


def normalise(kind: IdentifierKind, value: str) -> str:
    """The canonical form of an identifier, before hashing.

    Args:
        kind (IdentifierKind): what the value is.
        value (str): the value as written.

    Raises:
        ValueError: on an unknown kind or an empty value.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    text = unicodedata.normalize("NFKC", value).casefold().strip()
    if kind == "phone":
        text = re.sub(r"\D", "", text)
        if text.startswith("86") and len(text) == 13:
            text = text[2:]
    elif kind in ("national_id", "device"):
        text = re.sub(r"[\s\-]", "", text)
    elif kind == "company":
        text = _PUNCT.sub(" ", text).strip()
        changed = True
        while changed:
            changed = False
            for suffix in _COMPANY_SUFFIXES:
                if text.endswith(suffix) and len(text) > len(suffix):
                    text = text[: -len(suffix)].strip()
                    changed = True
        text = text.replace(" ", "")
    else:
        text = _PUNCT.sub("", text)
    if not text:
        raise ValueError(f"{kind} value is empty after normalisation: {value!r}")
    return text


def mask(kind: IdentifierKind, value: str) -> str:
    """A display form that hides most of the value (``138****5678``)."""
    text = normalise(kind, value)
    if kind == "phone":
        return text[:3] + "*" * max(len(text) - 7, 1) + text[-4:]
    if kind in ("address", "company", "name"):
        keep = max(1, len(text) // 4)
        return text[:keep] + "*" * (len(text) - keep)
    return "*" * max(len(text) - 4, 1) + text[-4:]


class Pseudonymiser:
    """HMAC-SHA256 of normalised identifiers under one secret.

    Args:
        secret (bytes): the key; at least 16 bytes.
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < _MIN_SECRET_BYTES:
            raise ValueError(f"secret must be at least {_MIN_SECRET_BYTES} bytes")
        self._secret = secret

    def __repr__(self) -> str:
        return "Pseudonymiser(secret=***)"

    def hash(self, kind: IdentifierKind, value: str) -> str:
        """The keyed hash of ``value``, prefixed by its kind (``ph_3fa9…``)."""
        digest = hmac.new(
            self._secret, f"{kind}:{normalise(kind, value)}".encode(), hashlib.sha256
        ).hexdigest()
        return _PREFIX[kind] + digest[:32]
