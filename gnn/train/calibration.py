"""`Calibrator`: raw scores to probabilities, fitted on validation data only.

Isotonic regression (monotone, non-parametric) when the validation set has enough positives,
Platt scaling (a logistic on the logit) otherwise; both are stored as plain numbers so a saved
model reloads to the same probabilities.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from gnn.errors import ModelError

Method = Literal["isotonic", "platt", "auto"]


class Calibrator:
    """Monotone map from a raw logit to a calibrated probability.

    Args:
        method (Method, optional): ``"isotonic"``, ``"platt"`` or ``"auto"`` (isotonic with at
            least ``min_positives`` positives, else Platt). (default: ``"auto"``)
        min_positives (int, optional): see ``method``. (default: ``50``)
    """

    def __init__(self, method: Method = "auto", min_positives: int = 50) -> None:
        if method not in ("isotonic", "platt", "auto"):
            raise ValueError(f"method must be 'isotonic', 'platt' or 'auto', got {method!r}")
        self.method = method
        self.min_positives = min_positives
        self.fitted: str | None = None
        self._x: np.ndarray = np.zeros(0)
        self._y: np.ndarray = np.zeros(0)
        self._a = 1.0
        self._b = 0.0

    def fit(self, logits: np.ndarray, y: np.ndarray) -> Calibrator:
        """Fit on validation logits and 0/1 targets.

        Raises:
            ModelError: if ``y`` holds one class only (nothing to calibrate against).
        """
        logits = np.asarray(logits, dtype=np.float64).reshape(-1)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if logits.shape != y.shape:
            raise ValueError(f"logits {logits.shape} and y {y.shape} differ in shape")
        pos = int(y.sum())
        if pos == 0 or pos == y.shape[0]:
            raise ModelError("calibration needs both classes in the validation targets")
        method = self.method
        if method == "auto":
            method = "isotonic" if pos >= self.min_positives else "platt"
        if method == "isotonic":
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
            iso.fit(logits, y)
            self._x = np.asarray(iso.X_thresholds_, dtype=np.float64)
            self._y = np.asarray(iso.y_thresholds_, dtype=np.float64)
        else:
            lr = LogisticRegression(C=1e6, max_iter=1000)
            lr.fit(logits.reshape(-1, 1), y)
            self._a = float(lr.coef_[0, 0])
            self._b = float(lr.intercept_[0])
        self.fitted = method
        return self

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of ``logits``; uncalibrated sigmoid before :meth:`fit`."""
        z = np.asarray(logits, dtype=np.float64)
        if self.fitted == "isotonic":
            # NOTE: isotonic steps tie many scores and reach 0 and 1; a tiny strictly increasing
            # term inside [1e-6, 1 - 1e-6] keeps the ranking (AUROC, AUPRC) of the raw scores.
            p = np.interp(z, self._x, self._y)
            return 1e-6 + (1.0 - 2e-6) * p + 1e-9 * np.tanh(z / 10.0)
        if self.fitted == "platt":
            return 1.0 / (1.0 + np.exp(-(self._a * z + self._b)))
        return 1.0 / (1.0 + np.exp(-z))

    @property
    def slope(self) -> float:
        """``d logit(p) / d logit`` of a Platt map (1 before fitting).

        Raises:
            ModelError: for an isotonic map, whose slope is not one number.
        """
        if self.fitted == "isotonic":
            raise ModelError("an isotonic calibration has no single slope")
        return self._a if self.fitted == "platt" else 1.0

    def state_dict(self) -> dict[str, Any]:
        return {"method": self.method, "min_positives": self.min_positives,
                "fitted": self.fitted, "x": self._x.tolist(), "y": self._y.tolist(),
                "a": self._a, "b": self._b}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Calibrator:
        c = cls(state["method"], state["min_positives"])
        c.fitted = state["fitted"]
        c._x = np.asarray(state["x"], dtype=np.float64)
        c._y = np.asarray(state["y"], dtype=np.float64)
        c._a = float(state["a"])
        c._b = float(state["b"])
        return c

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(method={self.method!r}, fitted={self.fitted!r})"
