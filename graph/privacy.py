"""Keyed hashing of people's identifiers at the boundary (docs/PRODUCT.md §3).

Phone numbers, national ids, addresses, company names, device serials and IP addresses never
reach a store in clear. :class:`Pseudonymiser` normalises a value (so that spellings of one
thing meet), then hashes it with HMAC-SHA256 under a secret from configuration: equal values
link, nobody without the secret can reverse or test a guess. Investigators see :func:`mask`
forms (an IP's is its network: the /24 of an IPv4 address, the /48 of an IPv6 one).

Places are kept no finer than the features need: :func:`coarsen` rounds a coordinate to
:data:`COORDINATE_DECIMALS` decimals (about 1 km) before it is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import unicodedata
from collections.abc import Sequence
from typing import Final, Literal

import numpy as np

IdentifierKind = Literal["phone", "national_id", "address", "company", "device", "name", "ip"]
KINDS: Final[tuple[str, ...]] = (
    "phone", "national_id", "address", "company", "device", "name", "ip")

_PREFIX: Final[dict[str, str]] = {
    "phone": "ph_",
    "national_id": "nid_",
    "address": "ad_",
    "company": "co_",
    "device": "dv_",
    "name": "nm_",
    "ip": "ip_",
}
IP_ID_PREFIX: Final = _PREFIX["ip"]
"""How every ``IP`` node id begins; an id that does not is a clear address (an old store)."""
IP_PREFIX_BITS: Final[dict[int, int]] = {4: 24, 6: 48}
"""The network an IP's mask keeps, per IP version: what an investigator may read."""
COORDINATE_DECIMALS: Final = 2
"""Decimals a stored latitude or longitude keeps: 0.01° is about 1.1 km, finer than the
location features need (distances to the usual place and home, whose signals are tens to
hundreds of km) and coarser than a building."""
# NOTE: legal-form suffixes are dropped so that "X有限公司", "X公司" and "X Co., Ltd." meet.
_COMPANY_SUFFIXES: Final = (
    "股份有限公司", "有限责任公司", "有限公司", "集团", "公司",
    "co ltd", "company limited", "limited", "ltd", "inc", "corp", "co",
)
_PUNCT: Final = re.compile(r"[\s\W_]+", re.UNICODE)
_NOT_DIGIT: Final = re.compile(r"\D")
_SPACE_OR_DASH: Final = re.compile(r"[\s\-]")
_MIN_SECRET_BYTES: Final = 16
_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4: Final = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
"""A dotted quad as :mod:`ipaddress` writes it (no leading zeros): its own normal form."""


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
    # NOTE: ASCII text is its own NFKC form, and its casefold is its lower case.
    if value.isascii():
        text = value.lower().strip()
    else:
        text = unicodedata.normalize("NFKC", value).casefold().strip()
    if kind == "ip":
        if _CANONICAL_IPV4.fullmatch(text):
            return text
        return str(_ip_address(text))
    if kind == "phone":
        text = _NOT_DIGIT.sub("", text)
        if text.startswith("86") and len(text) == 13:
            text = text[2:]
    elif kind in ("national_id", "device"):
        text = _SPACE_OR_DASH.sub("", text)
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


def _ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address of ``text``; an IPv4-mapped IPv6 address is its IPv4 address, so both
    spellings meet."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"ip value is not an IPv4 or IPv6 address: {text!r}") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def mask(kind: IdentifierKind, value: str) -> str:
    """A display form that hides most of the value (``138****5678``; an IP's network,
    ``10.12.0.0/24``)."""
    return _mask_normal(kind, normalise(kind, value))


