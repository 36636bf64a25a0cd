"""`blend_on_validation`: a convex blend of two rankings, its weight chosen on validation."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score


def blend_on_validation(
    a: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
    val_mask: np.ndarray,
    grid: int = 21,
) -> tuple[np.ndarray, float]:
    """Blend ``w * rank(a) + (1 - w) * rank(b)`` with the ``w`` of best validation ROC-AUC.

    Ranks (scaled to ``[0, 1]``) make the blend insensitive to how differently the two models
    are calibrated; ROC-AUC depends on ranks only. Ties in validation AUC go to the larger
    ``w`` (the first model).

    Args:
        a (np.ndarray): scores of model A ``[N]``.
        b (np.ndarray): scores of model B ``[N]``.
        y (np.ndarray): binary labels ``[N]`` (only ``val_mask`` entries are read).
        val_mask (np.ndarray): bool ``[N]``.
        grid (int, optional): number of evenly spaced weights in ``[0, 1]``. (default: ``21``)

    Returns:
        tuple[np.ndarray, float]: blended scores ``[N]`` and the chosen ``w``.
    """
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D of equal shape, got {a.shape}, {b.shape}")
    if grid < 2:
        raise ValueError(f"grid must be >= 2, got {grid}")
    ra = (rankdata(a) - 1) / max(a.shape[0] - 1, 1)
    rb = (rankdata(b) - 1) / max(b.shape[0] - 1, 1)
    val = np.asarray(val_mask, dtype=bool)
    best_w, best_auc = 1.0, -np.inf
    for w in np.linspace(1.0, 0.0, grid):
        auc = roc_auc_score(y[val], w * ra[val] + (1 - w) * rb[val])
        if auc > best_auc + 1e-12:
            best_w, best_auc = float(w), auc
    return best_w * ra + (1 - best_w) * rb, best_w
