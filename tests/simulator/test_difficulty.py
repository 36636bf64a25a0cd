"""Difficulties and the hiding knobs: today's world unchanged, each knob moves its statistic,
the adaptive preset seeded and deterministic."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from simulator import (
    DIFFICULTIES,
    TABLES,
    WorldConfig,
    difficulty_of,
    hiding_knobs,
    hiding_statistics,
    read_metadata,
    read_table,
    render_hiding,
    simulate_world,
    with_difficulty,
    write_world,
)

# NOTE: computed with the code on main before the hiding knobs existed (d4f6ccb): a default
# world must stay that world. Contents are hashed through pandas rather than as Parquet bytes,
# so that a pyarrow upgrade (which may re-encode the same values) does not fail this test.
_MAIN_DIGESTS = {
    "users": "7e260e77c275c69a",
    "phones": "a78188b61f9c3e52",
    "addresses": "552b8930e60593bd",
    "devices": "ed765e401bbf42f8",
    "ips": "f82f167e128a85b3",
    "merchants": "fad90e058e7a82bf",
    "ownership": "e2f5270312e0826a",
    "contacts": "359658f6ac1d2545",
    "logins": "481d906e0301e14e",
    "orders": "0b0a220ffbe52e64",
    "applications": "30030665afdf67f2",
    "applications.term_months": "c248b3812f64a4e2",
    "repayments": "661d10a727ae93f8",
    "merchant_sales": "1e4b8ce710439d22",
    "label_events": "4c0d35ea5d4268a7",
    "truth_applications": "456d9eb7c1c95991",
    "truth_users": "c6673762a5903195",
    "truth_merchants": "50c077f0b24a9963",
    "world.json": "730b359a2ed39506",
}

_USERS = 20_000
_SEED = 4


def _content_digests(config: WorldConfig, out: Path) -> dict[str, str]:
    world = simulate_world(config)
    digests = {}
    for name in TABLES:
        frame = world.table(name).to_pandas()
        # NOTE: the applications' term came later, drawn where the repayments always drew it:
        # the other columns hash as they did before it
        parts = ({name: frame.drop(columns=["term_months"]),
                  f"{name}.term_months": frame[["term_months"]]} if name == "applications"
                 else {name: frame})
        for key, part in parts.items():
            hashed = pd.util.hash_pandas_object(part, index=False)
            digests[key] = hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()[:16]
    write_world(world, out)
    digests["world.json"] = hashlib.sha256((out / "world.json").read_bytes()).hexdigest()[:16]
    return digests


def _file_digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.iterdir()) if p.is_file()}


def _stats(config: WorldConfig, out: Path) -> dict[str, dict[str, float]]:
    write_world(simulate_world(config), out)
    return hiding_statistics(out)


@pytest.fixture(scope="module")
def default_stats(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, float]]:
    return _stats(WorldConfig(users=_USERS, seed=_SEED), tmp_path_factory.mktemp("default"))


# -- today's world ----------------------------------------------------------------------------
def test_a_default_world_is_the_world_before_the_knobs(tmp_path: Path) -> None:
    assert _content_digests(WorldConfig(users=1500, seed=5), tmp_path) == _MAIN_DIGESTS


def test_the_default_difficulty_is_the_default_config(tmp_path: Path) -> None:
    config = WorldConfig(users=1500, seed=5)
    assert with_difficulty(config, "default") == config
    assert difficulty_of(config) == "default"
    assert hiding_knobs(config) == {}
    write_world(simulate_world(config), tmp_path / "a")
    write_world(simulate_world(with_difficulty(config, "default")), tmp_path / "b")
    assert _file_digests(tmp_path / "a") == _file_digests(tmp_path / "b")


def test_world_json_leaves_out_hiding_knobs_at_their_defaults() -> None:
    plain = WorldConfig().to_dict()
    assert "history_prob" not in plain["fraud_ring"]
    assert "aged_mule_prob" not in plain["merchant_collusion"]
    adaptive = with_difficulty(WorldConfig(), "adaptive")
    written = adaptive.to_dict()
    assert written["fraud_ring"]["history_prob"] == adaptive.fraud_ring.history_prob
    assert WorldConfig.from_dict(written) == adaptive
    assert WorldConfig.from_dict(plain) == WorldConfig()


# -- the adaptive preset ----------------------------------------------------------------------
def test_adaptive_is_seeded_and_deterministic(tmp_path: Path) -> None:
    config = with_difficulty(WorldConfig(users=1500, seed=5), "adaptive")
    write_world(simulate_world(config), tmp_path / "a")
    write_world(simulate_world(config), tmp_path / "b")
    write_world(simulate_world(replace(config, seed=6)), tmp_path / "c")
    a, b, c = (_file_digests(tmp_path / x) for x in "abc")
    assert a == b
    assert all(a[name] != c[name] for name in a)
    default = _file_digests(_write_default(tmp_path / "d"))
    assert a["applications.parquet"] != default["applications.parquet"]
    meta = read_metadata(tmp_path / "a")
    config_json: dict[str, Any] = meta["config"]  # type: ignore[assignment]
    assert difficulty_of(WorldConfig.from_dict(config_json)) == "adaptive"


def _write_default(out: Path) -> Path:
    write_world(simulate_world(WorldConfig(users=1500, seed=5)), out)
    return out


def test_unknown_difficulty_is_refused() -> None:
    with pytest.raises(ValueError, match="difficulty must be one of"):
        with_difficulty(WorldConfig(), "nightmare")
    assert set(DIFFICULTIES) == {"default", "adaptive"}


@pytest.mark.slow
def test_adaptive_hides_every_way_at_once(tmp_path: Path,
                                          default_stats: dict[str, dict[str, float]]) -> None:
    adaptive = _stats(with_difficulty(WorldConfig(users=_USERS, seed=_SEED), "adaptive"),
                      tmp_path)
    d, a = default_stats, adaptive
    assert a["fraud_ring"]["accounts_per_device"] < d["fraud_ring"]["accounts_per_device"]
    assert a["fraud_ring"]["accounts_per_phone"] < d["fraud_ring"]["accounts_per_phone"]
    assert a["device_farm"]["accounts_per_device"] < d["device_farm"]["accounts_per_device"]
    assert a["fraud_ring"]["group_span_days"] > 5 * d["fraud_ring"]["group_span_days"]
    for pattern in ("fraud_ring", "merchant_collusion", "device_farm", "synthetic_identity"):
        assert (a[pattern]["age_at_first_application_days"]
                > d[pattern]["age_at_first_application_days"]), pattern
    # NOTE: harder, not impossible: shared devices still betray rings and farms.
    assert a["fraud_ring"]["accounts_per_device"] > a["honest"]["accounts_per_device"]
    assert a["device_farm"]["accounts_per_device"] > 3 * a["honest"]["accounts_per_device"]
    text = render_hiding({"default": tmp_path, "adaptive": tmp_path}, command="test")
    assert "| fraud_ring | days from a group's first to its last application" in text


# -- each knob alone --------------------------------------------------------------------------
_KNOBS = [
    # section, knob, value, pattern, statistic, direction (+1: rises, -1: falls)
    ("fraud_ring", "devices_per_account", 0.7, "fraud_ring", "accounts_per_device", -1),
    ("fraud_ring", "phones_per_account", 1.0, "fraud_ring", "accounts_per_phone", -1),
    ("fraud_ring", "burst_hours", 21 * 24.0, "fraud_ring", "group_span_days", +1),
    ("fraud_ring", "burst_hours", 21 * 24.0, "fraud_ring", "account_gap_days", +1),
    ("fraud_ring", "history_prob", 1.0, "fraud_ring", "orders_before_first_application", +1),
    ("fraud_ring", "new_account_days_max", 120, "fraud_ring",
     "age_at_first_application_days", +1),
    ("fraud_ring", "bought_account_prob", 0.8, "fraud_ring",
     "age_at_first_application_days", +1),
    ("synthetic_identity", "history_prob", 1.0, "synthetic_identity", "history_share", +1),
    ("synthetic_identity", "app_gap_days_max", 21, "synthetic_identity", "account_gap_days", +1),
    ("merchant_collusion", "aged_mule_prob", 1.0, "merchant_collusion",
     "age_at_first_application_days", +1),
    ("device_farm", "history_prob", 1.0, "device_farm", "orders_before_first_application", +1),
    ("device_farm", "devices_max", 24, "device_farm", "accounts_per_device", -1),
]


@pytest.mark.slow
@pytest.mark.parametrize(("section", "knob", "value", "pattern", "statistic", "direction"),
                         _KNOBS, ids=[f"{s}.{k}-{st}" for s, k, _, _, st, _ in _KNOBS])
def test_each_knob_moves_its_statistic(tmp_path: Path,
                                       default_stats: dict[str, dict[str, float]],
                                       section: str, knob: str, value: object, pattern: str,
                                       statistic: str, direction: int) -> None:
    base = WorldConfig(users=_USERS, seed=_SEED)
    changed = replace(base, **{section: replace(getattr(base, section), **{knob: value})})
    assert difficulty_of(changed) == "custom"
    assert hiding_knobs(changed) == {f"{section}.{knob}": value}
    after = _stats(changed, tmp_path)[pattern][statistic]
    before = default_stats[pattern][statistic]
    assert (after - before) * direction > 0, (before, after)


@pytest.mark.slow
def test_aged_mules_fill_their_years_with_a_borrowed_history(tmp_path: Path) -> None:
    # NOTE: a mule opened days before its scheme has little history to borrow; aged, it has.
    base = WorldConfig(users=_USERS, seed=_SEED)
    aged = replace(base, merchant_collusion=replace(base.merchant_collusion, aged_mule_prob=1.0))
    shops = replace(aged, merchant_collusion=replace(aged.merchant_collusion, history_prob=1.0))
    before = _stats(aged, tmp_path / "a")["merchant_collusion"]
    after = _stats(shops, tmp_path / "b")["merchant_collusion"]
    assert (after["orders_before_first_application"]
            > before["orders_before_first_application"] + 1.0), (before, after)


@pytest.mark.slow
def test_bought_accounts_are_old_honest_users_with_their_history(tmp_path: Path) -> None:
    base = WorldConfig(users=_USERS, seed=_SEED)
    config = replace(base, fraud_ring=replace(base.fraud_ring, bought_account_prob=1.0))
    write_world(simulate_world(config), tmp_path)
    tu = read_table(tmp_path, "truth_users").to_pandas()
    users = read_table(tmp_path, "users").to_pandas().set_index("user_id")
    ring = tu[(tu.pattern == "fraud_ring") & (tu.role == "fraudster")]
    bought = ring[ring.household_id.notna()]
    assert len(bought) > 0.5 * len(ring)
    start = read_metadata(tmp_path)["start_ts"]
    assert isinstance(start, int)
    assert (users.created_at[bought.user_id] <= start - 180 * 86_400).all()
    orders = read_table(tmp_path, "orders").to_pandas()
    assert orders.user_id.isin(bought.user_id).any()


def test_hiding_knobs_outside_their_range_are_refused() -> None:
    base = WorldConfig()
    bad = [
        ("fraud_ring", "history_prob", 1.5),
        ("fraud_ring", "devices_per_account", -0.1),
        ("fraud_ring", "new_account_days_max", 3),
        ("synthetic_identity", "app_gap_days_max", 0),
        ("merchant_collusion", "aged_days_min", 600),
    ]
    for section, knob, value in bad:
        with pytest.raises(ValueError, match=f"{section}.{knob}"):
            replace(base, **{section: replace(getattr(base, section), **{knob: value})})


def test_the_metadata_names_the_knobs_of_an_adaptive_world(tmp_path: Path) -> None:
    config = with_difficulty(WorldConfig(users=1500, seed=5), "adaptive")
    write_world(simulate_world(config), tmp_path)
    written = json.loads((tmp_path / "world.json").read_text())["config"]
    for name, value in hiding_knobs(config).items():
        section, knob = name.split(".")
        assert written[section][knob] == (list(value) if isinstance(value, tuple) else value)
