"""`DriftReference`: what a model's inputs and scores looked like in training, binned, per
product, so that a later stream can be measured against it (population stability index, PSI).

Bins are the reference's deciles (ties merged, so a 0/1 input has two bins); a later stream is
counted into the same bins, every value rounded as a verdict stores it (:data:`DECIMALS`). ``PSI = sum_b (c_b - r_b) ln(c_b / r_b)`` over the bins' shares,
each smoothed by half an item (an empty bin would make it infinite). Common reading: below 0.1
stable, 0.1-0.25 moved, above 0.25 shifted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from gnn.data.lending_graph import LendingGraph
from gnn.features.risk_features import ApplicationQueries
from gnn.pipeline import ScoringPipeline
from graph.typing import PRODUCTS

ALL: Final = "all"
"""The product key of every application together."""
SCORES: Final = ("score:fraud", "score:pd")
"""The input names of the two scores."""
BINS: Final = 10
DECIMALS: Final = 6
"""Values are binned rounded to the decimals a verdict stores its features with: a served
``log(2)`` is ``0.693147``, which an edge at ``0.6931471805...`` would put a bin lower (every
count-like input has its edges exactly at such values)."""
DRIFT_REFERENCE_FILE: Final = "drift_reference.json"
"""Where a registered model keeps its reference (:meth:`gnn.ModelRegistry.write_extra`)."""


@dataclass(frozen=True)
class Binned:
    """One input of one product: inner bin edges and the reference's share per bin."""

    edges: np.ndarray
    shares: np.ndarray
    count: int

    def counts(self, values: np.ndarray) -> np.ndarray:
        """How many of ``values`` (rounded to :data:`DECIMALS`) fall in each bin."""
        values = np.round(np.asarray(values, np.float64), DECIMALS)
        return np.bincount(np.searchsorted(self.edges, values, side="right"),
                           minlength=self.shares.shape[0])

    def psi(self, values: np.ndarray) -> float:
        """Population stability index of ``values`` against the reference (NaN if empty)."""
        values = values[np.isfinite(values)]
        return self.psi_of_counts(self.counts(values))

    def psi_of_counts(self, counts: np.ndarray) -> float:
        """Population stability index of a stream given as its count per bin (NaN if empty):
        the one PSI formula, for :meth:`psi` and for counts kept as a stream goes by."""
        n = float(counts.sum())
        if n == 0:
            return float("nan")
        bins = self.shares.shape[0]
        current = (counts + 0.5) / (n + 0.5 * bins)
        reference = (self.shares * self.count + 0.5) / (self.count + 0.5 * bins)
        return float(np.sum((current - reference) * np.log(current / reference)))


@dataclass(frozen=True)
class BinCoder:
    """Every input of one product's reference at once: which bin a row of values falls in per
    input (the bin :meth:`Binned.counts` counts it in), so that a stream's counts can be kept
    as it goes by and its PSI read from them (:meth:`psi`).

    Args:
        names (tuple[str, ...]): the inputs, in the order of a row's values.
        binned (tuple[Binned | None, ...]): each input's bins (``None``: no reference).
        edges (np.ndarray): ``[len(names), most edges]`` inner edges, padded with ``+inf``.
        have (np.ndarray): ``[len(names)]`` bool, the input has a reference.
    """

    names: tuple[str, ...]
    binned: tuple[Binned | None, ...]
    edges: np.ndarray
    have: np.ndarray

    @classmethod
    def of(cls, reference: DriftReference, product: str, names: Sequence[str]) -> BinCoder:
        per = reference.binned.get(product, {})
        binned = tuple(per.get(name) for name in names)
        width = max((b.edges.shape[0] for b in binned if b is not None), default=0)
        edges = np.full((len(names), width), np.inf)
        for i, b in enumerate(binned):
            if b is not None:
                edges[i, :b.edges.shape[0]] = b.edges
        return cls(tuple(names), binned, edges, np.asarray([b is not None for b in binned]))

    @property
    def bins(self) -> int:
        """Columns a count matrix needs: the most bins of any input."""
        return int(self.edges.shape[1]) + 1

    def codes(self, x: np.ndarray) -> np.ndarray:
        """``[..., len(names)]`` values -> int16 bin per value, ``-1`` where the value is not
        finite or the input has no reference (such values are not counted)."""
        x = np.round(np.asarray(x, np.float64), DECIMALS)
        code = (self.edges <= x[..., None]).sum(-1)
        return np.where(np.isfinite(x) & self.have, code, -1).astype(np.int16)

    def psi(self, counts: np.ndarray) -> dict[str, float]:
        """PSI per input of a stream counted as ``[len(names), bins]`` (NaN: no reference or
        nothing counted)."""
        return {name: float("nan") if b is None
                else b.psi_of_counts(counts[i, :b.shares.shape[0]])
                for i, (name, b) in enumerate(zip(self.names, self.binned, strict=True))}


