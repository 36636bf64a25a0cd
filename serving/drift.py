"""Drift and decision monitoring: the population stability (PSI) of every model input and of
both scores against the deciding model's training reference, per product, over a sliding window
of verdicts; and the approve / review / decline and degraded shares over the same window.

Online, :class:`DriftMonitor` keeps the last ``window`` verdicts of each product (a verdict's
features as one float32 row, copied on the request thread in microseconds) and computes
everything when ``/metrics`` is scraped (:class:`DriftCollector`). Offline, ``riskgraph drift`` reads the same
from the store's verdict records (:func:`verdict_samples`) and writes a Markdown report with a
PNG (:func:`write_drift_report`). Both read the reference a model keeps beside its weights
(:data:`gnn.DRIFT_REFERENCE_FILE`, written when it was trained); a model without one (trained
before, or the rules) has decision monitoring only.

A product's window is judged once it holds ``min_count`` verdicts; an input is flagged ``moved``
from ``warn`` and ``shifted`` from ``alert`` (configuration: ``RISKGRAPH_DRIFT_*``).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gnn import DRIFT_REFERENCE_FILE, BinCoder, DriftReference, ModelError, ModelRegistry
from gnn.train.drift_reference import SCORES
from graph import GraphStore
from serving.champion_challenger import ChampionVerdict
from serving.policy import DECISIONS

ALL: Final = "all"


class FeatureRow(Mapping[str, float]):
    """A verdict's numeric features, compact: float32 values and a key index shared by every
    row with the same keys (a window of dicts would hold ~16 KB a verdict)."""

    __slots__ = ("_index", "_values")
    _indexes: dict[tuple[str, ...], dict[str, int]] = {}

    def __init__(self, features: Mapping[str, Any]) -> None:
        keys = tuple(features)
        index = FeatureRow._indexes.get(keys)
        if index is None:
            index = FeatureRow._indexes.setdefault(keys, {k: i for i, k in enumerate(keys)})
        self._index = index
        try:
            self._values = np.fromiter(features.values(), np.float32, len(keys))
        except (TypeError, ValueError):  # a text value: the slow path, NaN for it
            self._values = np.asarray([_number(v) for v in features.values()], np.float32)

    @property
    def index(self) -> dict[str, int]:
        return self._index

    @property
    def values(self) -> np.ndarray:  # type: ignore[override]
        return self._values

    def __getitem__(self, key: str) -> float:
        return float(self._values[self._index[key]])

    def __iter__(self) -> Any:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


@dataclass(frozen=True)
class Sample:
    """One verdict as the monitor keeps it."""

    model_version: str
    product: str
    features: Mapping[str, Any]
    fraud: float
    pd: float
    decision: str
    degraded: bool


@dataclass(frozen=True)
class DriftThresholds:
    """When a window is judged and an input flagged.

    Args:
        warn (float): PSI from which an input has ``moved``. (default: ``0.1``)
        alert (float): PSI from which it has ``shifted``. (default: ``0.25``)
        min_count (int): verdicts a product's window needs before it is judged.
            (default: ``200``)
    """

    warn: float = 0.1
    alert: float = 0.25
    min_count: int = 200

    def __post_init__(self) -> None:
        if not 0 < self.warn <= self.alert:
            raise ValueError(f"need 0 < warn <= alert, got {self.warn} and {self.alert}")
        if self.min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {self.min_count}")


@dataclass
class ProductDrift:
    """One product's window: its size, the PSI per input, decision and degraded shares."""

    product: str
    verdicts: int
    judged: bool
    psi: dict[str, float] = field(default_factory=dict)
    decisions: dict[str, float] = field(default_factory=dict)
    degraded: float = 0.0

    def flagged(self, level: float) -> list[tuple[str, float]]:
        """Inputs at or above ``level``, the largest PSI first."""
        if not self.judged:
            return []
        return sorted(((k, v) for k, v in self.psi.items() if np.isfinite(v) and v >= level),
                      key=lambda kv: -kv[1])


@dataclass
class DriftStatus:
    """Every product's window (and :data:`ALL`) against one model's reference."""

    model_version: str | None
    has_reference: bool
    thresholds: DriftThresholds
    products: dict[str, ProductDrift]

    def shifted(self) -> dict[str, list[tuple[str, float]]]:
        """Per product, the inputs at or above the alert threshold."""
        return {p: f for p, d in self.products.items()
                if (f := d.flagged(self.thresholds.alert))}


