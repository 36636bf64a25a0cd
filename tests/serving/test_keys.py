"""API keys: the key ring's copy of the stored records under DATA_DIR (issue 18, defect 6)."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from serving.keys import (
    ApiKeyRecord,
    KeyRing,
    generate_key,
    hash_key,
    read_key_cache,
    write_key_cache,
)


def _record(key: str, key_id: str, *, revoked: bool = False) -> ApiKeyRecord:
    return ApiKeyRecord(key_id, "flow", "scoring", hash_key(key), 1_700_000_000,
                        revoked_at=1_700_000_100 if revoked else None, rate_limit_per_s=50.0)


def test_a_refresh_is_kept_hashed_and_a_new_ring_starts_from_it(tmp_path: Path) -> None:
    (kid, key), (rid, revoked) = generate_key(), generate_key()
    path = tmp_path / "data" / "api-keys.json"
    ring = KeyRing()
    assert ring.use_cache(path) == 0 and not path.exists()
    ring.replace([_record(key, kid), _record(revoked, rid, revoked=True)])

    text = path.read_text()
    assert hash_key(key) in text and key not in text and key.split("_", 2)[2] not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["api-keys.json"]  # no temp file left

    restarted = KeyRing()  # a replica starting while the store is down
    assert restarted.authenticate(key) is None
    assert restarted.use_cache(path) == 2
    principal = restarted.authenticate(key)
    assert principal is not None and (principal.key_id, principal.role) == (kid, "scoring")
    assert principal.rate_limit_per_s == 50.0
    assert restarted.authenticate(revoked) is None
    assert restarted.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None


def test_the_store_wins_over_the_cache(tmp_path: Path) -> None:
    (kid, key) = generate_key()
    path = tmp_path / "api-keys.json"
    write_key_cache(path, [_record(key, kid)])
    ring = KeyRing()
    ring.replace([])  # the store answered first: it has no such key (deleted)
    ring.use_cache(path)
    assert ring.authenticate(key) is None
    ring.replace([_record(key, kid, revoked=True)])  # revoked in the store: the cache follows
    assert read_key_cache(path)[0].revoked_at is not None
    ring.put(_record(key, kid))
    assert read_key_cache(path)[0].revoked_at is None


@pytest.mark.parametrize("content", ["{not json", '{"keys": 3}', "[]"])
def test_an_unreadable_cache_is_ignored(tmp_path: Path, content: str,
                                        caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "api-keys.json"
    path.write_text(content)
    with caplog.at_level(logging.WARNING, logger="serving.keys"):
        assert KeyRing().use_cache(path) == 0
    assert "unreadable" in caplog.text


def test_malformed_rows_are_skipped(tmp_path: Path) -> None:
    (kid, key) = generate_key()
    path = tmp_path / "api-keys.json"
    rows = [_record(key, kid).row(), {"id": "x", "role": "root", "key_hash": "00"}, "junk"]
    path.write_text(json.dumps({"keys": rows}))
    assert [r.key_id for r in read_key_cache(path)] == [kid]
