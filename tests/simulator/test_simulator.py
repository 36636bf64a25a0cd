"""The simulator: determinism, base rates, each planted pattern, label timing, realism."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from graph import normalise
from simulator import (
    PATTERNS,
    TABLES,
    World,
    WorldConfig,
    read_metadata,
    simulate_world,
    write_world,
)
from simulator.config import CreditConfig

DAY = 86_400


def _digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.iterdir()) if p.is_file()}


def _frames(world: World) -> dict[str, pd.DataFrame]:
    return {name: world.table(name).to_pandas() for name in TABLES}


@pytest.fixture(scope="module")
def big() -> dict[str, pd.DataFrame]:
    """A 30k-user world: large enough for rates, small enough for seconds."""
    return _frames(simulate_world(WorldConfig(users=30_000, seed=11)))


@pytest.fixture(scope="module")
def big_other_seed() -> dict[str, pd.DataFrame]:
    return _frames(simulate_world(WorldConfig(users=30_000, seed=12)))


# -- determinism ------------------------------------------------------------------------------
def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    config = WorldConfig(users=1500, seed=5)
    write_world(simulate_world(config), tmp_path / "a")
    write_world(simulate_world(config), tmp_path / "b")
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert set(a) == {f"{t}.parquet" for t in TABLES} | {"world.json"}
    assert a == b


def test_different_seed_gives_different_world(tmp_path: Path) -> None:
    write_world(simulate_world(WorldConfig(users=1500, seed=5)), tmp_path / "a")
    write_world(simulate_world(WorldConfig(users=1500, seed=6)), tmp_path / "b")
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert all(a[name] != b[name] for name in a)


def test_files_follow_the_documented_schema(tmp_path: Path) -> None:
    rows = write_world(simulate_world(WorldConfig(users=800, seed=2)), tmp_path)
    meta = read_metadata(tmp_path)
    assert meta["rows"] == rows
    import pyarrow.parquet as pq

    for name, schema in TABLES.items():
        table = pq.read_table(tmp_path / f"{name}.parquet")
        assert table.schema.equals(schema, check_metadata=False), name
        assert table.num_rows == rows[name] > 0, name
        for field in schema:
            if not field.nullable:
                assert table.column(field.name).null_count == 0, (name, field.name)


def test_same_rates_for_another_seed(big: dict[str, pd.DataFrame],
                                     big_other_seed: dict[str, pd.DataFrame]) -> None:
    def rates(w: dict[str, pd.DataFrame]) -> tuple[float, float, float]:
        ta = w["truth_applications"]
        funded = ta[ta.funded]
        fraud = ta[ta.fraud]
        return (ta.fraud.mean(), funded["default"].mean(), fraud.fraud_label_at.isna().mean())

    (f1, d1, u1), (f2, d2, u2) = rates(big), rates(big_other_seed)
    assert not big["users"].equals(big_other_seed["users"])
    assert abs(f1 - f2) < 0.005
    assert abs(d1 - d2) < 0.01
    assert abs(u1 - u2) < 0.08


# -- base rates -------------------------------------------------------------------------------
def test_fraud_is_one_to_two_percent_of_applications(big: dict[str, pd.DataFrame]) -> None:
    assert 0.01 <= big["truth_applications"].fraud.mean() <= 0.02


def test_default_rate_of_funded_loans_hits_the_target(big: dict[str, pd.DataFrame]) -> None:
    ta = big["truth_applications"]
    assert abs(ta[ta.funded]["default"].mean() - 0.05) < 0.008
    assert not ta[~ta.funded]["default"].any()


def test_default_rate_is_configurable() -> None:
    w = simulate_world(WorldConfig(users=20_000, seed=3, credit=CreditConfig(default_rate=0.07)))
    ta = w.table("truth_applications").to_pandas()
    assert abs(ta[ta.funded]["default"].mean() - 0.07) < 0.01


def test_unlabelled_fraud_share(big: dict[str, pd.DataFrame]) -> None:
    fraud = big["truth_applications"].query("fraud")
    assert 0.10 <= fraud.fraud_label_at.isna().mean() <= 0.30


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_pattern_appears_at_its_configured_rate(big: dict[str, pd.DataFrame],
                                                     pattern: str) -> None:
    ta = big["truth_applications"]
    config = WorldConfig()
    honest = int((~ta.fraud).sum())
    target = config.fraud_rate / (1 - config.fraud_rate) * honest * config.pattern_mix[pattern]
    got = int((ta.pattern == pattern).sum())
    assert got >= 1
    # NOTE: patterns come in groups (a ring, a farm), so small targets are met only roughly.
    assert abs(got - target) <= max(0.35 * target, 12), (got, target)
    assert ta[ta.pattern == pattern].group_id.notna().all()


# -- the patterns look like themselves --------------------------------------------------------
def _fraud_apps(w: dict[str, pd.DataFrame], pattern: str) -> pd.DataFrame:
    ta = w["truth_applications"][["application_id", "pattern", "group_id"]]
    return w["applications"].merge(ta, on="application_id").query("pattern == @pattern")


def test_rings_share_small_pools_and_apply_in_a_burst(big: dict[str, pd.DataFrame]) -> None:
    apps = _fraud_apps(big, "fraud_ring")
    per_ring = apps.groupby("group_id").agg(users=("user_id", "nunique"),
                                            devices=("device_serial", "nunique"),
                                            span=("ts", lambda t: t.max() - t.min()))
    assert (per_ring.span <= 48 * 3600).all()
    assert (per_ring.devices < per_ring.users).mean() > 0.5
    assert (apps["product"] == "cash_loan").mean() > 0.7
    ta = big["truth_applications"]
    assert ta[(ta.pattern == "fraud_ring") & ta.funded]["default"].all()


def test_synthetic_identities_are_thin_and_recycle_contacts(big: dict[str, pd.DataFrame]
                                                            ) -> None:
    tu = big["truth_users"]
    synth = set(tu.user_id[tu.pattern == "synthetic_identity"])
    orders = big["orders"]
    plain = orders[orders.user_id.isin(synth) & ~orders.bnpl]
    assert plain.groupby("user_id").size().max() <= 2
    phones = big["phones"]
    shared = phones.groupby("phone").user_id.nunique()
    synth_phones = phones[phones.user_id.isin(synth)].phone
    assert (shared[synth_phones] > 1).mean() > 0.3
    contacts = big["contacts"][lambda c: c.user_id.isin(synth)]
    assert contacts.groupby("contact_user_id").user_id.nunique().max() >= 2


def test_account_takeover_is_new_device_far_and_large(big: dict[str, pd.DataFrame]) -> None:
    apps = _fraud_apps(big, "account_takeover")
    users = big["users"].set_index("user_id")
    start = WorldConfig().start_ts
    assert (users.loc[apps.user_id].created_at <= start - 180 * DAY).all()
    tu = big["truth_users"].set_index("user_id")
    assert (tu.loc[apps.user_id].role == "victim").all()
    assert not tu.loc[apps.user_id].fraud.any()
    logins = big["logins"]
    for _, a in apps.head(30).iterrows():
        before = logins[(logins.user_id == a.user_id) & (logins.ts < a.ts - 13 * DAY)]
        assert a.device_serial not in set(before.device_serial)
        median = big["orders"].query("user_id == @a.user_id and ts < @a.ts").amount.median()
        assert a.amount >= min(3 * median, 3000) - 1
    from simulator._geo import haversine_km

    d = haversine_km(users.loc[apps.user_id].home_lat.to_numpy(),
                     users.loc[apps.user_id].home_lon.to_numpy(), apps.lat.to_numpy(),
                     apps.lon.to_numpy())
    assert 0.6 <= (d > 500).mean() <= 0.95


def test_collusion_is_big_bnpl_at_one_merchant_partly_refunded(big: dict[str, pd.DataFrame]
                                                               ) -> None:
    apps = _fraud_apps(big, "merchant_collusion")
    assert (apps["product"] == "bnpl").all()
    assert (apps.groupby("group_id").merchant_id.nunique() == 1).all()
    assert apps.amount.median() > 3000
    orders = big["orders"][big["orders"].application_id.isin(apps.application_id)]
    assert 0.3 <= orders.returned.mean() <= 0.7
    tm = big["truth_merchants"]
    assert set(apps.merchant_id) <= set(tm.merchant_id[tm.pattern == "merchant_collusion"])


def test_sales_inflation_raises_gmv_not_inventory(big: dict[str, pd.DataFrame]) -> None:
    apps = _fraud_apps(big, "sales_inflation")
    loans = apps[apps["product"] == "merchant_loan"]
    assert len(loans) >= 1
    sales = big["merchant_sales"]
    jumps = []
    for _, a in loans.iterrows():
        s = sales[sales.merchant_id == a.merchant_id].set_index("day")
        recent = s[(s.index < a.ts) & (s.index >= a.ts - 25 * DAY)]
        base = s[s.index < a.ts - 80 * DAY]
        if len(base) >= 10:
            jumps.append(recent.gmv.mean() / base.gmv.mean())
    assert jumps and np.median(jumps) > 1.5


def test_packaging_declares_one_company_in_spelling_variants(big: dict[str, pd.DataFrame]
                                                             ) -> None:
    tu = big["truth_users"]
    places = big["addresses"].merge(tu[["user_id", "pattern", "group_id"]], on="user_id")
    work = places[(places.kind == "work") & (places.pattern == "intermediary_packaging")].copy()
    work["company"] = [normalise("company", v) for v in work.value]
    apps = _fraud_apps(big, "intermediary_packaging")
    for group, members in apps.groupby("group_id"):
        declared = work[work.user_id.isin(members.user_id)]
        shared = declared.groupby("company").user_id.nunique().max()
        assert shared == members.user_id.nunique()
        if shared >= 10:
            assert declared[declared.company == declared.company.mode()[0]].value.nunique() > 1
        assert members.device_serial.nunique() >= 0.8 * members.user_id.nunique()


def test_device_farms_put_many_accounts_on_few_devices(big: dict[str, pd.DataFrame]) -> None:
    apps = _fraud_apps(big, "device_farm")
    per = apps.groupby("group_id").agg(users=("user_id", "nunique"),
                                       devices=("device_serial", "nunique"))
    assert (per.users >= 3 * per.devices).all()
    devices = big["devices"].set_index("device_serial")
    assert (devices.loc[apps.device_serial.unique()].os == "emulator").mean() > 0.3


def test_default_follows_behaviour_and_contacts_not_fraud(big: dict[str, pd.DataFrame]) -> None:
    ta = big["truth_applications"]
    honest = ta[ta.funded & ~ta.fraud]
    tu = big["truth_users"].set_index("user_id")
    contacts = big["contacts"]
    bad = set(tu.index[tu["default"]])
    has_bad = contacts[contacts.contact_user_id.isin(bad)].user_id.unique()
    with_bad = honest.user_id.isin(has_bad)
    assert honest[with_bad]["default"].mean() > 1.5 * honest[~with_bad]["default"].mean()
    low = tu.loc[honest.user_id].income_band.to_numpy() <= 0
    assert honest[low]["default"].mean() > honest[~low]["default"].mean()
    reps = big["repayments"]
    late_users = reps[reps.status == "late"].user_id.unique()
    late = honest.user_id.isin(late_users)
    assert honest[late]["default"].mean() > honest[~late]["default"].mean()


# -- labels -----------------------------------------------------------------------------------
def test_no_label_is_visible_before_its_event(big: dict[str, pd.DataFrame]) -> None:
    ta = big["truth_applications"].set_index("application_id")
    ev = big["label_events"]
    app_ev = ev[ev.entity_type == "Application"]
    assert (app_ev.visible_at.to_numpy() > ta.loc[app_ev.entity_id].ts.to_numpy()).all()
    fraud_ev = app_ev[app_ev.kind == "fraud"]
    assert ta.loc[fraud_ev.entity_id].fraud.all()
    delay = (fraud_ev.visible_at.to_numpy() - ta.loc[fraud_ev.entity_id].ts.to_numpy()) / DAY
    assert delay.min() >= 1 and np.median(delay) > 3 and delay.max() <= 90
    default_ev = app_ev[app_ev.kind == "default"]
    assert (default_ev.visible_at.to_numpy()
            >= ta.loc[default_ev.entity_id].ts.to_numpy() + 60 * DAY).all()
    # A user's fraud label comes no earlier than the user's first fraud application.
    user_ev = ev[(ev.entity_type == "User") & (ev.kind == "fraud")]
    first_app = ta[ta.fraud].groupby("user_id").ts.min()
    own = user_ev[user_ev.entity_id.isin(first_app.index)]
    assert (own.visible_at.to_numpy() >= first_app.loc[own.entity_id].to_numpy()).all()
    # Ground truth and label events agree.
    labelled = ta.fraud_label_at.dropna()
    assert set(labelled.index) == set(fraud_ev.entity_id)


def test_victims_and_honest_users_never_get_fraud_labels(big: dict[str, pd.DataFrame]) -> None:
    tu = big["truth_users"].set_index("user_id")
    ev = big["label_events"]
    flagged = ev[(ev.entity_type == "User") & (ev.kind == "fraud")].entity_id
    assert tu.loc[flagged].fraud.all()


# -- realism ----------------------------------------------------------------------------------
def test_honest_hubs_families_and_spelling_variants(big: dict[str, pd.DataFrame]) -> None:
    logins, ips = big["logins"], big["ips"].set_index("ip")
    per_ip = logins.groupby("ip").user_id.nunique()
    kind = ips.kind.reindex(per_ip.index)
    assert per_ip[kind == "mobile"].max() >= 1000
    assert per_ip[kind == "office"].max() >= 100
    assert per_ip[kind == "public_wifi"].median() >= 100
    tu = big["truth_users"].set_index("user_id")
    honest_logins = logins[logins.user_id.isin(tu.index[tu.role == "honest"])]
    per_device = honest_logins.groupby("device_serial").user_id.nunique()
    assert (per_device >= 2).sum() > 100  # family devices
    homes = big["addresses"].query("kind == 'home'")
    assert homes.groupby("value").user_id.nunique().max() >= 3  # households
    work = big["addresses"].query("kind == 'work'")
    spellings = work.groupby(work.value.map(lambda v: normalise("company", v))).value.nunique()
    assert (spellings > 1).mean() > 0.5


def test_fraud_hides_on_clean_devices_and_unlabelled(big: dict[str, pd.DataFrame]) -> None:
    apps = _fraud_apps(big, "fraud_ring")
    logins = big["logins"]
    per_device = pd.concat([logins, big["applications"]]).groupby(
        "device_serial").user_id.nunique()
    assert (per_device.loc[apps.device_serial] == 1).any()


def test_identifiers_look_real_and_ids_leak_nothing(big: dict[str, pd.DataFrame]) -> None:
    users = big["users"]
    nid = users.national_id.to_numpy().astype("U18")
    digits = np.array([[int(c) for c in s[:17]] for s in nid[:500]])
    weights = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
    check = np.array(list("10X98765432"))[(digits @ weights) % 11]
    assert (check == np.array([s[17] for s in nid[:500]])).all()
    assert big["phones"].phone.str.fullmatch(r"1\d{10}").all()
    tu = big["truth_users"]
    rank = np.flatnonzero(tu.fraud.to_numpy()) / len(tu)
    assert 0.3 < rank.mean() < 0.7  # fraud accounts are not numbered last


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="fraud_rate"):
        WorldConfig(fraud_rate=0.0)
    with pytest.raises(ValueError, match="pattern_mix"):
        WorldConfig(pattern_mix={"fraud_ring": 1.0})
    with pytest.raises(ValueError, match="users"):
        WorldConfig(users=5)
    config = WorldConfig(users=1234, seed=9)
    assert WorldConfig.from_dict(config.to_dict()) == config


def test_tables_are_arrow_with_docs() -> None:
    for schema in TABLES.values():
        assert all(f.metadata and f.metadata.get(b"doc") for f in schema)
        assert isinstance(schema, pa.Schema)
