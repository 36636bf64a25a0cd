"""`train_fraud_blend`: fit the :class:`~gnn.nn.fraud_blend.FraudBlend` of a trained GNN.

* Trees: LightGBM with baseline (c)'s recipe (:func:`fit_lightgbm`, the one the evaluation
  trains its baselines with) on the training applications' root features and neighbour
  aggregates, early-stopped on the validation period's AUPRC, as the GNN is, with one change:
  trees no deeper than :data:`BLEND_TREE_DEPTH`. Every explained verdict pays the trees'
  TreeSHAP, whose cost grows with the square of depth; on the development world (seed 9,
  adaptive) depth 6 kept the blend's test AUPRC (0.957 vs 0.958 unbounded) at 1.45 instead of
  3.28 ms of TreeSHAP an application (docs/BENCHMARKS.md, "The fraud blend's cost").
* Blend: each model's log-odds calibrated alone on the validation period's fraud labels
  (a one-input logistic regression each, Platt) and the two calibrated log-odds added: each
  weight is the slope of its own model's calibration. A joint regression of the labels on
  both logits (the blend before 2026-12-07) let the models' correlation (0.6) and their shared
  optimism on the period both stopped on decide the split: on the development world it gave
  the trees 0.03 of the GNN's weight (default) and a quarter of it in standard units
  (adaptive), where the test period then rewarded the trees (adaptive: trees alone 0.963
  against the joint blend's 0.955) — docs/evaluation_notes.md, "The blend's weights". The
  joint regression still decides which models stay: a model it weighs against fraud adds
  nothing the other lacks and is dropped, so the blend never scores against one of its
  inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gnn.errors import ModelError
from gnn.nn.fraud_blend import FraudBlend

logger = logging.getLogger(__name__)


BLEND_TREE_DEPTH = 6
"""Deepest tree the blend's LightGBM grows (module docstring)."""


def fit_lightgbm(x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray, y_va: np.ndarray,
                 seed: int, threads: int, max_depth: int = -1) -> Any:
    """Gradient-boosted trees of baseline (c)'s recipe, early-stopped on validation AUPRC.

    Args:
        max_depth (int, optional): deepest tree, ``-1`` for no bound (baseline (c)).
            (default: ``-1``)

    Returns:
        lightgbm.LGBMClassifier: the fitted classifier (``booster_`` holds the trees).
    """
    import lightgbm as lgb

    pos = max(float(y_tr.sum()), 1.0)
    neg = float(y_tr.shape[0]) - pos
    model = lgb.LGBMClassifier(
        n_estimators=2000, learning_rate=0.03, num_leaves=31, min_child_samples=20,
        subsample=0.8, subsample_freq=1, colsample_bytree=0.5, reg_lambda=1.0,
        max_depth=max_depth, scale_pos_weight=float(np.sqrt(neg / pos)), random_state=seed,
        n_jobs=threads, verbose=-1)
    model.fit(x_tr, y_tr, eval_X=(x_va,), eval_y=(y_va,), eval_metric="average_precision",
              callbacks=[lgb.early_stopping(100, first_metric_only=True, verbose=False)])
    return model


def blend_weights(gnn_logit: np.ndarray, trees_logit: np.ndarray, y: np.ndarray
                  ) -> tuple[float, float, float]:
    """``(w_gnn, w_trees, intercept)``: each model's own calibration slope on ``y``, their
    intercepts added (module docstring); a model that the joint logistic regression of ``y``
    on both logits weighs negatively gets weight 0.

    Raises:
        ModelError: if ``y`` holds one class only.
    """
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y).astype(int)
    if not 0 < y.sum() < y.shape[0]:
        raise ModelError("the blend needs fraud and honest applications in validation")
    x = np.column_stack([gnn_logit, trees_logit]).astype(np.float64)
    keep = [0, 1]
    joint = LogisticRegression(C=1e4, max_iter=1000).fit(x, y).coef_[0]
    if (joint < 0).any():
        keep = [int(np.argmax(joint))]
    out, intercept = [0.0, 0.0], 0.0
    for k in keep:
        alone = LogisticRegression(C=1e4, max_iter=1000).fit(x[:, [k]], y)
        out[k] = float(alone.coef_[0][0])
        intercept += float(alone.intercept_[0])
    return out[0], out[1], intercept


def train_fraud_blend(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                      y_val: np.ndarray, gnn_val_logit: np.ndarray,
                      feature_names: Sequence[str], fanouts: Mapping[str, Sequence[int]], *,
                      seed: int = 0, threads: int = 1,
                      log: Callable[[str], None] | None = None) -> FraudBlend:
    """Fit the trees and the blend (module docstring).

    Args:
        x_train, x_val (np.ndarray): :meth:`FraudBlend.inputs` of the training and validation
            applications ``[R, F + A]``.
        y_train, y_val (np.ndarray): their fraud targets (labels visible before ``T2``).
        gnn_val_logit (np.ndarray): the trained GNN's fraud logit of the validation
            applications ``[R_val]``.
        feature_names (Sequence[str]): the root features in ``x``'s first columns.
        fanouts (Mapping[str, Sequence[int]]): the sampler's caps for applications.
        seed (int, optional): LightGBM's seed. (default: ``0``)
        threads (int, optional): LightGBM's threads. (default: ``1``)
        log (Callable[[str], None], optional): progress lines. (default: module logger)

    Raises:
        ModelError: if training or validation holds one class only.
    """
    say = log or logger.info
    if not 0 < y_train.sum() < y_train.shape[0]:
        raise ModelError("the blend's trees need fraud and honest training applications")
    trees = fit_lightgbm(x_train, y_train, x_val, y_val, seed, threads,
                         max_depth=BLEND_TREE_DEPTH)
    booster = trees.booster_
    text = booster.model_to_string(num_iteration=trees.best_iteration_ or -1)
    draft = FraudBlend(text, feature_names, fanouts, 1.0, 1.0, 0.0)
    w_gnn, w_trees, b = blend_weights(gnn_val_logit, draft.trees_logit(x_val), y_val)
    blend = FraudBlend(text, feature_names, fanouts, w_gnn, w_trees, b)
    say(f"fraud blend: {draft.booster.num_trees()} trees over {x_train.shape[1]} inputs, "
        f"logit = {w_gnn:.3f} * GNN + {w_trees:.3f} * trees {b:+.3f}")
    return blend


__all__ = ["BLEND_TREE_DEPTH", "blend_weights", "fit_lightgbm", "train_fraud_blend"]
