"""`FeatureSet`: the version of the features a model was trained on, checked when it loads.

A trained model is only valid on the features it was trained on: their names, their order and
what each one means. Two things identify that set:

* :data:`FEATURE_SET_VERSION`, an integer bumped by hand whenever the *definition* of a feature
  changes while its name stays (a window from 24 h to 12 h, a log scale, a new hub cap);
* a fingerprint of the names, in order, of the node features of every type
  (:data:`gnn.features.risk_features.NODE_FEATURES`) and of the root features of every root type, so
  that a renamed, added, removed or reordered feature is caught even when nobody bumped the
  integer.

The registry stores both in every model's manifest (:meth:`gnn.ModelRegistry.save`) and
:meth:`gnn.ModelRegistry.load` refuses a model whose set differs from what this code computes
(:func:`check_feature_set`), with one line that says what to do; a model registered before sets
were versioned stores none and is refused the same way. Scoring never meets a mismatch.

The root feature names are not declared a second time: they are read from
:class:`gnn.features.risk_features.RiskFeatures` itself, run once on an empty graph with no query (a few
milliseconds, memoised), so the one feature definition is also the one list of names.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from gnn.errors import ModelError
from graph.typing import NodeType

FEATURE_SET_VERSION: Final = 2
"""Bump by hand when a feature's definition changes without its name changing (see module)."""

ROOT_TYPES: Final[tuple[NodeType, ...]] = ("Application", "User", "Merchant")
"""The node types a model scores as roots."""

RETRAIN_HINT: Final = "retrain it (riskgraph train --world DIR --promote)"


class FeatureSetMismatchError(ModelError):
    """A model was trained on other features than this code computes (or on an unversioned
    set); its message is one line that names both sets and says to retrain."""


@dataclass(frozen=True)
class FeatureSet:
    """A feature set as stored with a model.

    Args:
        version (int): :data:`FEATURE_SET_VERSION` when the model was trained.
        fingerprint (str): sha256 of the node and root feature names (:func:`names_fingerprint`).
        root_types (tuple[str, ...]): the root types whose names the fingerprint covers.
    """

    version: int
    fingerprint: str
    root_types: tuple[NodeType, ...] = ROOT_TYPES

    def __str__(self) -> str:
        return f"v{self.version} ({self.fingerprint[:12]})"

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "fingerprint": self.fingerprint,
                "root_types": list(self.root_types)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSet:
        """The set stored by :meth:`to_dict`.

        Raises:
            ValueError: if a field is missing or of the wrong type.
        """
        try:
            version, fingerprint = data["version"], data["fingerprint"]
            root_types = tuple(data.get("root_types", ROOT_TYPES))
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a feature set: {data!r}") from e
        if not isinstance(version, int) or not isinstance(fingerprint, str):
            raise ValueError(f"not a feature set: {data!r}")
        return cls(version, fingerprint, root_types)


def names_fingerprint(node_names: Mapping[str, Iterable[str]],
                      root_names: Mapping[str, Iterable[str]]) -> str:
    """sha256 of the feature names per node type and per root type, in their order.

    Args:
        node_names (Mapping[str, Iterable[str]]): node feature names per node type.
        root_names (Mapping[str, Iterable[str]]): root feature names per root type.
    """
    doc = {"node": {t: list(v) for t, v in sorted(node_names.items())},
           "root": {t: list(v) for t, v in sorted(root_names.items())}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


@functools.cache
def _current_root_names() -> dict[NodeType, tuple[str, ...]]:
    # NOTE: imported here: gnn.features.risk_features imports the kernels, which a registry listing
    # does not need; the names come from the feature code itself, on an empty graph.
    from gnn.data.lending_graph import LendingGraph
    from gnn.features.risk_features import ApplicationQueries, RiskFeatures
    from graph.snapshot import GraphSnapshot

    graph = LendingGraph.from_snapshot(GraphSnapshot.from_tables({}, {}))
    feats = RiskFeatures(graph)
    none = np.zeros(0, dtype=np.int64)
    return {
        "Application": tuple(feats.application_features(
            ApplicationQueries.from_graph(graph, none))[1]),
        "User": tuple(feats.user_features(none, none)[1]),
        "Merchant": tuple(feats.merchant_features(none, none)[1]),
    }


def current_feature_names() -> dict[str, dict[NodeType, tuple[str, ...]]]:
    """What this code computes: ``{"node": {type: names}, "root": {root type: names}}``."""
    from gnn.features.risk_features import NODE_FEATURES

    return {"node": dict(NODE_FEATURES), "root": _current_root_names()}


def current_feature_set(root_types: Iterable[NodeType] = ROOT_TYPES) -> FeatureSet:
    """The feature set this code computes for models scoring ``root_types``.

    Raises:
        ValueError: for a root type the features do not cover.
    """
    names = current_feature_names()
    types = tuple(root_types)
    unknown = [t for t in types if t not in names["root"]]
    if unknown:
        raise ValueError(f"root_types must be among {ROOT_TYPES}, got {unknown}")
    return FeatureSet(FEATURE_SET_VERSION,
                      names_fingerprint(names["node"], {t: names["root"][t] for t in types}),
                      types)


def pipeline_feature_set(root_feature_names: Mapping[NodeType, Iterable[str]]) -> FeatureSet:
    """The feature set of a pipeline trained by this code, from its root feature names.

    Raises:
        FeatureSetMismatchError: if those names are not what this code computes (a pipeline
            rebuilt from another version's state).
    """
    root = {t: tuple(v) for t, v in root_feature_names.items()}
    current = current_feature_names()
    for t, v in root.items():
        if current["root"].get(t) != v:
            raise FeatureSetMismatchError(
                f"the pipeline's {t} root features are not the ones this code computes: "
                f"{RETRAIN_HINT}")
    types = tuple(t for t in ROOT_TYPES if t in root)
    return FeatureSet(FEATURE_SET_VERSION, names_fingerprint(current["node"], root), types)


def check_feature_set(stored: Mapping[str, Any] | None, *, model: str) -> FeatureSet:
    """Refuse a model whose stored feature set is not the one this code computes.

    Args:
        stored (Mapping[str, Any] or None): the manifest's ``feature_set`` (``None`` for a
            model registered before feature sets were versioned).
        model (str): the model's name for the message.

    Returns:
        FeatureSet: the (matching) stored set.

    Raises:
        FeatureSetMismatchError: on any difference, with a one-line message.
    """
    if stored is None:
        raise FeatureSetMismatchError(
            f"model {model} stores no feature-set version (registered before feature sets "
            f"were versioned; this code computes feature set {current_feature_set()}): "
            f"{RETRAIN_HINT}")
    try:
        fs = FeatureSet.from_dict(stored)
        current = current_feature_set(fs.root_types)
    except ValueError as e:
        raise FeatureSetMismatchError(
            f"model {model} has an unreadable feature set ({e}): {RETRAIN_HINT}") from e
    if fs.version != current.version or fs.fingerprint != current.fingerprint:
        what = ("feature definitions changed" if fs.fingerprint == current.fingerprint
                else "feature names changed")
        raise FeatureSetMismatchError(
            f"model {model} was trained on feature set {fs}, this code computes feature set "
            f"{current} ({what}): {RETRAIN_HINT}")
    return fs
