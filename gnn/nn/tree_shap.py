"""`TreeShap`: LightGBM's ``predict(x, pred_contrib=True)`` — path-dependent TreeSHAP
(Lundberg et al., 2020) — computed from the trees' paths, flattened once per model.

Why not LightGBM's own: its recursion costs ``O(T L D^2)`` a row (trees, leaves, depth) and
gave ~1.2 ms a row for the fraud blend's 278 trees of depth 6 and ~0.55 ms for the credit
model's, about a quarter of an explained verdict's CPU in the model's process
(docs/BENCHMARKS.md). Here there is no recursion: a leaf's share of each feature is a closed
form in the row's bits below (the idea of Fast TreeSHAP, Yang 2021), compiled by Numba; about
half LightGBM's time a row on those two models (docs/BENCHMARKS.md).

How: in path-dependent TreeSHAP a leaf ``l`` with value ``v`` reaches the expectation given the
features ``S`` as ``v * prod_j (o_j if j in S else z_j)`` over the distinct features ``j`` split
on along its path, where ``z_j`` is the product of the training-count fractions of the path's
splits on ``j`` and ``o_j`` is 1 when the row takes every one of those splits the path's way.
So the leaf's share of feature ``i``'s Shapley value is

    v * (o_i - z_i) * sum_{S subset of P \\ {i}} |S|! (d - |S| - 1)! / d!
                      * prod_{j in S} o_j * prod_{j in P \\ S \\ {i}} z_j

(``P`` the path's ``d`` features). A row costs one decision per split node, then per leaf its
bits ``o``, the polynomial ``prod_j (z_j + o_j t)`` (only the factors with ``o_j = 1`` have a
degree: ``O(d^2)`` at worst), and per feature that polynomial with its own factor divided
out, weighted by coalition size. The splits' decisions are LightGBM's: ``x <= threshold``
goes left; NaN goes the default way where the split learned missing values as NaN, and
counts as 0 otherwise; 0 (``|x| <= 1e-35``) goes the default way where it learned them as
zeros; values beyond +-1e300 are read as +-1e300. Boosters with categorical splits or linear
leaves are not covered (:meth:`TreeShap.from_booster` raises, :meth:`TreeShap.of` keeps
LightGBM's own).

``tests/gnn/test_tree_shap.py`` holds it to LightGBM's values on trained boosters, with
missing values, zeros and repeated split features.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

import numpy as np
from numba import njit

_ZERO: Final = 1e-35
"""LightGBM's ``kZeroThreshold``: a value this close to 0 is 0."""

_MISSING: Final = {"None": 0, "Zero": 1, "NaN": 2}

_ARRAYS: Final[dict[str, type]] = {
    # split nodes: the feature, threshold and missing-value handling of each
    "feature": np.int64, "threshold": np.float64, "default_left": np.bool_, "missing": np.int8,
    # leaves: value, and their slots (a slot: one distinct feature of the leaf's path)
    "leaf_value": np.float64, "leaf_slots": np.int64, "leaf_nslots": np.int64,
    # slots: feature, product of the count fractions z, and their steps (split node, way)
    "slot_feature": np.int64, "slot_z": np.float64, "slot_steps": np.int64,
    "slot_nsteps": np.int64, "step_node": np.int64, "step_left": np.bool_,
}
"""The flattened trees, in the order :func:`_shap_rows` takes them, with their dtypes."""