def _mask_normal(kind: IdentifierKind, text: str) -> str:
    """:func:`mask` of a value already :func:`normalise`-d."""
    if kind == "ip":
        if IP_PREFIX_BITS[4] == 24 and _CANONICAL_IPV4.fullmatch(text):
            return text[: text.rindex(".")] + ".0/24"
        address = _ip_address(text)
        network = ipaddress.ip_network(
            f"{address}/{IP_PREFIX_BITS[address.version]}", strict=False)
        return str(network)
    if kind == "phone":
        return text[:3] + "*" * max(len(text) - 7, 1) + text[-4:]
    if kind in ("address", "company", "name"):
        keep = max(1, len(text) // 4)
        return text[:keep] + "*" * (len(text) - keep)
    return "*" * max(len(text) - 4, 1) + text[-4:]


def coarsen_array(degrees: np.ndarray) -> np.ndarray:
    """Latitudes or longitudes as stored: rounded to :data:`COORDINATE_DECIMALS` decimals,
    float64 (NaN stays NaN)."""
    return np.round(np.asarray(degrees, dtype=np.float64), COORDINATE_DECIMALS)


def coarsen(degrees: float) -> float:
    """One latitude or longitude as stored (:func:`coarsen_array`'s rounding, so that the API
    and the bulk loader store one value alike)."""
    return float(coarsen_array(np.array([degrees]))[0])


KEY_CHECK_TEXT: Final = b"riskgraph-key-check"
"""What :func:`key_check` hashes: a store keeps ``HMAC(key, KEY_CHECK_TEXT)`` to tell whether a
configured key is its own, never the key."""
HASHED_ID: Final = re.compile(
    "^(" + "|".join(re.escape(p) for p in _PREFIX.values()) + ")[0-9a-f]{32}$")
"""What every keyed hash looks like (``ph_`` + 32 hex digits)."""


def key_check(secret: bytes) -> str:
    """The check value of a key (hex): equal values, equal keys; it reveals nothing of the
    key (docs/ARCHITECTURE.md, Privacy)."""
    return hmac.new(secret, KEY_CHECK_TEXT, hashlib.sha256).hexdigest()


def rekey_id(secret: bytes, hashed: str) -> str:
    """A keyed hash re-keyed under ``secret``: ``HMAC(secret, hashed)`` with ``hashed``'s kind
    prefix and length, what :class:`Pseudonymiser` with ``secret`` newest in its chain gives
    for the value ``hashed`` was the hash of.

    Raises:
        ValueError: if ``hashed`` is not a keyed hash (:data:`HASHED_ID`).
    """
    found = HASHED_ID.match(hashed)
    if found is None:
        raise ValueError(f"hashed must be a keyed hash (ph_ + 32 hex digits), got {hashed!r}")
    digest = hmac.new(secret, hashed.encode(), hashlib.sha256).hexdigest()
    return found.group(1) + digest[:32]


def rekey_digest(secret: bytes, digest: str) -> str:
    """A stored digest over keyed hashes (an event's body hash) that cannot be computed
    again without the values it covers, re-keyed under ``secret`` so that retired keys, which
    the store keeps, cannot test a guess against it (64 hex digits, as a SHA-256)."""
    return hmac.new(secret, b"digest:" + digest.encode(), hashlib.sha256).hexdigest()


class Pseudonymiser:
    """HMAC-SHA256 of normalised identifiers under one secret, or a chain of them.

    A store whose key was rotated holds ``HMAC(k_n, ... HMAC(k_1, HMAC(k_0, value)))``
    (:func:`rekey_id` applied once per rotation): the pseudonymiser of such a store takes the
    newest key as ``secret`` and the retired ones, oldest first, as ``retired``.

    Args:
        secret (bytes): the key, the newest of the chain; at least 16 bytes.
        retired (Sequence[bytes], optional): the keys retired before it, oldest first.
            (default: none)
    """

    def __init__(self, secret: bytes, retired: Sequence[bytes] = ()) -> None:
        for key in (secret, *retired):
            if len(key) < _MIN_SECRET_BYTES:
                raise ValueError(f"secret must be at least {_MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self._retired = tuple(retired)
        self._first, *later = (*self._retired, secret)
        self._later = tuple(later)

    def __repr__(self) -> str:
        return f"Pseudonymiser(secret=***, retired={len(self._retired)})"

    @property
    def generation(self) -> int:
        """How many keys were retired before the newest (0: never rotated)."""
        return len(self._retired)

    @property
    def retired(self) -> tuple[bytes, ...]:
        """The retired keys, oldest first (they need no secrecy while the newest is secret)."""
        return self._retired

    @property
    def check(self) -> str:
        """:func:`key_check` of the newest key."""
        return key_check(self._secret)

    def hash(self, kind: IdentifierKind, value: str) -> str:
        """The keyed hash of ``value``, prefixed by its kind (``ph_3fa9…``)."""
        return self._hash_normal(kind, normalise(kind, value))

    def _hash_normal(self, kind: IdentifierKind, text: str) -> str:
        """:meth:`hash` of a value already :func:`normalise`-d."""
        digest = hmac.digest(self._first, f"{kind}:{text}".encode(), "sha256").hex()
        hashed = _PREFIX[kind] + digest[:32]
        for key in self._later:
            hashed = rekey_id(key, hashed)
        return hashed

    def hash_many(self, kind: IdentifierKind, values: Sequence[str]) -> list[str]:
        """:meth:`hash` of each of ``values``."""
        return [self.hash(kind, v) for v in values]

    def hash_and_mask_many(self, kind: IdentifierKind, values: Sequence[str]
                           ) -> tuple[list[str], list[str]]:
        """:meth:`hash` and :func:`mask` of each of ``values`` (each normalised once)."""
        normal = [normalise(kind, v) for v in values]
        return ([self._hash_normal(kind, n) for n in normal],
                [_mask_normal(kind, n) for n in normal])

    def remembering(self) -> Pseudonymiser:
        """A pseudonymiser under the same secret that keeps every hash it makes, for work that
        meets the same identifiers again and again (a bulk load hashes each device and IP once
        per chunk it appears in); the memory grows with the distinct identifiers, so drop it
        when the work is done."""
        return _RememberingPseudonymiser(self._secret, self._retired)


class _RememberingPseudonymiser(Pseudonymiser):
    """:meth:`Pseudonymiser.remembering`: the same hashes, each computed once."""

    def __init__(self, secret: bytes, retired: Sequence[bytes] = ()) -> None:
        super().__init__(secret, retired)
        self._seen: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}

    def hash(self, kind: IdentifierKind, value: str) -> str:
        seen = self._seen[kind]
        found = seen.get(value)
        if found is None:
            found = seen[value] = super().hash(kind, value)
        return found

    def hash_and_mask_many(self, kind: IdentifierKind, values: Sequence[str]
                           ) -> tuple[list[str], list[str]]:
        hashed, masked = super().hash_and_mask_many(kind, values)
        self._seen[kind].update(zip(values, hashed, strict=True))
        return hashed, masked

    def hash_many(self, kind: IdentifierKind, values: Sequence[str]) -> list[str]:
        seen = self._seen[kind]
        found = list(map(seen.get, values))
        if None in found:
            new = super().hash
            for i, (value, hashed) in enumerate(zip(values, found, strict=True)):
                if hashed is None:
                    found[i] = seen[value] = new(kind, value)
        return found  # type: ignore[return-value]
