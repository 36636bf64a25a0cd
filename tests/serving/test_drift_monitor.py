"""The drift monitor keeps its PSI as verdicts come and go: after any stream (windows full and
sliding, products joining late, degraded verdicts from the prior, a promotion mid-stream, a
product the reference never saw), what it reports equals the PSI computed from scratch over the
same windows (:func:`serving.drift.measure_drift`, what ``riskgraph drift`` runs offline)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gnn import DriftReference
from serving.champion_challenger import ChampionVerdict
from serving.drift import (
    ALL,
    DriftMonitor,
    DriftStatus,
    DriftThresholds,
    References,
    measure_drift,
)
from serving.scoring import ApplicationFacts

PRODUCTS = ("bnpl", "cash_loan", "merchant_loan")
NAMES = [f"f{i}" for i in range(12)] + ["flag"]
THRESHOLDS = DriftThresholds(warn=0.1, alert=0.25, min_count=5)


class _References(References):
    """Drift references by model version, as the registry would give them."""

    def __init__(self, refs: dict[str, DriftReference]) -> None:  # noqa: D107
        self.refs = refs
        self.reads = 0

    def get(self, version: str | None) -> DriftReference | None:
        self.reads += 1
        return None if version is None else self.refs.get(version)


def _reference(seed: int, version: str) -> DriftReference:
    rng = np.random.default_rng(seed)
    n = 3000
    products = np.asarray(PRODUCTS[:2], dtype=object)[rng.integers(0, 2, n)]
    values = {name: rng.normal(size=n).round(3) for name in NAMES[:-1]}
    values["flag"] = rng.integers(0, 2, n).astype(np.float64)  # two bins
    values["score:fraud"] = rng.random(n)
    values["score:pd"] = rng.random(n) * 0.2
    return DriftReference.from_samples(values, products, model_version=version)


def _verdicts(seed: int, n: int, version: str, *, shift: float = 0.0,
              degraded_share: float = 0.0) -> list[ChampionVerdict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        product = PRODUCTS[int(rng.integers(0, 3))]
        features = {name: float(rng.normal() + shift) for name in NAMES[:-1]}
        features["flag"] = float(rng.integers(0, 2))
        if i % 17 == 0:
            features["f3"] = float("nan")  # a missing input is not counted
        degraded = bool(rng.random() < degraded_share)
        facts = ApplicationFacts(application_id=f"a{seed}-{i}", product=product, amount=100.0,
                                 currency="CNY", user_id="u", device_id=None,
                                 device_masked=None, ip=None, lat=0.0, lon=0.0, ts=i,
                                 merchant_id=None)
        out.append(ChampionVerdict(
            facts, ("approve", "review", "decline")[int(rng.integers(0, 3))],
            float(rng.random()), float(rng.random() * 0.3),
            "prior-1" if degraded else version, degraded, features))
    return out


def _from_scratch(monitor: DriftMonitor, stream: list[ChampionVerdict],
                  version: str | None, refs: _References) -> DriftStatus:
    """The windows the monitor should hold after ``stream``, measured from scratch."""
    kept: dict[str, list[ChampionVerdict]] = {}
    for v in stream:
        kept.setdefault(v.facts.product, []).append(v)
    samples = [DriftMonitor.sample(v) for w in kept.values() for v in w[-monitor.window:]]
    return measure_drift(samples, refs.get(version), THRESHOLDS, version)


def _assert_same(got: DriftStatus, want: DriftStatus) -> None:
    assert got.model_version == want.model_version
    assert got.has_reference == want.has_reference
    assert set(got.products) == set(want.products)
    for name, w in want.products.items():
        g = got.products[name]
        assert (g.verdicts, g.judged) == (w.verdicts, w.judged), name
        assert g.decisions == pytest.approx(w.decisions), name
        assert g.degraded == pytest.approx(w.degraded), name
        assert list(g.psi) == list(w.psi), name
        for k, v in w.psi.items():
            if math.isnan(v):
                assert math.isnan(g.psi[k]), (name, k)
            else:
                assert g.psi[k] == pytest.approx(v, rel=1e-9, abs=1e-12), (name, k)


def test_kept_counts_equal_a_psi_from_scratch_through_slides_and_a_promotion() -> None:
    refs = _References({"m1": _reference(1, "m1"), "m2": _reference(2, "m2")})
    monitor = DriftMonitor(refs, window=40, thresholds=THRESHOLDS)
    stream: list[ChampionVerdict] = []

    def check(version: str | None) -> None:
        _assert_same(monitor.status(), _from_scratch(monitor, stream, version, refs))

    check(None)  # nothing yet
    for v in _verdicts(3, 25, "m1", degraded_share=0.2):
        monitor.observe(v)
        stream.append(v)
    check("m1")  # the first count, windows not full
    for batch in range(3):  # windows slide; counted as they go
        for v in _verdicts(10 + batch, 60, "m1", shift=0.4 * batch, degraded_share=0.1):
            monitor.observe(v)
            stream.append(v)
        check("m1")
    shifted = monitor.status().products[ALL].psi["f0"]
    assert shifted > THRESHOLDS.alert, "a planted shift of 0.8 sd shows"
    for v in _verdicts(20, 30, "m2"):  # promotion: the windows hold both models' verdicts
        monitor.observe(v)
        stream.append(v)
    check("m2")
    for v in _verdicts(21, 90, "m2", degraded_share=0.5):  # the prior's verdicts in between
        monitor.observe(v)
        stream.append(v)
    check("m2")


def test_a_model_without_a_reference_has_decision_shares_only() -> None:
    refs = _References({})
    monitor = DriftMonitor(refs, window=10, thresholds=THRESHOLDS)
    stream = _verdicts(4, 30, "rules")
    for v in stream:
        monitor.observe(v)
    status = monitor.status()
    assert not status.has_reference
    assert all(not d.psi for d in status.products.values())
    _assert_same(status, _from_scratch(monitor, stream, "rules", refs))


def test_a_scrape_after_the_first_counts_nothing_again() -> None:
    refs = _References({"m1": _reference(1, "m1")})
    monitor = DriftMonitor(refs, window=50, thresholds=THRESHOLDS)
    for v in _verdicts(5, 120, "m1"):
        monitor.observe(v)
    monitor.status()
    for kept in (k for w in monitor._windows.values() for k in w):
        assert kept.codes is not None, "every kept verdict is in its bins"
    before = {p: c.bins.copy() for p, c in monitor._counts.items()}
    monitor.status()
    assert all(np.array_equal(before[p], c.bins) for p, c in monitor._counts.items())
