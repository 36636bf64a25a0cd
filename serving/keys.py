"""API keys: roles, hashing, the in-memory key ring, and the service functions that manage them.

A key is ``rgk_<key id>_<secret>``: 32 random bytes of secret, so a plain SHA-256 is enough to
store it (nobody can search a 256-bit space; slow password hashes are for guessable secrets).
The store keeps only the hash, under an ``ApiKey`` record named by the key id. The
:class:`KeyRing` holds every key in memory and reloads them from the store periodically, so a
request never waits on the store to authenticate and scoring keeps working while the store is
down; revocations reach every replica within one refresh. It also keeps the records it last
loaded in a file under ``DATA_DIR`` (hashes only, as the store keeps them), so that a replica
started while the store is down accepts the keys that were valid when last seen.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from graph import GraphStore
from graph.store import rows_to_pylist
from serving.errors import LimitExceededError

log = logging.getLogger(__name__)

Role = Literal["scoring", "investigator", "admin"]
ROLES: Final[tuple[Role, ...]] = ("scoring", "investigator", "admin")
KEY_PREFIX: Final = "rgk_"
MIN_RATE_LIMIT_PER_S: Final = 0.01
"""The lowest rate a key may have: one request every 100 s. Below it a key is a revoked key
in disguise, and the wait it is told (``Retry-After``) grows without bound."""
MAX_RATE_LIMIT_PER_S: Final = 100_000.0
KEY_CACHE_FILE: Final = "api-keys.json"
"""The key ring's copy of the stored key records, under ``DATA_DIR``."""


def hash_key(key: str) -> str:
    """SHA-256 of a key, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(key: str) -> str | None:
    """The id part of ``rgk_<id>_<secret>``, or ``None`` if the key is malformed."""
    if not key.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = key[len(KEY_PREFIX):].partition("_")
    if not sep or not key_id or not secret or len(key_id) > 32:
        return None
    return key_id


@dataclass(frozen=True)
class ApiKeyRecord:
    """One API key as the store keeps it (no secret)."""

    key_id: str
    name: str
    role: Role
    key_hash: str
    created_at: int
    revoked_at: int | None = None
    rate_limit_per_s: float | None = None
    created_by: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def row(self) -> dict[str, object]:
        row: dict[str, object] = {"id": self.key_id, "name": self.name, "role": self.role,
                                  "key_hash": self.key_hash, "created_at": self.created_at}
        if self.revoked_at is not None:
            row["revoked_at"] = self.revoked_at
        if self.rate_limit_per_s is not None:
            row["rate_limit_per_s"] = float(self.rate_limit_per_s)
        if self.created_by is not None:
            row["created_by"] = self.created_by
        return row


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key id, its holder's name and role."""

    key_id: str
    name: str
    role: Role
    rate_limit_per_s: float | None = None


def generate_key() -> tuple[str, str]:
    """A new ``(key id, key)``; the key is shown once and never stored."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def create_key(store: GraphStore, name: str, role: Role, *,
               rate_limit_per_s: float | None = None,
               created_by: str | None = None) -> tuple[ApiKeyRecord, str]:
    """Create a key, store its hash, return the record and the key (shown once).

    Args:
        store (GraphStore): where the key's record goes.
        name (str): who holds the key.
        role (Role): what it may call.
        rate_limit_per_s (float, optional): its own rate; ``None``: the server's.
            (default: ``None``)
        created_by (str, optional): key id of the API caller creating it (the CLI's operator
            has none). (default: ``None``)

    Raises:
        ValueError: on an unknown role, an empty name or a rate outside
            :data:`MIN_RATE_LIMIT_PER_S`..:data:`MAX_RATE_LIMIT_PER_S`.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if not name or len(name) > 64:
        raise ValueError(f"name must be 1 to 64 characters, got {name!r}")
    if rate_limit_per_s is not None and not (
            MIN_RATE_LIMIT_PER_S <= rate_limit_per_s <= MAX_RATE_LIMIT_PER_S):
        raise ValueError(f"rate_limit_per_s must be {MIN_RATE_LIMIT_PER_S} to "
                         f"{MAX_RATE_LIMIT_PER_S:.0f}, got {rate_limit_per_s}")
    key_id, key = generate_key()
    record = ApiKeyRecord(key_id, name, role, hash_key(key), int(time.time()),
                          rate_limit_per_s=rate_limit_per_s, created_by=created_by)
    store.upsert_nodes("ApiKey", [record.row()])
    return record, key


def check_creator_cap(records: Iterable[ApiKeyRecord], created_by: str,
                      max_per_creator: int) -> None:
    """Refuse one more key to a caller that already created ``max_per_creator`` active ones.

    Raises:
        LimitExceededError: ``created_by`` holds ``max_per_creator`` active keys it created.
    """
    held = sum(1 for r in records if r.active and r.created_by == created_by)
    if held >= max_per_creator:
        raise LimitExceededError(
            f"key {created_by} already created {held} active keys, the most one caller may "
            f"hold ({max_per_creator}); revoke one first")


def revoke_key(store: GraphStore, key_id: str) -> bool:
    """Mark a key revoked; returns ``False`` if there is no such key."""
    if store.get_node("ApiKey", key_id) is None:
        return False
    store.upsert_nodes("ApiKey", [{"id": key_id, "revoked_at": int(time.time())}])
    return True


