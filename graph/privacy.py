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
    if kind == "ip":
        return str(_ip_address(text))
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
    text = normalise(kind, value)
    if kind == "ip":
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

    def remembering(self) -> Pseudonymiser:
        """A pseudonymiser under the same secret that keeps every hash it makes, for work that
        meets the same identifiers again and again (a bulk load hashes each device and IP once
        per chunk it appears in); the memory grows with the distinct identifiers, so drop it
        when the work is done."""
        return _RememberingPseudonymiser(self._secret)


class _RememberingPseudonymiser(Pseudonymiser):
    """:meth:`Pseudonymiser.remembering`: the same hashes, each computed once."""

    def __init__(self, secret: bytes) -> None:
        super().__init__(secret)
        self._seen: dict[tuple[str, str], str] = {}

    def hash(self, kind: IdentifierKind, value: str) -> str:
        found = self._seen.get((kind, value))
        if found is None:
            found = self._seen[(kind, value)] = super().hash(kind, value)
        return found
