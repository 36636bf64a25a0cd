"""`fit_tree_classifier`: gradient-boosted trees with early stopping on validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gnn.errors import ModelError


@dataclass(frozen=True)
class TreeConfig:
    """LightGBM settings (see its documentation).

    Args:
        num_boost_round (int): upper bound on trees. (default: ``2000``)
        learning_rate (float): shrinkage. (default: ``0.03``)
        num_leaves (int): leaves per tree. (default: ``31``)
        min_child_samples (int): minimum nodes per leaf. (default: ``30``)
        subsample (float): row fraction per tree. (default: ``0.8``)
        colsample_bytree (float): feature fraction per tree. (default: ``0.7``)
        early_stopping (int): stop after this many rounds without a better validation
            metric. (default: ``150``)
    """

    num_boost_round: int = 2000
    learning_rate: float = 0.03
    num_leaves: int = 31
    min_child_samples: int = 30
    subsample: float = 0.8
    colsample_bytree: float = 0.7
    early_stopping: int = 150


def fit_tree_classifier(
    features: np.ndarray,
    y: np.ndarray,
    train_mask: np.ndarray,
    val_mask: np.ndarray,
    config: TreeConfig = TreeConfig(),
    seed: int = 0,
    threads: int = 1,
) -> tuple[np.ndarray, int]:
    """Fit on ``train_mask``, stop on ``val_mask``'s metric; predict every node.

    Binary labels use the validation ROC-AUC, more classes the multi-class log-loss. Runs are
    deterministic for a given seed and thread count.

    Args:
        features (np.ndarray): ``[N, K]``.
        y (np.ndarray): int labels ``[N]`` (``-1`` unlabelled, never used).
        train_mask (np.ndarray): bool ``[N]``.
        val_mask (np.ndarray): bool ``[N]``.
        config (TreeConfig, optional): LightGBM settings.
        seed (int, optional): random seed. (default: ``0``)
        threads (int, optional): LightGBM threads. (default: ``1``)

    Returns:
        tuple[np.ndarray, int]: class probabilities ``[N, C]`` and the best iteration.
    """
    try:
        import lightgbm as lgb
    except ImportError as e:  # pragma: no cover - lightgbm is a dependency
        raise ModelError("lightgbm is not installed") from e
    y = np.asarray(y)
    train = np.asarray(train_mask, dtype=bool) & (y >= 0)
    val = np.asarray(val_mask, dtype=bool) & (y >= 0)
    num_classes = max(int(y.max()) + 1, 2)
    binary = num_classes == 2
    model = lgb.LGBMClassifier(
        n_estimators=config.num_boost_round, learning_rate=config.learning_rate,
        num_leaves=config.num_leaves, min_child_samples=config.min_child_samples,
        subsample=config.subsample, subsample_freq=1, colsample_bytree=config.colsample_bytree,
        random_state=seed, n_jobs=threads, deterministic=True, force_col_wise=True, verbose=-1)
    model.fit(features[train], y[train], eval_X=(features[val],), eval_y=(y[val],),
              eval_metric="auc" if binary else "multi_logloss",
              callbacks=[lgb.early_stopping(config.early_stopping, first_metric_only=True,
                                            verbose=False)])
    probs = np.zeros((features.shape[0], num_classes))
    probs[:, model.classes_] = model.predict_proba(features)
    return probs, int(model.best_iteration_)
