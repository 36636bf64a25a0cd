"""`read_graph_files`: a labelled node-classification graph from a nodes file and an edges file.

The format is documented in ``docs/BENCHMARK_FORMAT.md``. Parquet and CSV are read through
pandas; the suffix decides (``.parquet``/``.pq``, ``.csv``, ``.csv.gz``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from gnn.benchmarks.edge_features import derive_edge_features
from gnn.errors import GraphDataError
from gnn.benchmarks.feature_scaling import standardise_features
from gnn.benchmarks.node_graph import NodeGraph
from gnn.benchmarks.splits import stratified_splits

DeriveFeatures = Literal["auto", "always", "never"]
EdgeWeightUse = Literal["auto", "mean", "features"]

log = logging.getLogger(__name__)

NODE_ID, NODE_LABEL = "id", "label"
EDGE_SOURCE, EDGE_TARGET, EDGE_WEIGHT, EDGE_TIME, EDGE_TYPE = (
    "source", "target", "weight", "time", "type")
_SPLIT_NAMES = {"train": 0, "val": 1, "valid": 1, "validation": 1, "test": 2}
_MASK_COLUMN = re.compile(r"^(train|val|test)(?:_(\d+))?$")
_SPLIT_COLUMN = re.compile(r"^split(?:_(\d+))?$")


def read_table(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A Parquet or CSV file as a DataFrame, chosen by suffix (only ``columns`` if given)."""
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path, columns=columns)
        if name.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path, usecols=columns)
    except (OSError, ValueError) as e:
        raise GraphDataError(f"cannot read {path}: {e}") from e
    raise GraphDataError(f"unknown file type {path.name!r}: use .parquet, .pq, .csv or .csv.gz")


def read_node_ids(nodes: str | Path | pd.DataFrame) -> list[str]:
    """The node ids of a nodes table, as text, in the order :func:`read_graph_files` numbers
    the nodes."""
    node_df = nodes if isinstance(nodes, pd.DataFrame) else read_table(nodes, [NODE_ID])
    return [str(v) for v in node_df[NODE_ID]]


def write_predictions(path: str | Path, ids: list[str], graph: NodeGraph,
                      predictions: Mapping[int, np.ndarray]) -> int:
    """Write the test nodes' predicted probabilities of each split to a CSV or Parquet file.

    Columns: ``id``, ``split``, ``label`` (the given label), then ``score`` (the probability of
    the larger class, the one ROC-AUC ranks) for a binary task, or ``prob_<class>`` per class.

    Args:
        path (str or Path): ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq``.
        ids (list[str]): node ids in graph order (:func:`read_node_ids`).
        graph (NodeGraph): the graph the predictions were made on (test masks, labels).
        predictions (Mapping[int, numpy.ndarray]): split -> probabilities ``[N, C]``.

    Returns:
        int: rows written.

    Raises:
        GraphDataError: on an unknown suffix or ids that do not match the graph.
    """
    path = Path(path)
    name = path.name.lower()
    if not name.endswith((".csv", ".csv.gz", ".parquet", ".pq")):
        raise GraphDataError(f"unknown file type {path.name!r}: use .parquet, .pq, .csv or "
                             ".csv.gz")
    if len(ids) != graph.num_nodes:
        raise GraphDataError(f"{len(ids)} ids for a graph of {graph.num_nodes} nodes")
    y = graph.y.cpu().numpy()
    classes = list(graph.class_names) or [str(c) for c in range(max(graph.num_classes, 2))]
    frames = []
    for split, probs in sorted(predictions.items()):
        test = graph.split(split)[2].cpu().numpy() & (y >= 0)
        frame = pd.DataFrame({"id": np.asarray(ids, dtype=object)[test], "split": split,
                              "label": np.asarray(classes, dtype=object)[y[test]]})
        if probs.shape[1] == 2:
            frame["score"] = probs[test, 1]
        else:
            for c, cls in enumerate(classes):
                frame[f"prob_{cls}"] = probs[test, c]
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if name.endswith((".csv", ".csv.gz")):
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path, index=False)
    return len(table)


