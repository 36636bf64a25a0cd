"""`NodeGraph`: a node-classification graph ready for full-batch training."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from gnn.nn.csr_adjacency import CSRAdjacency, Normalisation
from gnn.errors import GraphDataError


@dataclass(frozen=True)
class NodeGraph:
    """Features, labels, optional split masks and CSR adjacencies of one graph.

    Args:
        x (torch.Tensor): float32 node features ``[N, F]``.
        y (torch.Tensor): int64 labels ``[N]`` in ``0 .. C-1``; ``-1`` marks an unlabelled node.
        adjs (tuple[CSRAdjacency, ...]): one ``[N, N]`` propagation matrix per relation
            (one for an undirected graph; in- and out-edges for a directed one).
        train_masks (torch.Tensor, optional): bool ``[S, N]``, one row per split.
        val_masks (torch.Tensor, optional): bool ``[S, N]``.
        test_masks (torch.Tensor, optional): bool ``[S, N]``.
        feature_names (tuple[str, ...], optional): one name per feature column.
        relation_names (tuple[str, ...], optional): one name per adjacency.
        class_names (tuple[str, ...], optional): the original label of class ``c`` at ``c``.

    Shapes:
        - **x:** ``[N, F]``; **y:** ``[N]``; **masks:** ``[S, N]``
    """

    x: Tensor
    y: Tensor
    adjs: tuple[CSRAdjacency, ...]
    train_masks: Tensor | None = None
    val_masks: Tensor | None = None
    test_masks: Tensor | None = None
    feature_names: tuple[str, ...] = field(default=())
    relation_names: tuple[str, ...] = field(default=())
    class_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        if self.x.dim() != 2:
            raise GraphDataError(f"x must be 2-D, got shape {tuple(self.x.shape)}")
        if self.y.shape != (n,):
            raise GraphDataError(f"y has shape {tuple(self.y.shape)}, expected ({n},)")
        if not self.adjs:
            raise GraphDataError("a NodeGraph needs at least one adjacency")
        for adj in self.adjs:
            if adj.shape != (n, n):
                raise GraphDataError(f"adjacency shape {adj.shape} does not match {n} nodes")
        masks = [m for m in (self.train_masks, self.val_masks, self.test_masks) if m is not None]
        if masks and len(masks) != 3:
            raise GraphDataError("give all of train_masks, val_masks, test_masks or none")
        for m in masks:
            if m.dtype != torch.bool or m.dim() != 2 or m.shape[1] != n:
                raise GraphDataError(f"masks must be bool [S, {n}], got {m.dtype} "
                                     f"{tuple(m.shape)}")
            if m.shape[0] != masks[0].shape[0]:
                raise GraphDataError("train, val and test masks have different split counts")
        if self.feature_names and len(self.feature_names) != self.x.shape[1]:
            raise GraphDataError("feature_names and x disagree on the number of features")

    @classmethod
    def from_edges(
        cls,
        x: np.ndarray | Tensor,
        y: np.ndarray | Tensor,
        src: np.ndarray,
        dst: np.ndarray,
        directed: bool = False,
        weight: np.ndarray | None = None,
        normalisation: Normalisation = "mean",
        train_masks: np.ndarray | Tensor | None = None,
        val_masks: np.ndarray | Tensor | None = None,
        test_masks: np.ndarray | Tensor | None = None,
        feature_names: Sequence[str] = (),
        class_names: Sequence[str] = (),
    ) -> NodeGraph:
        """Build the adjacencies from an edge list.

        An undirected graph gets one matrix over both directions of every edge (give each
        edge once or twice; duplicates are summed before normalising). A directed graph gets two,
        ``"in"`` (aggregate over sources of edges into ``v``) and ``"out"`` (over targets of
        edges out of ``v``), so a model sees both directions with separate weights.

        Args:
            x (np.ndarray or torch.Tensor): node features ``[N, F]``.
            y (np.ndarray or torch.Tensor): labels ``[N]``, ``-1`` for unlabelled.
            src (np.ndarray): edge source positions ``[E]``.
            dst (np.ndarray): edge target positions ``[E]``.
            directed (bool, optional): see above. (default: ``False``)
            weight (np.ndarray, optional): non-negative edge weights ``[E]``.
            normalisation (str, optional): see :meth:`CSRAdjacency.from_edges`.
                (default: ``"mean"``)
            train_masks, val_masks, test_masks (optional): bool ``[S, N]`` or ``[N]``.
            feature_names (Sequence[str], optional): one name per feature column.
            class_names (Sequence[str], optional): original label values, in class order.
        """
        x_t = torch.as_tensor(np.asarray(x, dtype=np.float32) if not isinstance(x, Tensor)
                              else x.float())
        y_t = torch.as_tensor(np.asarray(y, dtype=np.int64) if not isinstance(y, Tensor)
                              else y.long())
        n = int(x_t.shape[0])
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        if directed:
            adjs = (
                CSRAdjacency.from_edges(src, dst, n, weight=weight, normalisation=normalisation),
                CSRAdjacency.from_edges(dst, src, n, weight=weight, normalisation=normalisation),
            )
            names: tuple[str, ...] = ("in", "out")
        else:
            w2 = None if weight is None else np.concatenate([weight, weight])
            adjs = (CSRAdjacency.from_edges(np.concatenate([src, dst]), np.concatenate([dst, src]),
                                            n, weight=w2, normalisation=normalisation),)
            names = ("undirected",)
        return cls(
            x=x_t, y=y_t, adjs=adjs,
            train_masks=_as_masks(train_masks), val_masks=_as_masks(val_masks),
            test_masks=_as_masks(test_masks),
            feature_names=tuple(feature_names), relation_names=names,
            class_names=tuple(class_names),
        )

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_features(self) -> int:
        return int(self.x.shape[1])

    @property
    def num_classes(self) -> int:
        labelled = self.y[self.y >= 0]
        return int(labelled.max()) + 1 if labelled.numel() else 0

    @property
    def num_splits(self) -> int:
        return 0 if self.train_masks is None else int(self.train_masks.shape[0])

    def split(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        """The ``(train, val, test)`` masks of split ``index``, each bool ``[N]``."""
        if self.train_masks is None or self.val_masks is None or self.test_masks is None:
            raise GraphDataError("this graph has no split masks")
        if not 0 <= index < self.num_splits:
            raise ValueError(f"index must be in [0, {self.num_splits}), got {index}")
        return self.train_masks[index], self.val_masks[index], self.test_masks[index]

    def with_features(self, x: Tensor, feature_names: Sequence[str] = ()) -> NodeGraph:
        """The same graph with other node features."""
        return replace(self, x=x, feature_names=tuple(feature_names))

    def with_splits(self, train: Tensor, val: Tensor, test: Tensor) -> NodeGraph:
        """The same graph with other split masks (bool ``[S, N]``)."""
        return replace(self, train_masks=train, val_masks=val, test_masks=test)

    def to(self, device: torch.device | str) -> NodeGraph:
        """A copy with every tensor on ``device``."""
        device = torch.device(device)

        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device)

        return replace(
            self, x=self.x.to(device), y=self.y.to(device),
            adjs=tuple(adj.to(device) for adj in self.adjs),
            train_masks=move(self.train_masks), val_masks=move(self.val_masks),
            test_masks=move(self.test_masks),
        )

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, "
                f"num_features={self.num_features}, num_classes={self.num_classes}, "
                f"relations={list(self.relation_names)}, "
                f"nnz={[adj.nnz for adj in self.adjs]}, num_splits={self.num_splits})")


def _as_masks(m: np.ndarray | Tensor | None) -> Tensor | None:
    if m is None:
        return None
    t = torch.as_tensor(np.asarray(m) if not isinstance(m, Tensor) else m).bool()
    return t.unsqueeze(0) if t.dim() == 1 else t
