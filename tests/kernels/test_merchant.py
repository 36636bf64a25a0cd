from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kernels import DAY, merchant_signals

T0 = 1_700_006_400 - 1_700_006_400 % DAY


def ref_signals(df: pd.DataFrame, qm, qt, R=30, S=14, B=90) -> np.ndarray:
    out = []
    for m, t in zip(qm, qt, strict=True):
        d = df[df.m == m]
        known = d.day + DAY

        def win(lo, hi, d=d, known=known, t=t):
            return d[(known > t - lo * DAY) & (known <= t - hi * DAY)]

        rec, pri = win(R, 0), win(2 * R, R)
        g_rec, g_pri = rec.gmv.sum(), pri.gmv.sum()
        inv = rec.inventory.mean() if len(rec) else np.nan
        spike, base = win(S, 0).gmv.sum() / S, win(B, S).gmv.sum() / (B - S)
        out.append((
            g_rec, g_pri, g_rec / g_pri - 1 if g_pri else np.nan,
            rec.refunds.sum() / g_rec if g_rec else np.nan,
            g_rec / inv if inv == inv and inv else np.nan,
            spike / base if base else np.nan, len(rec),
        ))
    return np.array(out, dtype=np.float64)


def make_reports(rng, n_merchants=8, days=200):
    rows = []
    for m in range(n_merchants):
        start = rng.integers(0, 60)
        gap = rng.random(days) < 0.1  # missing days
        for d in range(start, days):
            if gap[d]:
                continue
            boost = 4.0 if (m == 0 and d > days - 15) else 1.0  # inflated before a loan
            gmv = 0.0 if m == 1 else float(np.round(rng.lognormal(7, 0.5) * boost, 2))
            rows.append((m, T0 + d * DAY, gmv, float(np.round(gmv * rng.uniform(0, 0.1), 2)),
                         float(np.round(rng.lognormal(9, 0.3), 2))))
    return pd.DataFrame(rows, columns=["m", "day", "gmv", "refunds", "inventory"])


def test_matches_pandas_reference(backend, rng) -> None:
    df = make_reports(rng)
    q = 300
    qm = rng.integers(0, 10, q)  # merchants 8 and 9 have no reports
    qt = T0 + rng.integers(0, 210, q) * DAY + rng.choice([0, 1, DAY // 2], q)
    b = backend.asarray
    got = merchant_signals(b(df.m.to_numpy()), b(df.day.to_numpy()), b(df.gmv.to_numpy()),
                           b(df.refunds.to_numpy()), b(df.inventory.to_numpy()), b(qm), b(qt))
    want = ref_signals(df, qm, qt)
    got_arr = np.stack([np.asarray(backend.asnumpy(f), dtype=np.float64) for f in got], 1)
    np.testing.assert_allclose(got_arr, want, rtol=1e-9)


def test_spike_before_a_loan_and_edges(backend) -> None:
    days = np.arange(90)
    gmv = np.where(days >= 76, 400.0, 100.0)  # last 14 days four times the baseline
    b = backend.asarray
    t = T0 + 90 * DAY  # the last report (day 89) is known exactly now: it counts
    got = merchant_signals(b(np.zeros(90, np.int64)), b(T0 + days * DAY), b(gmv),
                           b(np.zeros(90)), b(np.full(90, 50.0)), b(np.array([0, 0])),
                           b(np.array([t, t - 1])))
    spike = backend.asnumpy(got.sales_spike)
    assert spike[0] == pytest.approx(4.0)
    assert backend.asnumpy(got.report_days).tolist() == [30, 30]
    # at t - 1 the window holds days 59..88: 17 at 100 and 13 at 400
    assert backend.asnumpy(got.gmv_recent).tolist() == [16 * 100 + 14 * 400, 17 * 100 + 13 * 400]


def test_bad_windows() -> None:
    z = np.zeros(1)
    i = np.zeros(1, np.int64)
    with pytest.raises(ValueError, match="baseline_days must exceed spike_days"):
        merchant_signals(i, i, z, z, z, i, i, spike_days=30, baseline_days=30)
    with pytest.raises(ValueError, match="recent_days must be a positive integer"):
        merchant_signals(i, i, z, z, z, i, i, recent_days=0)