def read_graph_files(
    nodes: str | Path | pd.DataFrame,
    edges: str | Path | pd.DataFrame,
    directed: bool = False,
    derive_features: DeriveFeatures = "auto",
    num_splits: int = 1,
    train_fraction: float = 0.5,
    val_fraction: float = 0.25,
    split_seed: int = 0,
    use_edge_weight: bool | EdgeWeightUse = "auto",
) -> NodeGraph:
    """Read, validate and assemble a :class:`NodeGraph` with standardised features.

    Args:
        nodes (str, Path or pandas.DataFrame): the nodes table (``id``, ``label``, optional
            split and feature columns).
        edges (str, Path or pandas.DataFrame): the edges table (``source``, ``target``,
            optional ``weight``, ``time``, ``type``).
        directed (bool, optional): treat edges as directed (separate in/out relations and
            features). (default: ``False``)
        derive_features (str, optional): ``"auto"`` derives edge statistics only when the nodes
            have no feature columns, ``"always"`` appends them, ``"never"`` does not derive.
            (default: ``"auto"``)
        num_splits (int, optional): random stratified splits to draw when the nodes have no
            split columns. (default: ``1``)
        train_fraction (float, optional): see :func:`stratified_splits`. (default: ``0.5``)
        val_fraction (float, optional): see :func:`stratified_splits`. (default: ``0.25``)
        split_seed (int, optional): seed of those splits. (default: ``0``)
        use_edge_weight (bool or str, optional): what a ``weight`` column is for:
            ``"mean"`` (or ``True``) weights the neighbour mean by it and refuses negative
            weights; ``"features"`` (or ``False``) uses it only in the derived features;
            ``"auto"`` weights the mean when every weight is non-negative and otherwise uses
            the weights as features only (signed weights such as ratings), saying so in a
            warning. (default: ``"auto"``)

    Returns:
        NodeGraph: features standardised, labels ``0 .. C-1`` (``-1`` unlabelled), masks.

    Raises:
        GraphDataError: on a missing column, duplicate id, unknown edge endpoint, non-numeric
            feature, a split mask that is not boolean, or negative weights with
            ``use_edge_weight="mean"`` (checked before any feature is computed).
    """
    if derive_features not in ("auto", "always", "never"):
        raise ValueError(f"derive_features must be 'auto', 'always' or 'never', "
                         f"got {derive_features!r}")
    weight_use: str = ("mean" if use_edge_weight is True else
                       "features" if use_edge_weight is False else use_edge_weight)
    if weight_use not in ("auto", "mean", "features"):
        raise ValueError(f"use_edge_weight must be 'auto', 'mean', 'features' or a bool, "
                         f"got {use_edge_weight!r}")
    node_df = nodes if isinstance(nodes, pd.DataFrame) else read_table(nodes)
    edge_df = edges if isinstance(edges, pd.DataFrame) else read_table(edges)
    for col in (NODE_ID, NODE_LABEL):
        if col not in node_df.columns:
            raise GraphDataError(f"nodes table has no {col!r} column "
                                 f"(columns: {list(node_df.columns)})")
    for col in (EDGE_SOURCE, EDGE_TARGET):
        if col not in edge_df.columns:
            raise GraphDataError(f"edges table has no {col!r} column "
                                 f"(columns: {list(edge_df.columns)})")

    ids = node_df[NODE_ID]
    if ids.isna().any():
        raise GraphDataError("nodes table has a missing id")
    if ids.duplicated().any():
        raise GraphDataError(f"duplicate node id {ids[ids.duplicated()].iloc[0]!r}")
    index = pd.Index(ids.astype(str))
    n = len(index)
    src = _positions(index, edge_df[EDGE_SOURCE], EDGE_SOURCE)
    dst = _positions(index, edge_df[EDGE_TARGET], EDGE_TARGET)

    y, class_names = _encode_labels(node_df[NODE_LABEL])
    split_cols = [c for c in node_df.columns
                  if _SPLIT_COLUMN.match(str(c)) or _MASK_COLUMN.match(str(c))]
    feature_cols = [c for c in node_df.columns if c not in (NODE_ID, NODE_LABEL, *split_cols)]
    weight = _edge_column(edge_df, EDGE_WEIGHT)
    signed = weight is not None and bool(np.any(weight < 0))
    if signed and weight_use == "mean":
        raise GraphDataError(
            f"edge weights must be non-negative to weight the neighbour mean (min "
            f"{float(np.min(weight)):g}); use them as features only: --edge-weight features "
            f"on the command line, use_edge_weight='features' in Python")

    feats: list[np.ndarray] = []
    names: list[str] = []
    for col in feature_cols:
        values = node_df[col]
        if values.dtype == bool:
            values = values.astype(np.float64)
        if not pd.api.types.is_numeric_dtype(values):
            raise GraphDataError(f"feature column {col!r} is not numeric (dtype {values.dtype}); "
                                 f"encode it or drop it")
        feats.append(values.to_numpy(dtype=np.float64, na_value=np.nan)[:, None])
        names.append(str(col))

    time = _edge_time(edge_df)
    etype = edge_df[EDGE_TYPE].astype(str).to_numpy() if EDGE_TYPE in edge_df.columns else None
    derive = derive_features == "always" or (derive_features == "auto" and not feats)
    if signed and weight_use == "auto":
        assert weight is not None
        log.warning(
            "edge weights range from %g to %g: signed weights do not weight the neighbour mean; "
            "%s", float(np.min(weight)), float(np.max(weight)),
            "they enter the derived edge features only" if derive else
            "they are not used, since no edge features are derived (--derive-features always "
            "/ derive_features='always' derives them)")
    if derive:
        derived, derived_names = derive_edge_features(src, dst, n, directed=directed,
                                                      weight=weight, time=time, edge_type=etype)
        feats.append(derived)
        names.extend(derived_names)
    if not feats:
        raise GraphDataError("no features: the nodes have no feature columns and "
                             "derive_features='never'")
    x = standardise_features(np.concatenate(feats, axis=1))

    if split_cols:
        train, val, test = _read_splits(node_df, split_cols, y)
    else:
        train, val, test = stratified_splits(y, num_splits, train_fraction, val_fraction,
                                             split_seed)
    propagation_weight = None if signed or weight_use == "features" else weight
    return NodeGraph.from_edges(
        x, y, src, dst, directed=directed, weight=propagation_weight,
        train_masks=train, val_masks=val, test_masks=test,
        feature_names=names, class_names=class_names,
    )


