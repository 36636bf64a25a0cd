"""`FeatureNormaliser`: z-scores with clipping, fitted on training rows and stored with the model."""

from __future__ import annotations

from typing import Any

import numpy as np

from gnn.errors import GraphDataError


class FeatureNormaliser:
    """Per-column ``(x - mean) / std``, clipped; constant columns map to 0.

    Args:
        clip (float, optional): bound on the absolute z-score. (default: ``10.0``)
    """

    def __init__(self, clip: float = 10.0) -> None:
        self.clip = float(clip)
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> FeatureNormaliser:
        """Fit on ``x`` ``[N, F]`` (the training rows only)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise GraphDataError(f"features must be 2-D, got shape {x.shape}")
        if x.shape[0] == 0:
            self.mean, self.std = np.zeros(x.shape[1]), np.ones(x.shape[1])
            return self
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.std = np.where(std > 1e-9, std, 1.0)
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
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.std
        return np.clip(z, -self.clip, self.clip).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        assert self.mean is not None and self.std is not None
        return {"clip": self.clip, "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> FeatureNormaliser:
        n = cls(state["clip"])
        n.mean = np.asarray(state["mean"], dtype=np.float64)
        n.std = np.asarray(state["std"], dtype=np.float64)
        return n

    def __repr__(self) -> str:
        f = None if self.mean is None else self.mean.shape[0]
        return f"{self.__class__.__name__}(features={f}, clip={self.clip})"