def measure_drift(samples: Sequence[Sample], reference: DriftReference | None,
                  thresholds: DriftThresholds, model_version: str | None) -> DriftStatus:
    """PSI per product and input of ``samples`` (those of ``model_version`` for the scores),
    and their decision and degraded shares."""
    samples = list(samples)
    product = np.asarray([s.product for s in samples], dtype=object)
    decision = np.asarray([s.decision for s in samples], dtype=object)
    degraded = np.asarray([s.degraded for s in samples], dtype=bool)
    own = np.asarray([s.model_version == model_version for s in samples], dtype=bool)
    fraud, pd = SCORES
    scores = {fraud: np.asarray([s.fraud for s in samples], np.float64),
              pd: np.asarray([s.pd for s in samples], np.float64)}
    names = ([] if reference is None else
             [k for k in reference.inputs if k not in scores])
    x = _matrix(samples, names) if names else np.zeros((len(samples), 0))
    products: dict[str, ProductDrift] = {}
    for name in sorted({ALL, *product.tolist()}):
        sel = np.ones(len(samples), bool) if name == ALL else product == name
        n = int(sel.sum())
        d = ProductDrift(name, n, n >= thresholds.min_count)
        if n:
            d.decisions = {k: float((decision[sel] == k).sum()) / n for k in DECISIONS}
            d.degraded = float(degraded[sel].mean())
        if reference is not None and n:
            for j, k in enumerate(names):
                d.psi[k] = reference.psi(name, k, x[sel, j])
            for k, v in scores.items():
                d.psi[k] = reference.psi(name, k, v[sel & own])
        products[name] = d
    return DriftStatus(model_version, reference is not None, thresholds, products)


def _matrix(rows: Sequence[Sample], names: Sequence[str]) -> np.ndarray:
    """``[len(rows), len(names)]`` float64 of the rows' features (NaN where absent); rows of
    :class:`FeatureRow` with one key index are gathered at once."""
    x = np.full((len(rows), len(names)), np.nan)
    groups: dict[int, tuple[dict[str, int], list[int]]] = {}
    for i, s in enumerate(rows):
        f = s.features
        if type(f) is FeatureRow:
            key = id(f.index)
            group = groups.get(key)
            if group is None:
                group = groups[key] = (f.index, [])
            group[1].append(i)
        else:
            x[i] = [_number(f.get(name)) for name in names]
    for index, members in groups.values():
        cols = np.asarray([index.get(name, -1) for name in names])
        have = cols >= 0
        values = np.stack([rows[i].features.values for i in members])  # type: ignore[attr-defined]
        block = np.full((len(members), len(names)), np.nan)
        block[:, have] = values[:, cols[have]]
        x[members] = block
    return x


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return float("nan")


class References:
    """Drift references of registered models, read once each (``None`` for one without)."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self._cache: dict[str, DriftReference | None] = {}
        self._lock = threading.Lock()

    def get(self, version: str | None) -> DriftReference | None:
        if version is None:
            return None
        with self._lock:
            if version not in self._cache:
                try:
                    data = self.registry.read_extra(version, DRIFT_REFERENCE_FILE)
                except ModelError:
                    data = None
                self._cache[version] = None if data is None else DriftReference.from_dict(data)
            return self._cache[version]


@dataclass
class _Kept:
    """A verdict in a window and, once counted, its bin per input under its product's coder
    and under :data:`ALL`'s (``[2, inputs]``)."""

    sample: Sample
    codes: np.ndarray | None = None


class _Counts:
    """A window's (one product's, or :data:`ALL`'s) count per input and bin, kept as
    verdicts come and go."""

    def __init__(self, coder: BinCoder) -> None:
        self.coder = coder
        self.bins = np.zeros((len(coder.names), coder.bins), np.int64)
        self._rows = np.arange(len(coder.names))

    def add(self, codes: np.ndarray, sign: int) -> None:
        ok = codes >= 0
        self.bins[self._rows[ok], codes[ok]] += sign


