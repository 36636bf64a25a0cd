"""`stratified_splits`: seeded train / validation / test masks that keep class proportions."""

from __future__ import annotations

import numpy as np

from gnn.errors import GraphDataError


def stratified_splits(
    y: np.ndarray,
    num_splits: int = 1,
    train_fraction: float = 0.5,
    val_fraction: float = 0.25,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random splits of the labelled nodes, stratified by class.

    Within each class the labelled nodes are shuffled and cut at ``train_fraction`` and
    ``train_fraction + val_fraction``; the rest is test. Unlabelled nodes (``y < 0``) are in
    no mask. Split ``i`` uses ``numpy.random.default_rng([seed, i])``, so a split does not
    depend on how many others are drawn.

    Args:
        y (np.ndarray): int labels ``[N]``, ``-1`` for unlabelled.
        num_splits (int, optional): number of independent splits. (default: ``1``)
        train_fraction (float, optional): share of each class for training. (default: ``0.5``)
        val_fraction (float, optional): share of each class for validation. (default: ``0.25``)
        seed (int, optional): base seed. (default: ``0``)

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]: bool train, val, test masks ``[S, N]``.
    """
    y = np.asarray(y, dtype=np.int64)
    if num_splits < 1:
        raise ValueError(f"num_splits must be >= 1, got {num_splits}")
    if not (0 < train_fraction < 1 and 0 < val_fraction < 1
            and train_fraction + val_fraction < 1):
        raise ValueError(f"need 0 < train_fraction, val_fraction and their sum < 1, got "
                         f"{train_fraction}, {val_fraction}")
    classes = np.unique(y[y >= 0])
    if classes.size < 2:
        raise GraphDataError(f"need at least two labelled classes, found {classes.size}")
    masks = np.zeros((3, num_splits, y.shape[0]), dtype=bool)
    for i in range(num_splits):
        rng = np.random.default_rng([seed, i])
        for c in classes:
            idx = rng.permutation(np.flatnonzero(y == c))
            a = int(round(train_fraction * idx.size))
            b = int(round((train_fraction + val_fraction) * idx.size))
            masks[0, i, idx[:a]] = True
            masks[1, i, idx[a:b]] = True
            masks[2, i, idx[b:]] = True
    return masks[0], masks[1], masks[2]