class TreeShap:
    """Path-dependent TreeSHAP of a LightGBM model with numerical splits (see the module
    docstring); build it with :meth:`from_booster`.

    Args:
        num_features (int): the booster's inputs.
        arrays (Mapping[str, np.ndarray]): the flattened trees (:meth:`from_booster`).
        bias (float): the sum of the trees' expected values (LightGBM's last column).
    """

    def __init__(self, num_features: int, arrays: Mapping[str, np.ndarray], bias: float) -> None:
        self.num_features = int(num_features)
        self._a = dict(arrays)
        self.bias = float(bias)
        self._weight = _shapley_weights(max(1, int(self._a["leaf_nslots"].max(initial=0))))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(features={self.num_features}, "
                f"splits={len(self._a['feature'])}, leaves={len(self._a['leaf_slots'])})")

    @classmethod
    def from_booster(cls, booster: Any) -> TreeShap:
        """Flatten ``booster`` (a ``lightgbm.Booster``, its iterations as ``predict`` uses
        them by default).

        Raises:
            ValueError: the booster has several outputs per iteration, categorical splits or
                linear leaves, which this does not cover.
        """
        model = booster.dump_model()
        if model.get("num_tree_per_iteration", 1) != 1:
            raise ValueError("TreeShap covers boosters of one output")
        return cls.from_dump(model)

    @classmethod
    def from_dump(cls, model: Mapping[str, Any]) -> TreeShap:
        """:meth:`from_booster` of ``booster.dump_model()``."""
        b = _Builder()
        bias = 0.0
        for tree in model["tree_info"]:
            if tree.get("num_cat", 0):
                raise ValueError("TreeShap covers numerical splits only")
            root = tree["tree_structure"]
            if "leaf_value" in root:  # a tree of one leaf: its value, whatever the row
                _check_leaf(root)
                bias += float(root["leaf_value"])
                continue
            bias += b.add_tree(root, float(root["internal_count"]))
        return cls(int(model["max_feature_idx"]) + 1, b.arrays(), bias)

    @staticmethod
    def of(booster: Any) -> Callable[[np.ndarray], np.ndarray]:
        """What computes ``booster.predict(x, pred_contrib=True)``: a :class:`TreeShap` where
        it covers the booster, LightGBM's own otherwise."""
        try:
            return TreeShap.from_booster(booster)
        except ValueError:
            return functools.partial(booster.predict, pred_contrib=True, num_threads=1)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Each input's TreeSHAP value and, last, the expected value: ``[R, F + 1]`` float64,
        what ``booster.predict(x, pred_contrib=True)`` returns (up to float summation order).

        Raises:
            ValueError: ``x`` is not ``[R, num_features]``.
        """
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ValueError(f"TreeShap expects [rows, {self.num_features}] inputs, got "
                             f"{list(x.shape)}")
        out = np.zeros((x.shape[0], self.num_features + 1))
        _shap_rows(x, *(self._a[name] for name in _ARRAYS), self._weight, out)
        out[:, -1] += self.bias
        return out


def _check_leaf(leaf: Mapping[str, Any]) -> None:
    if "leaf_coeff" in leaf:
        raise ValueError("TreeShap does not cover linear trees")


class _Builder:
    """Flattens trees into the arrays :func:`_shap_rows` reads."""

    def __init__(self) -> None:
        self.col: dict[str, list[Any]] = {name: [] for name in _ARRAYS}

    def add_tree(self, root: Mapping[str, Any], total: float) -> float:
        """Adds one tree; returns its expected value (leaf values weighted by their counts)."""
        expected = 0.0
        # (node, path so far as [(split node id, feature, went left, count fraction)])
        stack: list[tuple[Mapping[str, Any], list[tuple[int, int, bool, float]]]] = [(root, [])]
        while stack:
            node, path = stack.pop()
            if "leaf_value" in node:
                _check_leaf(node)
                value = float(node["leaf_value"])
                expected += value * float(node["leaf_count"]) / total
                self._add_leaf(value, path)
                continue
            if node["decision_type"] != "<=":
                raise ValueError("TreeShap covers numerical splits only")
            col = self.col
            n = len(col["feature"])
            f = int(node["split_feature"])
            col["feature"].append(f)
            col["threshold"].append(float(node["threshold"]))
            col["default_left"].append(bool(node["default_left"]))
            col["missing"].append(_MISSING[node["missing_type"]])
            count = float(node["internal_count"])
            for child, left in ((node["left_child"], True), (node["right_child"], False)):
                c = float(child["leaf_count"] if "leaf_value" in child
                          else child["internal_count"])
                stack.append((child, [*path, (n, f, left, c / count)]))
        return expected

    def _add_leaf(self, value: float, path: list[tuple[int, int, bool, float]]) -> None:
        by_feature: dict[int, list[tuple[int, bool, float]]] = {}
        for n, f, left, frac in path:
            by_feature.setdefault(f, []).append((n, left, frac))
        col = self.col
        col["leaf_value"].append(value)
        col["leaf_slots"].append(len(col["slot_feature"]))
        col["leaf_nslots"].append(len(by_feature))
        for f, steps in by_feature.items():
            col["slot_feature"].append(f)
            col["slot_z"].append(math.prod(frac for _, _, frac in steps))
            col["slot_steps"].append(len(col["step_node"]))
            col["slot_nsteps"].append(len(steps))
            for n, left, _ in steps:
                col["step_node"].append(n)
                col["step_left"].append(left)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(self.col[name], dtype=dtype) for name, dtype in _ARRAYS.items()}


def _shapley_weights(depth: int) -> np.ndarray:
    """``w[d, k] = k! (d - k - 1)! / d!``: the weight of a coalition of ``k`` of a leaf's other
    ``d - 1`` features."""
    w = np.zeros((depth + 1, depth + 1))
    for d in range(1, depth + 1):
        for k in range(d):
            w[d, k] = math.factorial(k) * math.factorial(d - k - 1) / math.factorial(d)
    return w


@njit(cache=True)
def _shap_rows(x: np.ndarray, feature: np.ndarray, threshold: np.ndarray,
               default_left: np.ndarray, missing: np.ndarray, leaf_value: np.ndarray,
               leaf_slots: np.ndarray, leaf_nslots: np.ndarray, slot_feature: np.ndarray,
               slot_z: np.ndarray, slot_steps: np.ndarray, slot_nsteps: np.ndarray,
               step_node: np.ndarray, step_left: np.ndarray, weight: np.ndarray,
               out: np.ndarray) -> None:  # pragma: no cover
    rows = x.shape[0]
    left = np.empty((rows, feature.shape[0]), dtype=np.bool_)
    for r in range(rows):
        for n in range(feature.shape[0]):
            v = x[r, feature[n]]
            if math.isnan(v):
                if missing[n] == 2:
                    left[r, n] = default_left[n]
                    continue
                v = 0.0
            if v > 1e300:  # LightGBM clamps what it reads to +-1e300 (its largest threshold)
                v = 1e300
            elif v < -1e300:
                v = -1e300
            elif abs(v) <= _ZERO:
                v = 0.0
                if missing[n] == 1:
                    left[r, n] = default_left[n]
                    continue
            left[r, n] = v <= threshold[n]
    deepest = weight.shape[0] - 1  # the weights are sized to the deepest path
    o = np.empty(deepest, dtype=np.bool_)
    poly = np.empty(deepest + 1)
    # NOTE: leaf by leaf over every row (not row by row over every leaf): a leaf's path is read
    # once for the batch, in the order it is stored
    for leaf in range(leaf_nslots.shape[0]):
        d = leaf_nslots[leaf]
        s0 = leaf_slots[leaf]
        v = leaf_value[leaf]
        for r in range(rows):
            # o_j; prod_j (z_j + o_j t) = zeros * prod_{o_j = 1} (z_j + t), by its coefficients
            zeros = 1.0
            a = 0
            poly[0] = 1.0
            for j in range(d):
                q0 = slot_steps[s0 + j]
                oj = True
                for q in range(q0, q0 + slot_nsteps[s0 + j]):
                    oj &= left[r, step_node[q]] == step_left[q]
                o[j] = oj
                zj = slot_z[s0 + j]
                if oj:
                    a += 1
                    poly[a] = poly[a - 1]
                    for k in range(a - 1, 0, -1):
                        poly[k] = zj * poly[k] + poly[k - 1]
                    poly[0] = zj * poly[0]
                else:
                    zeros *= zj
            # each feature's share: the product without its own factor, weighted by coalition
            # size; a factor z_i (o_i = 0) divides out of every coefficient, so those features
            # share one sum
            t0 = 0.0
            for k in range(a + 1):
                t0 += poly[k] * weight[d, k]
            t0 *= zeros
            for i in range(d):
                zi = slot_z[s0 + i]
                if o[i]:  # divide by (z_i + t), from the top
                    s = 0.0
                    c = poly[a]
                    for k in range(a - 1, -1, -1):
                        s += c * weight[d, k]
                        c = poly[k] - zi * c
                    out[r, slot_feature[s0 + i]] += v * (1.0 - zi) * zeros * s
                else:
                    out[r, slot_feature[s0 + i]] -= v * t0  # v * (0 - z_i) * t0 / z_i


__all__ = ["TreeShap"]