def _positions(index: pd.Index, column: pd.Series, name: str) -> np.ndarray:
    if column.isna().any():
        raise GraphDataError(f"edges table has a missing {name}")
    pos = index.get_indexer(column.astype(str))
    if (pos < 0).any():
        bad = column[pos < 0]
        raise GraphDataError(f"{int((pos < 0).sum())} edge {name}s are not node ids, "
                             f"e.g. {bad.iloc[0]!r}")
    return pos.astype(np.int64)


def _encode_labels(labels: pd.Series) -> tuple[np.ndarray, list[str]]:
    known = labels.notna()
    if known.sum() == 0:
        raise GraphDataError("no node has a label")
    values = labels[known]
    if values.dtype == bool:
        values = values.astype(np.int64)
    classes = np.unique(values.to_numpy())
    if classes.size < 2:
        raise GraphDataError(f"labels take a single value {classes[0]!r}; need two or more")
    y = np.full(len(labels), -1, dtype=np.int64)
    y[known.to_numpy()] = np.searchsorted(classes, values.to_numpy())
    return y, [str(c) for c in classes]


def _edge_column(edge_df: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in edge_df.columns:
        return None
    col = edge_df[name]
    if not pd.api.types.is_numeric_dtype(col):
        raise GraphDataError(f"edge column {name!r} must be numeric, got dtype {col.dtype}")
    values = col.to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.all(np.isfinite(values)):
        raise GraphDataError(f"edge column {name!r} has missing or infinite values")
    return values


def _edge_time(edge_df: pd.DataFrame) -> np.ndarray | None:
    if EDGE_TIME not in edge_df.columns:
        return None
    col = edge_df[EDGE_TIME]
    if pd.api.types.is_datetime64_any_dtype(col):
        if col.isna().any():
            raise GraphDataError("edge column 'time' has missing values")
        seconds = col.astype("datetime64[ns]").astype(np.int64) // 10**9
        return seconds.to_numpy(dtype=np.float64)
    if pd.api.types.is_numeric_dtype(col):
        return _edge_column(edge_df, EDGE_TIME)
    try:
        parsed = pd.to_datetime(col, utc=True)
    except (ValueError, TypeError) as e:
        raise GraphDataError(f"edge column 'time' is neither numeric nor a date: {e}") from e
    return _edge_time(pd.DataFrame({EDGE_TIME: parsed.dt.tz_localize(None)}))


def _read_splits(
    node_df: pd.DataFrame, split_cols: list[str], y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labelled = y >= 0
    text_cols = [c for c in split_cols if _SPLIT_COLUMN.match(str(c))]
    if text_cols:
        if len(text_cols) < len(split_cols):
            raise GraphDataError("use split text columns (split or split_k) or train/val/test "
                                 "mask columns, not both")
        return _text_splits(node_df, text_cols, labelled)
    by_index: dict[str, dict[int, np.ndarray]] = {"train": {}, "val": {}, "test": {}}
    for col in split_cols:
        match = _MASK_COLUMN.match(str(col))
        assert match is not None
        kind, k = match.group(1), int(match.group(2) or 0)
        values = node_df[col]
        if values.dtype != bool:
            if not pd.api.types.is_numeric_dtype(values) or not values.dropna().isin([0, 1]).all():
                raise GraphDataError(f"split column {col!r} must be boolean (or 0/1)")
            values = values.fillna(0).astype(bool)
        by_index[kind][k] = values.to_numpy(dtype=bool) & labelled
    keys = sorted(by_index["train"])
    if keys != list(range(len(keys))) or any(sorted(by_index[k]) != keys for k in by_index):
        raise GraphDataError("split columns must be train/val/test, or train_k/val_k/test_k for "
                             "the same k = 0, 1, ..., S-1")
    train, val, test = (np.stack([by_index[k][i] for i in keys]) for k in ("train", "val", "test"))
    if np.any((train & val) | (train & test) | (val & test)):
        raise GraphDataError("a node is in more than one of train, val and test in one split")
    return train, val, test


def _text_splits(
    node_df: pd.DataFrame, columns: list[str], labelled: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One split per text column (``split``, or ``split_0`` ... ``split_{S-1}``), each naming
    ``train``, ``val`` (``valid``, ``validation``) or ``test`` per node; null: in none."""
    suffixes = [_SPLIT_COLUMN.match(str(c)).group(1) for c in columns]  # type: ignore[union-attr]
    ks = sorted(-1 if k is None else int(k) for k in suffixes)
    if ks != [-1] and ks != list(range(len(ks))):
        raise GraphDataError("split text columns must be one 'split' column, or split_k for "
                             "k = 0, 1, ..., S-1")
    ordered = ["split"] if ks == [-1] else [f"split_{k}" for k in ks]
    masks: list[np.ndarray] = []
    for col in ordered:
        values = node_df[col].astype("string").str.strip().str.lower()
        unknown = set(values.dropna().unique()) - set(_SPLIT_NAMES)
        if unknown:
            raise GraphDataError(f"unknown values {sorted(unknown)} in split column {col!r}; "
                                 "use train, val, test")
        part = values.map(_SPLIT_NAMES).astype("Int64").fillna(-1).to_numpy(dtype=np.int64)
        masks.append(np.stack([(part == j) & labelled for j in range(3)]))
    stacked = np.stack(masks)  # [S, 3, N]
    return stacked[:, 0], stacked[:, 1], stacked[:, 2]
