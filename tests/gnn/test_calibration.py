"""`Calibrator`: monotone, fitted on given data, saved and reloaded exactly."""

from __future__ import annotations

import numpy as np
import pytest

from gnn import Calibrator, ModelError


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_is_monotone_and_round_trips(method: str) -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=2000)
    y = (rng.random(2000) < 1 / (1 + np.exp(-(2 * z - 3)))).astype(float)
    cal = Calibrator(method).fit(z, y)  # type: ignore[arg-type]
    grid = np.linspace(-4, 4, 101)
    p = cal(grid)
    assert ((0 <= p) & (p <= 1)).all()
    assert (np.diff(p) > 0).all(), "calibration must keep the ranking"
    assert abs(cal(z).mean() - y.mean()) < 0.02
    again = Calibrator.from_state_dict(cal.state_dict())
    np.testing.assert_array_equal(again(grid), p)


def test_auto_picks_platt_with_few_positives_and_one_class_fails() -> None:
    z = np.linspace(-1, 1, 100)
    y = np.zeros(100)
    y[-5:] = 1
    assert Calibrator("auto", min_positives=50).fit(z, y).fitted == "platt"
    with pytest.raises(ModelError, match="both classes"):
        Calibrator().fit(z, np.zeros(100))
    with pytest.raises(ValueError, match="method"):
        Calibrator("beta")  # type: ignore[arg-type]
