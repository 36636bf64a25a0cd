"""`FraudBlend`: the fraud log-odds of an application that decide, from the GNN and from
gradient-boosted trees over the neighbourhood's aggregates.

Neither model wins on every world (docs/EVALUATION.md, docs/EVALUATION_ADAPTIVE.md): the GNN
leads where fraud shows in the shape of the neighbourhood, LightGBM over every root feature and
the mean / max / count of the sampled neighbours' features (baseline (c)) where it shows in the
labels the neighbours already carry. The blend is both:

    logit = w_gnn * gnn_fraud_logit + w_trees * trees_logit + intercept

The trees read the application's root features and :func:`gnn.features.neighbour_aggregates`
of the same sampled tree the GNN reads, so one application scored online gives what a batch
gives for it. Each weight is its own model's calibration slope on the validation period
(:func:`gnn.train.fraud_blend_trainer.blend_weights`); the pipeline's fraud calibrator then
maps the blended log-odds to a probability.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gnn.data.neighbour_sampler import SampledTrees
from gnn.errors import ModelError
from gnn.features.neighbour_aggregates import aggregate_names, neighbour_aggregates
from gnn.nn.tree_shap import TreeShap


def blend_inputs(trees: SampledTrees, x: Mapping[str, np.ndarray], root_x: np.ndarray,
                 root_names: Sequence[str], feature_names: Sequence[str],
                 fanouts: Mapping[str, Sequence[int]]) -> np.ndarray:
    """The trees' input matrix of sampled applications: the root features ``feature_names``,
    then the neighbour aggregates (all raw, not normalised).

    Raises:
        ModelError: if a root feature of ``feature_names`` is missing.

    Shapes:
        - **output:** ``[R, len(feature_names) + len(aggregate_names(fanouts))]`` float64
    """
    index = {n: i for i, n in enumerate(root_names)}
    missing = [n for n in feature_names if n not in index]
    if missing:
        raise ModelError(f"the fraud blend needs root features the scorer lacks: {missing}")
    agg = neighbour_aggregates(trees, x, fanouts)
    own = np.asarray(root_x, dtype=np.float64)[:, [index[n] for n in feature_names]]
    return np.concatenate([own, agg.astype(np.float64)], axis=1)


class FraudBlend:
    """The blended fraud log-odds of applications (see the module docstring).

    Args:
        booster (str): the LightGBM booster, as ``Booster.model_to_string`` writes it; its
            inputs are :attr:`feature_names` then :attr:`aggregate_names`.
        feature_names (Sequence[str]): root features the trees read, in column order.
        fanouts (Mapping[str, Sequence[int]]): the sampler's caps for applications, which
            define the aggregate columns.
        w_gnn (float): weight of the GNN's fraud logit.
        w_trees (float): weight of the trees' raw log-odds.
        intercept (float): the blend's intercept.
    """

    def __init__(self, booster: str, feature_names: Sequence[str],
                 fanouts: Mapping[str, Sequence[int]], w_gnn: float, w_trees: float,
                 intercept: float) -> None:
        import lightgbm as lgb

        self.booster_text = booster
        self.booster = lgb.Booster(model_str=booster)
        self.feature_names = list(feature_names)
        self.fanouts = {k: [int(c) for c in v] for k, v in fanouts.items()}
        self.aggregate_names = aggregate_names(self.fanouts)
        self.w_gnn = float(w_gnn)
        self.w_trees = float(w_trees)
        self.intercept = float(intercept)
        if self.booster.num_feature() != len(self.input_names):
            raise ModelError(f"the blend's trees read {self.booster.num_feature()} inputs, its "
                             f"names give {len(self.input_names)}")

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(inputs={len(self.input_names)}, "
                f"trees={self.booster.num_trees()}, w_gnn={self.w_gnn:.3f}, "
                f"w_trees={self.w_trees:.3f})")

    @property
    def input_names(self) -> list[str]:
        return [*self.feature_names, *self.aggregate_names]

    def inputs(self, trees: SampledTrees, x: Mapping[str, np.ndarray], root_x: np.ndarray,
               root_names: Sequence[str]) -> np.ndarray:
        """:func:`blend_inputs` with this model's columns ``[R, len(input_names)]``."""
        return blend_inputs(trees, x, root_x, root_names, self.feature_names, self.fanouts)

    def trees_logit(self, inputs: np.ndarray) -> np.ndarray:
        """The trees' raw log-odds ``[R]``."""
        if inputs.shape[0] == 0:
            return np.zeros(0)
        return np.asarray(self.booster.predict(inputs, raw_score=True, num_threads=1),
                          dtype=np.float64)

    def logit(self, gnn_logit: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        """The blended fraud log-odds ``[R]`` (float64), before the pipeline's calibration."""
        return (self.w_gnn * np.asarray(gnn_logit, dtype=np.float64)
                + self.w_trees * self.trees_logit(inputs) + self.intercept)

    def trees_contributions(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TreeSHAP of the trees' raw log-odds, times their weight: per input its share of the
        blended log-odds ``[R, len(input_names)]``, and the trees' expected value times the
        weight ``[R]``; shares and expected value sum to ``w_trees * trees_logit``."""
        if inputs.shape[0] == 0:
            return np.zeros((0, len(self.input_names))), np.zeros(0)
        c = np.asarray(self._tree_shap(inputs), dtype=np.float64)
        return c[:, :-1] * self.w_trees, c[:, -1] * self.w_trees

    @functools.cached_property
    def _tree_shap(self) -> Callable[[np.ndarray], np.ndarray]:
        return TreeShap.of(self.booster)

    def state_dict(self) -> dict[str, Any]:
        return {"booster": self.booster_text, "feature_names": self.feature_names,
                "fanouts": self.fanouts, "w_gnn": self.w_gnn, "w_trees": self.w_trees,
                "intercept": self.intercept}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> FraudBlend:
        return cls(state["booster"], state["feature_names"], state["fanouts"], state["w_gnn"],
                   state["w_trees"], state["intercept"])


__all__ = ["FraudBlend", "blend_inputs"]
