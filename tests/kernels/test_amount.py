from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kernels import amount_anomaly


def ref_amount(hu, ht, ha, qu, qt, qa, k, min_scale):
    hist = pd.DataFrame({"u": hu, "t": ht, "a": ha}).sort_values("t", kind="stable")
    out = []
    for u, t, a in zip(qu, qt, qa, strict=True):
        past = hist[(hist.u == u) & (hist.t < t)].a.to_numpy()[-k:]
        if len(past) == 0:
            out.append((np.nan, np.nan, 0))
            continue
        med = float(np.median(past))
        mad = float(np.median(np.abs(past - med)))
        ratio = a / med if med != 0 else np.nan
        out.append((ratio, (a - med) / max(1.4826 * mad, min_scale), len(past)))
    return np.array(out, dtype=np.float64)


@pytest.mark.parametrize("k", [1, 2, 32, 64])
def test_matches_pandas_reference(backend, rng, k) -> None:
    h, q, users = 700, 250, 10
    hu, ht = rng.integers(0, users, h), rng.integers(0, 100, h) * 3600
    ha = np.round(rng.lognormal(5, 1, h), 2)
    ha[:20] = 0.0  # zero median somewhere
    qu, qt = rng.integers(0, users + 1, q), rng.integers(0, 101, q) * 3600
    qa = np.round(rng.lognormal(5.5, 1.2, q), 2)
    b = backend.asarray
    got = amount_anomaly(b(hu), b(ht), b(ha), b(qu), b(qt), b(qa), k=k, min_scale=2.0)
    want = ref_amount(hu, ht, ha, qu, qt, qa, k, 2.0)
    np.testing.assert_allclose(backend.asnumpy(got.ratio_to_median), want[:, 0], rtol=1e-12)
    np.testing.assert_allclose(backend.asnumpy(got.robust_z), want[:, 1], rtol=1e-12)
    np.testing.assert_array_equal(backend.asnumpy(got.n_history), want[:, 2])


def test_constant_history_uses_min_scale(backend) -> None:
    b = backend.asarray
    got = amount_anomaly(b(np.zeros(5, np.int64)), b(np.arange(5)), b(np.full(5, 100.0)),
                         b(np.array([0])), b(np.array([10])), b(np.array([600.0])))
    assert backend.asnumpy(got.mad).tolist() == [0.0]
    assert backend.asnumpy(got.robust_z).tolist() == [500.0]
    assert backend.asnumpy(got.ratio_to_median).tolist() == [6.0]


def test_application_never_sees_itself(backend) -> None:
    b = backend.asarray
    # the application is also in the history (same user, same second)
    got = amount_anomaly(b(np.array([0, 0])), b(np.array([5, 9])), b(np.array([50.0, 5000.0])),
                         b(np.array([0])), b(np.array([9])), b(np.array([5000.0])))
    assert backend.asnumpy(got.median).tolist() == [50.0]
    assert backend.asnumpy(got.n_history).tolist() == [1]


def test_bad_arguments() -> None:
    i, z = np.zeros(1, np.int64), np.zeros(1)
    with pytest.raises(ValueError, match="min_scale must be positive"):
        amount_anomaly(i, i, z, i, i, z, min_scale=0.0)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        amount_anomaly(i, i, z, i, i, z, k=0)
    with pytest.raises(ValueError, match="history_ts must have length 1"):
        amount_anomaly(i, np.zeros(2, np.int64), z, i, i, z)
