"""`FeatureNormaliser`: z-scores with clipping, fitted on training rows and stored with the model."""

from __future__ import annotations

from typing import Any

import numpy as np

from gnn.errors import GraphDataError


class FeatureNormaliser:
    """Per-column ``(x - mean) / std``, clipped; a column constant in training maps to 0.

    NOTE: whatever value a constant column takes later (a flag no training row set, such as
    an account first seen at the moment it applies), the model never learned what it means:
    it reaches the network as 0, not as an input on a weight nothing ever trained.

    Args:
        clip (float, optional): bound on the absolute z-score. (default: ``10.0``)
    """

    def __init__(self, clip: float = 10.0) -> None:
        self.clip = float(clip)
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.varies: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> FeatureNormaliser:
        """Fit on ``x`` ``[N, F]`` (the training rows only)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise GraphDataError(f"features must be 2-D, got shape {x.shape}")
        if x.shape[0] == 0:
            self.mean, self.std = np.zeros(x.shape[1]), np.ones(x.shape[1])
            self.varies = np.zeros(x.shape[1], dtype=bool)
            return self
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.varies = std > 1e-9
        self.std = np.where(self.varies, std, 1.0)
        return self

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Normalised float32 copy of ``x``.

        Raises:
            GraphDataError: before :meth:`fit`, or on a column count mismatch.
        """
        if self.mean is None or self.std is None:
            raise GraphDataError("FeatureNormaliser used before fit")
        if x.shape[1] != self.mean.shape[0]:
            raise GraphDataError(f"expected {self.mean.shape[0]} columns, got {x.shape[1]}")
        return self._z(np.asarray(x, dtype=np.float64), slice(None))

    def column(self, index: int, values: np.ndarray) -> np.ndarray:
        """Normalised float32 copy of ``values``, all of column ``index`` (a column computed
        apart from the others: the recency of each edge in full-graph inference).

        Raises:
            GraphDataError: before :meth:`fit`, or for a column it does not have.
        """
        if self.mean is None or self.std is None:
            raise GraphDataError("FeatureNormaliser used before fit")
        if not -self.mean.shape[0] <= index < self.mean.shape[0]:
            raise GraphDataError(f"no column {index} of {self.mean.shape[0]}")
        return self._z(np.asarray(values, dtype=np.float64), index)

    def _z(self, x: np.ndarray, cols: slice | int) -> np.ndarray:
        assert self.mean is not None and self.std is not None
        z = (x - self.mean[cols]) / self.std[cols]
        if self.varies is not None:
            z = np.where(self.varies[cols], z, 0.0)
        return np.clip(z, -self.clip, self.clip).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        assert self.mean is not None and self.std is not None
        state: dict[str, Any] = {"clip": self.clip, "mean": self.mean.tolist(),
                                 "std": self.std.tolist()}
        if self.varies is not None:
            state["varies"] = self.varies.tolist()
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> FeatureNormaliser:
        n = cls(state["clip"])
        n.mean = np.asarray(state["mean"], dtype=np.float64)
        n.std = np.asarray(state["std"], dtype=np.float64)
        if "varies" in state:
            n.varies = np.asarray(state["varies"], dtype=bool)
        return n

    def __repr__(self) -> str:
        f = None if self.mean is None else self.mean.shape[0]
        return f"{self.__class__.__name__}(features={f}, clip={self.clip})"
