"""`WorldBuilder`: the world under construction, as growing integer-indexed columns.

Every entity (user, device, phone, address, company, IP, merchant) is an integer position;
links and events refer to positions. Clear identifiers (numbers, serials, names) are made only
at the end, from positions, so that patterns can share an entity simply by reusing its position.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np

from simulator.config import PATTERNS, PRODUCTS, WorldConfig

DAY: Final = 86_400
HOUR: Final = 3_600

# Roles of an account in the ground truth.
ROLES: Final[tuple[str, ...]] = ("honest", "fraudster", "accomplice", "victim")
HONEST, FRAUDSTER, ACCOMPLICE, VICTIM = range(4)

IP_KINDS: Final[tuple[str, ...]] = ("residential", "mobile", "office", "public_wifi", "datacenter")
RESIDENTIAL, MOBILE, OFFICE, PUBLIC_WIFI, DATACENTER = range(5)

DEVICE_OS: Final[tuple[str, ...]] = ("android", "ios", "emulator")
ANDROID, IOS, EMULATOR = range(3)

HOME, WORK = 0, 1

BNPL, CASH_LOAN, MERCHANT_LOAN, SME_OWNER_LOAN = range(4)

PATTERN_CODE: Final[dict[str, int]] = {name: i + 1 for i, name in enumerate(PATTERNS)}
"""Pattern name -> code stored in the builder; 0 means honest."""

MERCHANT_SIZES: Final[tuple[str, ...]] = ("micro", "small", "medium", "large")

_SCHEMAS: Final[dict[str, dict[str, str]]] = {
    "users": {
        "created_at": "i8", "city": "i2", "lat": "f8", "lon": "f8", "household": "i4",
        "circle": "i4", "income_band": "i1", "discipline": "f4", "return_prop": "f4",
        "activity": "f4", "bnpl_adopter": "?", "cash_borrower": "?", "company": "i4",
        "home_address": "i4", "role": "i1", "pattern": "i1", "group": "i4",
    },
    "addresses": {"city": "i2", "lat": "f8", "lon": "f8"},
    "companies": {"city": "i2", "lat": "f8", "lon": "f8", "ip": "i4"},
    "phones": {"pool": "?"},
    "devices": {"os": "i1"},
    "ips": {"kind": "i1", "city": "i2", "lat": "f8", "lon": "f8"},
    "merchants": {
        "owner": "i4", "category": "i1", "size": "i1", "city": "i2", "lat": "f8", "lon": "f8",
        "created_at": "i8", "base_gmv": "f8", "refund_rate": "f4", "pattern": "i1",
        "group": "i4",
    },
    "user_phones": {"user": "i4", "phone": "i4", "since": "i8"},
    "user_addresses": {"user": "i4", "kind": "i1", "ref": "i4", "variant": "i1", "since": "i8"},
    "contacts": {"user": "i4", "contact": "i4", "since": "i8"},
    "ownership": {"user": "i4", "merchant": "i4", "since": "i8"},
    "logins": {"user": "i4", "ts": "i8", "device": "i4", "ip": "i4", "lat": "f8", "lon": "f8"},
    "orders": {
        "user": "i4", "merchant": "i4", "ts": "i8", "amount": "f8", "bnpl": "?",
        "returned": "?", "application": "i8",
    },
    "applications": {
        "user": "i4", "product": "i1", "amount": "f8", "ts": "i8", "device": "i4", "ip": "i4",
        "lat": "f8", "lon": "f8", "merchant": "i4", "pattern": "i1", "group": "i4",
        "default_prob": "f4", "term": "i1",
    },
    "repayments": {
        "user": "i4", "application": "i8", "due_ts": "i8", "ts": "i8", "amount": "f8",
        "status": "i1",
    },
    "inflation": {"merchant": "i4", "start_day": "i4", "end_day": "i4", "factor": "f4"},
}


class Columns:
    """An append-only table of typed numpy columns, built from blocks.

    Args:
        name (str): table name, for error messages.
        dtypes (Mapping[str, str]): column name -> numpy dtype string.
    """

    def __init__(self, name: str, dtypes: Mapping[str, str]) -> None:
        self.name = name
        self.dtypes = {k: np.dtype(v) for k, v in dtypes.items()}
        self._blocks: list[dict[str, np.ndarray]] = []
        self._cache: dict[str, np.ndarray] | None = None
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def append(self, n: int | None = None, **cols: object) -> np.ndarray:
        """Append rows; scalars broadcast, missing columns take their fill value.

        Returns:
            np.ndarray: the positions of the new rows.
        """
        unknown = set(cols) - set(self.dtypes)
        if unknown:
            raise KeyError(f"{self.name} has no columns {sorted(unknown)}")
        if n is None:
            arrays = [np.asarray(v) for v in cols.values()]
            sizes = {a.size for a in arrays if a.ndim > 0}
            if len(sizes) != 1:
                raise ValueError(f"{self.name}: cannot infer row count from {sizes}")
            n = sizes.pop()
        block: dict[str, np.ndarray] = {}
        for col, dtype in self.dtypes.items():
            value = cols.get(col, _fill(dtype))
            arr = np.broadcast_to(np.asarray(value), (n,)).astype(dtype, copy=True)
            block[col] = arr
        self._blocks.append(block)
        self._cache = None
        start = self._len
        self._len += n
        return np.arange(start, self._len, dtype=np.int64)

    def col(self, name: str) -> np.ndarray:
        """One column over all rows (read-only view of a cached concatenation)."""
        return self.frame()[name]

    def frame(self) -> dict[str, np.ndarray]:
        """All columns over all rows."""
        if self._cache is None:
            self._cache = {
                c: (np.concatenate([b[c] for b in self._blocks]) if self._blocks
                    else np.empty(0, dtype=d))
                for c, d in self.dtypes.items()
            }
            self._blocks = [self._cache] if self._len else []
        return self._cache

    def update(self, name: str, rows: np.ndarray, values: object) -> None:
        """Overwrite ``name`` at positions ``rows``."""
        frame = self.frame()
        frame[name][rows] = values


def _fill(dtype: np.dtype) -> object:
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "b":
        return False
    if dtype.kind == "i":
        return -1
    raise TypeError(dtype)


class WorldBuilder:
    """The world under construction: entity tables, link tables and event tables.

    Args:
        config (WorldConfig): the world's parameters.
    """

    def __init__(self, config: WorldConfig) -> None:
        self.config = config
        self.start = config.start_ts
        self.end = config.end_ts
        self.tables = {name: Columns(name, schema) for name, schema in _SCHEMAS.items()}
        self._next_group = 0
        # Honest-population lookups the patterns reuse (set by the population module).
        self.mobile_ips_by_city: list[np.ndarray] = []
        self.wifi_ips_by_city: list[np.ndarray] = []
        self.datacenter_ips: np.ndarray = np.empty(0, dtype=np.int64)
        self.household_ip: np.ndarray = np.empty(0, dtype=np.int64)
        self.user_devices: dict[str, np.ndarray] = {}
        self.device_switch_ts: np.ndarray = np.empty(0, dtype=np.int64)
        self.household_size: np.ndarray = np.empty(0, dtype=np.int64)
        self.vpn_user: np.ndarray = np.empty(0, dtype=bool)
        self.honest_users = 0
        self.honest_applications = 0

    def __getattr__(self, name: str) -> Columns:
        tables = self.__dict__.get("tables")
        if tables is not None and name in tables:
            return tables[name]  # type: ignore[no-any-return]
        raise AttributeError(name)

    def new_groups(self, n: int) -> np.ndarray:
        """``n`` fresh group ids (a ring, a crew, a farm, an agency ...)."""
        out = np.arange(self._next_group, self._next_group + n, dtype=np.int64)
        self._next_group += n
        return out

    def new_entities(self, table: str, n: int, **cols: object) -> np.ndarray:
        """Append ``n`` entities to ``table`` and return their positions."""
        return self.tables[table].append(n, **cols)