@dataclass(frozen=True)
class DriftReference:
    """Per product (and :data:`ALL`) and input name, the reference bins.

    Args:
        inputs (list[str]): the model's root inputs, then :data:`SCORES`.
        binned (dict[str, dict[str, Binned]]): product -> input -> bins.
        model_version (str): the model it describes.
    """

    inputs: list[str]
    binned: dict[str, dict[str, Binned]]
    model_version: str = ""

    @classmethod
    def from_samples(cls, values: Mapping[str, np.ndarray], products: np.ndarray, *,
                     bins: int = BINS, model_version: str = "") -> DriftReference:
        """Bin reference samples.

        Args:
            values (Mapping[str, np.ndarray]): input name -> ``[n]`` values.
            products (np.ndarray): ``[n]`` product names.
            bins (int, optional): quantile bins before ties are merged. (default: ``10``)
            model_version (str, optional): the model described. (default: ``""``)

        Raises:
            ValueError: if ``bins < 2`` or the arrays differ in length.
        """
        if bins < 2:
            raise ValueError(f"bins must be >= 2, got {bins}")
        n = products.shape[0]
        if any(v.shape[0] != n for v in values.values()):
            raise ValueError("every input needs one value per product entry")
        binned: dict[str, dict[str, Binned]] = {}
        for product in (ALL, *sorted(set(products.tolist()))):
            sel = np.ones(n, bool) if product == ALL else products == product
            if not sel.any():
                continue
            per: dict[str, Binned] = {}
            for name, v in values.items():
                x = np.round(np.asarray(v, np.float64)[sel], DECIMALS)
                x = x[np.isfinite(x)]
                if x.size == 0:
                    continue
                edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
                b = Binned(edges, np.zeros(edges.shape[0] + 1), int(x.size))
                per[name] = Binned(edges, b.counts(x) / x.size, int(x.size))
            binned[str(product)] = per
        return cls(list(values), binned, model_version)

    def psi(self, product: str, name: str, values: np.ndarray) -> float:
        """PSI of ``values`` of input ``name`` against ``product``'s reference (NaN when the
        reference has none)."""
        b = self.binned.get(product, {}).get(name)
        return float("nan") if b is None else b.psi(np.asarray(values, np.float64))

    def to_dict(self) -> dict[str, Any]:
        return {"model_version": self.model_version, "inputs": self.inputs,
                "binned": {p: {n: {"edges": b.edges.tolist(), "shares": b.shares.tolist(),
                                   "count": b.count} for n, b in per.items()}
                           for p, per in self.binned.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReference:
        return cls(list(data["inputs"]),
                   {p: {n: Binned(np.asarray(b["edges"], np.float64),
                                  np.asarray(b["shares"], np.float64), int(b["count"]))
                        for n, b in per.items()} for p, per in data["binned"].items()},
                   str(data.get("model_version", "")))


def application_products(graph: LendingGraph, positions: np.ndarray) -> np.ndarray:
    """Product names of applications (``""`` where unknown)."""
    codes = graph.attrs["Application"]["product"][positions]
    names = np.asarray([*PRODUCTS, ""], dtype=object)
    out: np.ndarray = names[np.minimum(codes.astype(np.int64), len(PRODUCTS))]
    return out


def build_drift_reference(pipeline: ScoringPipeline, graph: LendingGraph,
                          positions: np.ndarray, *, max_samples: int = 20_000, seed: int = 0,
                          bins: int = BINS) -> DriftReference:
    """The reference of ``pipeline`` on applications of ``graph`` (its training period): their
    root inputs as the pipeline computes them and its two calibrated scores.

    Args:
        pipeline (ScoringPipeline): the trained pipeline.
        graph (LendingGraph): the graph it was trained on.
        positions (np.ndarray): application positions (a seeded sample of at most
            ``max_samples`` is taken).
        max_samples (int, optional): most applications read. (default: ``20000``)
        seed (int, optional): seed of the sample. (default: ``0``)
        bins (int, optional): see :meth:`DriftReference.from_samples`. (default: ``10``)
    """
    positions = np.asarray(positions, np.int64)
    if positions.shape[0] > max_samples:
        positions = np.sort(np.random.default_rng(seed).choice(positions, max_samples,
                                                               replace=False))
    prepared = pipeline.prepare_applications(
        graph, ApplicationQueries.from_graph(graph, positions))
    scores = pipeline.predict(prepared)
    values = input_values(prepared.root_names, prepared.root_x)
    values["score:fraud"] = np.asarray(scores.fraud, np.float64)
    values["score:pd"] = np.asarray(scores.pd, np.float64)
    return DriftReference.from_samples(values, application_products(graph, positions),
                                       bins=bins, model_version=pipeline.version)


def input_values(names: Sequence[str], x: np.ndarray) -> dict[str, np.ndarray]:
    """Columns of a ``[n, len(names)]`` root-feature matrix by name."""
    return {name: np.asarray(x[:, i], np.float64) for i, name in enumerate(names)}