def list_keys(store: GraphStore) -> list[ApiKeyRecord]:
    """Every key record in the store, oldest first."""
    records = [_record(row) for row in rows_to_pylist(store.export_nodes("ApiKey"))]
    return sorted((r for r in records if r is not None), key=lambda r: (r.created_at, r.key_id))


def _record(row: dict[str, object]) -> ApiKeyRecord | None:
    role = row.get("role")
    if role not in ROLES or not isinstance(row.get("key_hash"), str):
        return None
    rate = row.get("rate_limit_per_s")
    revoked = row.get("revoked_at")
    created = row.get("created_at")
    creator = row.get("created_by")
    return ApiKeyRecord(
        key_id=str(row["id"]), name=str(row.get("name") or ""), role=role,
        key_hash=str(row["key_hash"]), created_at=created if isinstance(created, int) else 0,
        revoked_at=revoked if isinstance(revoked, int) else None,
        rate_limit_per_s=_rate(rate), created_by=creator if isinstance(creator, str) else None,
    )


def _rate(value: object) -> float | None:
    # NOTE: a key stored before the floor existed may carry a rate below it; it is read at
    # the floor so that its wait stays bounded.
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        return None
    return min(max(float(value), MIN_RATE_LIMIT_PER_S), MAX_RATE_LIMIT_PER_S)


class KeyRing:
    """Every API key in memory, for authentication without a store round trip.

    Args:
        static (Iterable[tuple[str, Role, str]], optional): ``(name, role, key)`` known from
            configuration (the bootstrap admin key); hashed at once, never kept in clear.
            (default: ``()``)
    """

    def __init__(self, static: Iterable[tuple[str, Role, str]] = ()) -> None:
        self._cache: Path | None = None
        self._static: dict[str, ApiKeyRecord] = {}
        for name, role, key in static:
            key_id = key_id_of(key) or ("static-" + hash_key(key)[:12])
            self._static[key_id] = ApiKeyRecord(key_id, name, role, hash_key(key), 0)
        self._static_by_hash = {r.key_hash: r for r in self._static.values()}
        self._stored: dict[str, ApiKeyRecord] = {}
        self._lock = threading.Lock()
        self.loaded_at: float | None = None
        # NOTE: held while a key is counted against its creator's cap and created, so that
        # two concurrent requests of one caller cannot both pass it on this replica; replicas
        # do not coordinate (a caller racing N of them can exceed the cap by N - 1).
        self.creating = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyRing(static={len(self._static)}, stored={len(self._stored)})"

    def authenticate(self, key: str) -> Principal | None:
        """The principal a key belongs to, or ``None`` for an unknown or revoked key."""
        if not key or len(key) > 256:
            return None
        digest = hash_key(key)
        key_id = key_id_of(key)
        record = self._stored.get(key_id) if key_id is not None else None
        if record is None:
            record = self._static_by_hash.get(digest)
        if record is None or not record.active:
            return None
        if not hmac.compare_digest(record.key_hash, digest):
            return None
        return Principal(record.key_id, record.name, record.role, record.rate_limit_per_s)

    def replace(self, records: Iterable[ApiKeyRecord]) -> None:
        """Swap in the store's keys (a refresh)."""
        fresh = {r.key_id: r for r in records}
        with self._lock:
            changed = fresh != self._stored
            self._stored = fresh
            self.loaded_at = time.time()
            if changed:
                self._save()

    def put(self, record: ApiKeyRecord) -> None:
        """Add or update one key at once (this replica's own create or revoke)."""
        with self._lock:
            self._stored = {**self._stored, record.key_id: record}
            self._save()

    def use_cache(self, path: Path) -> int:
        """Keep a copy of the stored key records (hashes, never keys) in ``path`` from now on,
        and start from it when nothing was loaded from the store yet.

        NOTE: a key revoked while this replica could not reach the store stays accepted here
        until the store answers again (then within one refresh); the alternative, refusing
        every key until then, stops all scoring during an outage.

        Args:
            path (Path): the cache file (``DATA_DIR/api-keys.json``), written atomically with
                mode 0600.

        Returns:
            int: the number of key records read from the file.
        """
        records = read_key_cache(path)
        with self._lock:
            self._cache = path
            if self.loaded_at is None and records:
                self._stored = {r.key_id: r for r in records}
                log.info("%d API keys from %s (the store's copy as last seen)", len(records),
                         path)
        return len(records)

    def _save(self) -> None:
        if self._cache is not None:
            try:
                write_key_cache(self._cache, self._stored.values())
            except OSError as e:
                log.warning("API key cache %s not written: %s", self._cache, e)

    def refresh(self, store: GraphStore) -> None:
        """Reload every key from the store (raises if the store is unreachable)."""
        self.replace(list_keys(store))


def read_key_cache(path: Path) -> list[ApiKeyRecord]:
    """The key records of a cache file; none when it is missing or unreadable (logged)."""
    try:
        data = json.loads(path.read_text())
        rows = data["keys"]
        if not isinstance(rows, list):
            raise TypeError("keys is not a list")
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("API key cache %s unreadable, ignored: %s", path, e)
        return []
    return [r for r in (_record(row) for row in rows if isinstance(row, dict)) if r is not None]


def write_key_cache(path: Path, records: Iterable[ApiKeyRecord]) -> None:
    """Replace the cache file with ``records`` (atomically: a reader sees the old or the new
    file, never half of one; mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"keys": [r.row() for r in sorted(records, key=lambda r: r.key_id)]},
                         indent=1)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
