"""`standardise_features`: z-scores with outliers clipped, fitted on features only."""

from __future__ import annotations

import numpy as np

from gnn.errors import GraphDataError


def standardise_features(
    x: np.ndarray, clip: float | None = 10.0, fill_missing: bool = True
) -> np.ndarray:
    """Centre and scale each column to unit variance; constant columns become 0.

    The statistics come from every node's features and from nothing else (no labels), so
    fitting them on the whole graph is legitimate in the transductive setting.

    Args:
        x (np.ndarray): features ``[N, F]``.
        clip (float, optional): clip z-scores to ``[-clip, clip]``; ``None`` to keep them.
            (default: ``10.0``)
        fill_missing (bool, optional): replace NaN by the column mean (z-score 0); otherwise a
            NaN raises. (default: ``True``)

    Returns:
        np.ndarray: float32 ``[N, F]``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise GraphDataError(f"features must be 2-D, got shape {x.shape}")
    if np.isinf(x).any():
        raise GraphDataError("features contain infinite values")
    missing = np.isnan(x)
    if missing.any() and not fill_missing:
        raise GraphDataError("features contain NaN")
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(x, axis=0) if x.shape[0] else np.zeros(x.shape[1])
        std = np.nanstd(x, axis=0) if x.shape[0] else np.ones(x.shape[1])
    mean = np.nan_to_num(mean)
    std = np.where(np.nan_to_num(std) > 1e-12, np.nan_to_num(std), 1.0)
    z = (x - mean) / std
    z[missing] = 0.0
    if clip is not None:
        z = np.clip(z, -clip, clip)
    return z.astype(np.float32)