class DriftMonitor:
    """The sliding windows of the service's verdicts (module docstring).

    The PSI is kept, not recomputed: each verdict is put in its reference bins when it is
    observed (one vectorised comparison per window, tens of microseconds) and taken out when
    it leaves the window, so a ``/metrics`` scrape reads counts instead of binning every
    window again (which held the interpreter ~250 ms at 20k verdicts, on the serving path's
    time). The reference is the deciding model's: that of the newest verdict not decided
    degraded (degraded verdicts come from the prior). When it changes (a promotion, a
    rollback), the windows are counted again once, at the next scrape.

    Args:
        references (References): where the deciding model's reference comes from.
        window (int): verdicts kept per product.
        thresholds (DriftThresholds): when to judge and flag.
    """

    def __init__(self, references: References, *, window: int,
                 thresholds: DriftThresholds) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.references = references
        self.window = window
        self.thresholds = thresholds
        self._windows: dict[str, deque[_Kept]] = {}
        self._decisions: dict[str, dict[str, int]] = {}
        self._degraded: dict[str, int] = {}
        self._newest: str | None = None
        self._deciding: str | None = None
        self._counted: str | None = None
        self._stale = True
        self._names: list[str] = []
        self._counts: dict[str, _Counts] = {}
        self._columns: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DriftMonitor(window={self.window}, thresholds={self.thresholds})"

    @staticmethod
    def sample(verdict: ChampionVerdict) -> Sample:
        """What the window keeps of a verdict (its numeric features as float32)."""
        return Sample(verdict.model_version, verdict.facts.product,
                      FeatureRow(verdict.features), verdict.fraud_probability, verdict.pd,
                      verdict.decision, verdict.degraded)

    def observe(self, verdict: ChampionVerdict) -> None:
        """Keep one answered verdict (called on the request thread: its ~130 features copied
        into a float32 row and put in their bins, tens of microseconds)."""
        s = self.sample(verdict)
        kept = _Kept(s)
        with self._lock:
            w = self._windows.get(s.product)
            if w is None:
                w = self._windows[s.product] = deque()
                self._decisions[s.product] = dict.fromkeys(DECISIONS, 0)
                self._degraded[s.product] = 0
            if len(w) == self.window:
                self._leave(w.popleft())
            w.append(kept)
            if s.decision in self._decisions[s.product]:
                self._decisions[s.product][s.decision] += 1
            self._degraded[s.product] += s.degraded
            self._newest = s.model_version
            if not s.degraded and s.model_version != self._deciding:
                self._deciding = s.model_version
                self._stale = True
            if not self._stale:
                self._count(kept)

    def status(self) -> DriftStatus:
        """PSI and shares of the windows now, against the deciding model's reference."""
        version = self._deciding_version()
        reference = self.references.get(version)  # NOTE: read outside the lock (a file, once)
        with self._lock:
            if self._stale or self._counted != version:
                self._recount(version, reference)
            products: dict[str, ProductDrift] = {}
            total = sum(len(w) for w in self._windows.values())
            for name in sorted({ALL, *self._windows}):
                n = total if name == ALL else len(self._windows[name])
                d = ProductDrift(name, n, n >= self.thresholds.min_count)
                if n:
                    counts = (self._decisions.values() if name == ALL
                              else [self._decisions[name]])
                    d.decisions = {k: sum(c[k] for c in counts) / n for k in DECISIONS}
                    degraded = (sum(self._degraded.values()) if name == ALL
                                else self._degraded[name])
                    d.degraded = degraded / n
                    if reference is not None:
                        d.psi = self._counts[name].coder.psi(self._counts[name].bins)
                products[name] = d
        return DriftStatus(version, reference is not None, self.thresholds, products)

    def _deciding_version(self) -> str | None:
        with self._lock:
            return self._deciding if self._deciding is not None else self._newest

    def _leave(self, kept: _Kept) -> None:
        s = kept.sample
        if s.decision in self._decisions[s.product]:
            self._decisions[s.product][s.decision] -= 1
        self._degraded[s.product] -= s.degraded
        if kept.codes is not None and not self._stale:
            self._counts[s.product].add(kept.codes[0], -1)
            self._counts[ALL].add(kept.codes[1], -1)

    def _recount(self, version: str | None, reference: DriftReference | None) -> None:
        """Count every window again against ``reference`` (under the lock)."""
        self._counted, self._stale = version, False
        self._columns.clear()
        self._counts.clear()
        for w in self._windows.values():
            for kept in w:
                kept.codes = None
        if reference is None:
            self._names = []
            return
        self._names = [*(k for k in reference.inputs if k not in SCORES), *SCORES]
        for name in {ALL, *self._windows}:
            self._counts[name] = _Counts(BinCoder.of(reference, name, self._names))
        for product, w in self._windows.items():
            if not w:
                continue
            samples = [k.sample for k in w]
            x = np.concatenate([_matrix(samples, self._names[:-2]), _scores(samples, version)],
                               axis=1)
            own = self._counts[product].coder.codes(x)
            every = self._counts[ALL].coder.codes(x)
            self._counts[product].bins += _bin_counts(own, self._counts[product].bins.shape[1])
            self._counts[ALL].bins += _bin_counts(every, self._counts[ALL].bins.shape[1])
            for i, kept in enumerate(w):
                kept.codes = np.stack([own[i], every[i]])

    def _count(self, kept: _Kept) -> None:
        """Put one verdict in its bins (under the lock; the counts are current)."""
        if not self._names:
            return
        s = kept.sample
        counts = self._counts.get(s.product)
        if counts is None:
            counts = self._counts[s.product] = _Counts(
                BinCoder.of(self._require_reference(), s.product, self._names))
        x = np.concatenate([self._row(s.features, self._names[:-2]),
                            _scores([s], self._counted)[0]])
        kept.codes = np.stack([counts.coder.codes(x), self._counts[ALL].coder.codes(x)])
        counts.add(kept.codes[0], 1)
        self._counts[ALL].add(kept.codes[1], 1)

    def _require_reference(self) -> DriftReference:
        reference = self.references.get(self._counted)
        assert reference is not None  # NOTE: _names is non-empty only when there is one
        return reference

    def _row(self, features: Mapping[str, Any], names: Sequence[str]) -> np.ndarray:
        if type(features) is not FeatureRow:
            return np.asarray([_number(features.get(n)) for n in names], np.float64)
        cols = self._columns.get(id(features.index))
        if cols is None:
            cols = self._columns[id(features.index)] = np.asarray(
                [features.index.get(n, -1) for n in names])
        values = features.values
        return np.where(cols >= 0, values[np.maximum(cols, 0)], np.nan).astype(np.float64)


