"""`aggregate_neighbour_features`: hop-wise neighbour statistics of node features, for trees.

GADBench (Tang et al., NeurIPS 2023) found gradient-boosted trees on neighbour-aggregated
features a strong rival of GNNs for graph anomaly detection; this is that input: each node's
own features, the mean over its neighbours at one and two hops, and the standard deviation
over its one-hop neighbours, per relation.
"""

from __future__ import annotations

import numpy as np
import torch

from gnn.benchmarks.node_graph import NodeGraph


def aggregate_neighbour_features(graph: NodeGraph, hops: int = 2) -> tuple[np.ndarray, list[str]]:
    """Own features plus neighbour means (``hops`` deep) and one-hop standard deviations.

    Uses the graph's propagation matrices as they are (row-normalised for the default
    ``"mean"`` normalisation, so ``A x`` is the neighbour mean). No labels are read.

    Args:
        graph (NodeGraph): features ``[N, F]`` and ``R`` adjacencies.
        hops (int, optional): number of mean hops per relation. (default: ``2``)

    Returns:
        tuple[np.ndarray, list[str]]: float32 ``[N, F * (1 + R * (hops + 1))]`` and names.
    """
    if hops < 1:
        raise ValueError(f"hops must be >= 1, got {hops}")
    x = graph.x.detach().to("cpu", torch.float32)
    names = list(graph.feature_names) or [f"f{i}" for i in range(x.shape[1])]
    rels = list(graph.relation_names) or [f"r{i}" for i in range(len(graph.adjs))]
    cols = [x]
    out_names = list(names)
    with torch.inference_mode():
        for rel, adj in zip(rels, graph.adjs):
            adj = adj.to("cpu")
            h = x
            for k in range(1, hops + 1):
                h = adj.matmul(h)
                cols.append(h)
                out_names += [f"{n}_{rel}_mean{k}" for n in names]
            m1 = cols[len(cols) - hops]
            var = adj.matmul(x * x) - m1 * m1
            cols.append(var.clamp_min(0).sqrt())
            out_names += [f"{n}_{rel}_std1" for n in names]
    return torch.cat(cols, dim=1).numpy(), out_names
