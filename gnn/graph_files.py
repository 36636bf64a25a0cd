"""`read_graph_files`: a labelled node-classification graph from a nodes file and an edges file.

The format is documented in ``docs/BENCHMARK_FORMAT.md``. Parquet and CSV are read through
pandas; the suffix decides (``.parquet``/``.pq``, ``.csv``, ``.csv.gz``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from gnn.edge_features import derive_edge_features
from gnn.errors import GraphDataError
from gnn.feature_scaling import standardise_features
from gnn.node_graph import NodeGraph
from gnn.splits import stratified_splits

DeriveFeatures = Literal["auto", "always", "never"]

NODE_ID, NODE_LABEL = "id", "label"
EDGE_SOURCE, EDGE_TARGET, EDGE_WEIGHT, EDGE_TIME, EDGE_TYPE = (
    "source", "target", "weight", "time", "type")
_SPLIT_NAMES = {"train": 0, "val": 1, "valid": 1, "validation": 1, "test": 2}
_MASK_COLUMN = re.compile(r"^(train|val|test)(?:_(\d+))?$")


def read_table(path: str | Path) -> pd.DataFrame:
    """A Parquet or CSV file as a DataFrame, chosen by suffix."""
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if name.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise GraphDataError(f"cannot read {path}: {e}") from e
    raise GraphDataError(f"unknown file type {path.name!r}: use .parquet, .pq, .csv or .csv.gz")


def read_graph_files(
    nodes: str | Path | pd.DataFrame,
    edges: str | Path | pd.DataFrame,
    directed: bool = False,
    derive_features: DeriveFeatures = "auto",
    num_splits: int = 1,
    train_fraction: float = 0.5,
    val_fraction: float = 0.25,
    split_seed: int = 0,
    use_edge_weight: bool = True,
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
        use_edge_weight (bool, optional): weight the neighbour mean by ``weight`` when present.
            (default: ``True``)

    Returns:
        NodeGraph: features standardised, labels ``0 .. C-1`` (``-1`` unlabelled), masks.

    Raises:
        GraphDataError: on a missing column, duplicate id, unknown edge endpoint, non-numeric
            feature, or a split mask that is not boolean.
    """
    node_df = nodes if isinstance(nodes, pd.DataFrame) else read_table(nodes)
    edge_df = edges if isinstance(edges, pd.DataFrame) else read_table(edges)
    if derive_features not in ("auto", "always", "never"):
        raise ValueError(f"derive_features must be 'auto', 'always' or 'never', "
                         f"got {derive_features!r}")
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
    split_cols = [c for c in node_df.columns if c == "split" or _MASK_COLUMN.match(str(c))]
    feature_cols = [c for c in node_df.columns if c not in (NODE_ID, NODE_LABEL, *split_cols)]

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

    weight = _edge_column(edge_df, EDGE_WEIGHT)
    time = _edge_time(edge_df)
    etype = edge_df[EDGE_TYPE].astype(str).to_numpy() if EDGE_TYPE in edge_df.columns else None
    if derive_features == "always" or (derive_features == "auto" and not feats):
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
    propagation_weight = weight if use_edge_weight else None
    if propagation_weight is not None and np.any(propagation_weight < 0):
        raise GraphDataError("edge weights must be non-negative to weight the neighbour mean; "
                             "pass use_edge_weight=False to use them only as features")
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
    if "split" in split_cols:
        if len(split_cols) > 1:
            raise GraphDataError("use either a 'split' column or train/val/test columns, not both")
        values = node_df["split"].astype("string").str.strip().str.lower()
        unknown = set(values.dropna().unique()) - set(_SPLIT_NAMES)
        if unknown:
            raise GraphDataError(f"unknown split values {sorted(unknown)}; use train, val, test")
        masks = np.stack([(values == k).fillna(False).to_numpy(dtype=bool)
                          for k in ("train", "val", "test")])
        masks[1] |= values.isin(["valid", "validation"]).fillna(False).to_numpy(dtype=bool)
        return tuple(m[None, :] & labelled for m in masks)  # type: ignore[return-value]
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