def _scores(samples: Sequence[Sample], version: str | None) -> np.ndarray:
    """``[len(samples), 2]`` fraud and pd of the verdicts of ``version`` (NaN for the rest:
    another model's scores say nothing of this one's)."""
    out = np.asarray([(s.fraud, s.pd) for s in samples], np.float64).reshape(-1, 2)
    own = np.asarray([s.model_version == version for s in samples], bool)
    out[~own] = np.nan
    return out


def _bin_counts(codes: np.ndarray, bins: int) -> np.ndarray:
    """``[n, inputs]`` bin codes -> ``[inputs, bins]`` counts (codes ``-1`` left out)."""
    inputs = codes.shape[1]
    flat = (np.arange(inputs)[None, :] * bins + codes)[codes >= 0]
    return np.bincount(flat, minlength=inputs * bins).reshape(inputs, bins)


class DriftCollector(Collector):
    """The monitor's numbers as Prometheus gauges, computed at scrape time."""

    def __init__(self, monitor: DriftMonitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterable[GaugeMetricFamily]:
        status = self.monitor.status()
        psi = GaugeMetricFamily(
            "riskgraph_drift_psi", "Population stability index of a model input or score "
            "(score:fraud, score:pd) over the product's window against the deciding model's "
            "training reference (products whose window is judged).", labels=["product", "input"])
        shifted = GaugeMetricFamily(
            "riskgraph_drift_shifted_inputs", "Inputs of a judged window at or above "
            "RISKGRAPH_DRIFT_PSI_ALERT.", labels=["product"])
        size = GaugeMetricFamily(
            "riskgraph_drift_window_verdicts", "Verdicts in the product's window.",
            labels=["product"])
        decisions = GaugeMetricFamily(
            "riskgraph_decision_share", "Share of the window's verdicts with each decision.",
            labels=["product", "decision"])
        degraded = GaugeMetricFamily(
            "riskgraph_degraded_share", "Share of the window's verdicts decided degraded.",
            labels=["product"])
        for product, d in status.products.items():
            size.add_metric([product], d.verdicts)
            for k, v in d.decisions.items():
                decisions.add_metric([product, k], v)
            degraded.add_metric([product], d.degraded)
            if d.judged and status.has_reference:
                for name, value in d.psi.items():
                    if np.isfinite(value):
                        psi.add_metric([product, name], value)
                shifted.add_metric([product], len(d.flagged(status.thresholds.alert)))
        thresholds = GaugeMetricFamily(
            "riskgraph_drift_psi_threshold", "The configured PSI thresholds.", labels=["level"])
        thresholds.add_metric(["warn"], status.thresholds.warn)
        thresholds.add_metric(["alert"], status.thresholds.alert)
        yield from (psi, shifted, size, decisions, degraded, thresholds)


# -- offline: riskgraph drift ------------------------------------------------------------------
def verdict_samples(store: GraphStore, *, window: int, since: int | None = None
                    ) -> list[Sample]:
    """The last ``window`` verdicts of each product in the store (decided from ``since``).

    Raises:
        ValueError: if ``window < 1``.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    rows = store.export_nodes("Verdict").to_pylist()
    if since is not None:
        rows = [r for r in rows if (r["decided_at"] or 0) >= since]
    apps = store.get_nodes("Application", [r["id"] for r in rows])
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        app = apps.get(r["id"])
        product = app.properties.get("product") if app is not None else None
        by.setdefault(str(product or ""), []).append(r)
    out: list[Sample] = []
    for product, rs in sorted(by.items()):
        rs.sort(key=lambda r: (r["decided_at"] or 0, r["id"]))
        for r in rs[-window:]:
            out.append(Sample(str(r["model_version"]), product,
                              json.loads(r["features_json"] or "{}"),
                              float(r["fraud_probability"]), float(r["pd"]),
                              str(r["decision"]), bool(r["degraded"])))
    return out


def newest_version(samples: Sequence[Sample]) -> str | None:
    """The model that decided most of the samples."""
    counts: dict[str, int] = {}
    for s in samples:
        counts[s.model_version] = counts.get(s.model_version, 0) + 1
    return max(counts, key=lambda k: (counts[k], k)) if counts else None


def render_drift_markdown(status: DriftStatus, *, command: str, image: str | None,
                          top: int = 40) -> str:
    """The report: what moved, per product, then the decision shares."""
    t = status.thresholds
    lines = ["# Drift report", "", f"Command: `{command}`", "",
             f"Model: `{status.model_version}`; thresholds: moved from PSI {t.warn:g}, "
             f"shifted from {t.alert:g}; a product is judged from {t.min_count} verdicts.", ""]
    if not status.has_reference:
        lines += ["The deciding model has no drift reference (trained before references were "
                  "kept, or the rules): decision monitoring only.", ""]
    lines += ["## Inputs that moved", ""]
    for product, d in status.products.items():
        if not d.judged:
            lines.append(f"- **{product}**: {d.verdicts} verdicts, too few to judge.")
            continue
        moved = d.flagged(t.warn)
        if not moved:
            lines.append(f"- **{product}** ({d.verdicts} verdicts): nothing moved.")
            continue
        shown = ", ".join(f"`{k}` {v:.2f}" + (" **shifted**" if v >= t.alert else "")
                          for k, v in moved[:top])
        more = f" and {len(moved) - top} more" if len(moved) > top else ""
        lines.append(f"- **{product}** ({d.verdicts} verdicts): {shown}{more}.")
    lines += ["", "## Decisions", "", "| product | verdicts | approve | review | decline | "
              "degraded |", "|---|---:|---:|---:|---:|---:|"]
    for product, d in status.products.items():
        cells = " | ".join(f"{d.decisions.get(k, 0.0):.1%}" for k in DECISIONS)
        lines.append(f"| {product} | {d.verdicts} | {cells} | {d.degraded:.1%} |")
    if image is not None:
        lines += ["", f"![PSI of the inputs that moved most, per product]({image})"]
    return "\n".join(lines) + "\n"


def plot_drift(status: DriftStatus, path: Path, top: int = 10) -> Path:
    """A bar chart per judged product of its largest PSIs, thresholds drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    judged = [d for d in status.products.values() if d.judged and d.psi]
    fig, axes = plt.subplots(max(len(judged), 1), 1, figsize=(8, 2.6 * max(len(judged), 1)),
                             squeeze=False)
    for ax, d in zip(axes[:, 0], judged, strict=False):
        items = sorted(((k, v) for k, v in d.psi.items() if np.isfinite(v)),
                       key=lambda kv: -kv[1])[:top]
        ax.barh([k for k, _ in items][::-1], [v for _, v in items][::-1],
                color=["#c0392b" if v >= status.thresholds.alert else "#e67e22"
                       if v >= status.thresholds.warn else "#7f8c8d" for _, v in items][::-1])
        ax.axvline(status.thresholds.warn, color="#e67e22", ls="--", lw=1)
        ax.axvline(status.thresholds.alert, color="#c0392b", ls="--", lw=1)
        ax.set_title(f"{d.product} ({d.verdicts} verdicts)", fontsize=10)
        ax.tick_params(labelsize=8)
    axes[-1, 0].set_xlabel("PSI against the training reference")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_drift_report(status: DriftStatus, doc: Path, *, command: str) -> tuple[Path, Path]:
    """Write ``doc`` (Markdown) and its PNG beside it (``<stem>.png``)."""
    image = doc.with_suffix(".png")
    plot_drift(status, image)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(render_drift_markdown(status, command=command, image=image.name))
    return doc, image
