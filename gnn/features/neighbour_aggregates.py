"""`neighbour_aggregates`: mean, max and count of the sampled neighbours' raw features per
relation and hop — the inputs of baseline (c) and of the fraud blend's trees
(:class:`gnn.nn.fraud_blend.FraudBlend`), one definition for training, evaluation and serving.

A root's aggregates read only its own sampled tree, so scoring one application online gives
what a batch gives for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from gnn.data.lending_graph import NODE_TYPES, RELATIONS
from gnn.data.neighbour_sampler import RELATION_IDS, SampledTrees
from gnn.features.risk_features import NODE_FEATURES


def aggregate_names(fanouts: Mapping[str, Sequence[int]]) -> list[str]:
    """The column names :func:`neighbour_aggregates` gives for ``fanouts``, in its order."""
    names: list[str] = []
    for t, rel, hop in aggregate_blocks(fanouts):
        names.append(f"h{hop}_{rel}_count")
        for f in NODE_FEATURES[t]:
            names += [f"h{hop}_{rel}_{f}_mean", f"h{hop}_{rel}_{f}_max"]
    return names


def neighbour_aggregates(trees: SampledTrees, x: Mapping[str, np.ndarray],
                         fanouts: Mapping[str, Sequence[int]]) -> np.ndarray:
    """Mean, max and count of the sampled neighbours' features per relation and hop, per root;
    the columns are named by :func:`aggregate_names` (not built here: this runs per verdict).

    Args:
        trees (SampledTrees): one sampled tree per root.
        x (Mapping[str, np.ndarray]): raw node features per node type, rows as in ``trees``.
        fanouts (Mapping[str, Sequence[int]]): the sampler's caps for the roots' type; a column
            exists for every relation and hop with a cap, sampled or not, so every batch has
            the same columns (:func:`aggregate_names`).

    Shapes:
        - **output:** ``[R, F_agg]`` float32; a relation and hop with no sampled neighbour
          gives count 0, mean 0 and max 0
    """
    r = trees.num_roots
    blocks: list[np.ndarray] = []
    for t, rel, hop in aggregate_blocks(fanouts):
        feats = np.asarray(x[t], dtype=np.float64)
        sel = np.flatnonzero((trees.rel[t] == RELATION_IDS[rel]) & (trees.depth[t] == hop))
        root = trees.tree[t][sel]
        count = np.bincount(root, minlength=r).astype(np.float64)
        sums = np.zeros((r, feats.shape[1]))
        np.add.at(sums, root, feats[sel])
        mx = np.full((r, feats.shape[1]), -np.inf)
        np.maximum.at(mx, root, feats[sel])
        mean = sums / np.maximum(count, 1)[:, None]
        mx = np.where(np.isfinite(mx), mx, 0.0)
        pairs = np.stack([mean, mx], axis=2).reshape(r, 2 * feats.shape[1])
        blocks += [count[:, None], pairs]
    if not blocks:
        return np.zeros((r, 0), np.float32)
    return np.concatenate(blocks, axis=1).astype(np.float32)


def aggregate_blocks(fanouts: Mapping[str, Sequence[int]]) -> list[tuple[str, str, int]]:
    """(node type, relation, hop) of every aggregated block, in column order."""
    out: list[tuple[str, str, int]] = []
    for t in NODE_TYPES:
        for rel in RELATION_IDS:
            if RELATIONS[rel][1] != t:
                continue
            caps = fanouts.get(rel, ())
            out += [(t, rel, hop) for hop in (1, 2) if hop <= len(caps) and caps[hop - 1] > 0]
    return out


__all__ = ["aggregate_blocks", "aggregate_names", "neighbour_aggregates"]
