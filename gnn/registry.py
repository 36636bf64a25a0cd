"""`ModelRegistry`: trained pipelines as versioned directories, one of them promoted.

Layout under the registry root (``DATA_DIR/models`` in the service)::

    <version>/weights.pt       model state_dict (torch.save)
    <version>/pipeline.json    config, feature names, normalisation, calibration
    <version>/metrics.json     validation metrics, training history, timings
    <version>/manifest.json    version, creation time, sha256 of the training data and of
                               the three files above, the feature set, split, training
                               config, source, the promotion gate's validation figures
    PROMOTED                   the promoted version (replaced atomically)

A version directory is written under a temporary name and renamed when complete, so a reader
never sees half a model; loading checks the file hashes against the manifest and the model's
feature set against the one this code computes (:mod:`gnn.features.feature_set`): a model trained on
other features is refused when it loads, never when it scores.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import torch

from gnn.errors import ModelError
from gnn.features.feature_set import (
    FeatureSetMismatchError,
    check_feature_set,
    pipeline_feature_set,
)
from gnn.pipeline import ScoringPipeline

PROMOTED_FILE: Final = "PROMOTED"
CHALLENGER_FILE: Final = "CHALLENGER"
"""The version the service scores every request with beside the champion (off the latency
path), or absent."""
HISTORY_FILE: Final = "promotions.jsonl"
"""One JSON line per promotion, rollback and challenger change: what :meth:`ModelRegistry.rollback`
walks back through."""
_VERSION: Final = re.compile(r"^gnn-\d{8}-\d{6}-[0-9a-f]{8}(-\d+)?$")


class RegistryError(ModelError):
    """The registry is unusable or a model in it is damaged."""


class ModelNotFoundError(RegistryError):
    """No model with that version (or none promoted)."""


@dataclass(frozen=True)
class ModelInfo:
    """One registered model, as listed.

    Args:
        version (str): the version (directory name).
        created_at (str): ISO time of saving, UTC.
        promoted (bool): whether it is the promoted one.
        data_sha256 (str): fingerprint of the training data.
        metrics (Mapping[str, Any]): its validation metrics.
        refused (str, optional): why this code refuses to load it (its feature set), or
            ``None`` when it loads. (default: ``None``)
    """

    version: str
    created_at: str
    promoted: bool
    data_sha256: str
    metrics: Mapping[str, Any]
    refused: str | None = None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


class ModelRegistry:
    """Versioned model directories under ``root``.

    Args:
        root (str or os.PathLike): the registry directory (created on first save).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({str(self.root)!r})"

    # -- writing ------------------------------------------------------------------------------------
    def save(
        self,
        pipeline: ScoringPipeline,
        *,
        data_sha256: str,
        metrics: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Store ``pipeline`` as a new version and return it (the pipeline gets the version).

        Args:
            pipeline (ScoringPipeline): the trained, calibrated pipeline.
            data_sha256 (str): fingerprint of the training data
                (:attr:`gnn.data.lending_graph.LendingGraph.fingerprint`).
            metrics (Mapping[str, Any], optional): validation metrics, history, timings.
            extra (Mapping[str, Any], optional): more manifest fields (split, configs, source,
                the promotion gate's figures).

        Raises:
            FeatureSetMismatchError: if the pipeline's features are not this code's.
        """
        feature_set = pipeline_feature_set(pipeline.root_feature_names)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".saving-", dir=self.root))
        try:
            torch.save(pipeline.model.state_dict(), tmp / "weights.pt")
            weights_sha = _sha256(tmp / "weights.pt")
            version = time.strftime("gnn-%Y%m%d-%H%M%S-", time.gmtime()) + weights_sha[:8]
            pipeline.version = version
            _write_json(tmp / "pipeline.json", pipeline.state())
            _write_json(tmp / "metrics.json", dict(metrics or {}))
            manifest = {
                "version": version,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "data_sha256": data_sha256,
                "files": {name: _sha256(tmp / name) for name in
                          ("weights.pt", "pipeline.json", "metrics.json")},
                "model": repr(pipeline.model),
                **dict(extra or {}),
                "feature_set": feature_set.to_dict(),
            }
            final = self.root / version
            n = 1
            while final.exists():
                # NOTE: the same weights registered twice in one second (a retrain with the
                # same seed) are two registrations: the second gets a suffix.
                n += 1
                version = f"{manifest['version']}-{n}"
                final = self.root / version
            manifest["version"] = version
            pipeline.version = version
            _write_json(tmp / "pipeline.json", pipeline.state())
            manifest["files"]["pipeline.json"] = _sha256(tmp / "pipeline.json")
            _write_json(tmp / "manifest.json", manifest)
            os.rename(tmp, final)
        except BaseException:
            for p in tmp.glob("*"):
                p.unlink()
            tmp.rmdir()
            raise
        return version

    def promote(self, version: str) -> None:
        """Make ``version`` the one the service loads.

        Raises:
            ModelNotFoundError: if it is not registered.
            FeatureSetMismatchError: if this code would refuse to load it.
        """
        self.check(version)
        previous = self.promoted()
        self._point(PROMOTED_FILE, version)
        self._record({"action": "promote", "version": version, "previous": previous})
        if self.challenger() == version:
            # NOTE: a challenger promoted is the champion now, not its own challenger.
            self.set_challenger(None)

    def rollback(self) -> tuple[str, str]:
        """Make the champion the one promoted before the current one (each call walks one
        promotion further back).

        A challenger that is the version rolled back to stops being the challenger.

        Returns:
            tuple[str, str]: the version rolled back from and the one now promoted.

        Raises:
            ModelNotFoundError: if nothing is promoted, or the current champion's promotion has
                no predecessor in the history.
            FeatureSetMismatchError: if this code would refuse to load the previous one.
        """
        current = self.promoted()
        if current is None:
            raise ModelNotFoundError(f"no model is promoted in {self.root}: nothing to roll "
                                     "back")
        promotions = [h for h in self.history() if h.get("action") == "promote"
                      and h.get("version") == current]
        previous = promotions[-1].get("previous") if promotions else None
        if previous is None:
            raise ModelNotFoundError(f"{current} was the first model promoted in {self.root}: "
                                     "there is no earlier champion to roll back to")
        self.check(previous)
        self._point(PROMOTED_FILE, previous)
        self._record({"action": "rollback", "version": previous, "previous": current})
        if self.challenger() == previous:
            # NOTE: the champion is never its own challenger.
            self.set_challenger(None)
        return current, previous

    def set_challenger(self, version: str | None) -> None:
        """Score every request with ``version`` beside the champion (``None``: no challenger).

        Raises:
            ModelNotFoundError: if it is not registered.
            FeatureSetMismatchError: if this code would refuse to load it.
            RegistryError: if it is the promoted model.
        """
        if version is None:
            (self.root / CHALLENGER_FILE).unlink(missing_ok=True)
            self._record({"action": "challenger", "version": None})
            return
        self.check(version)
        if version == self.promoted():
            raise RegistryError(f"{version} is the champion; a challenger is another model")
        self._point(CHALLENGER_FILE, version)
        self._record({"action": "challenger", "version": version})

    def challenger(self) -> str | None:
        """The challenger's version, or ``None``."""
        path = self.root / CHALLENGER_FILE
        if not path.exists():
            return None
        return path.read_text().strip() or None

    def history(self) -> list[dict[str, Any]]:
        """The promotions, rollbacks and challenger changes, oldest first."""
        path = self.root / HISTORY_FILE
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def _point(self, name: str, version: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{name}.tmp"
        tmp.write_text(version + "\n")
        os.replace(tmp, self.root / name)

    def _record(self, entry: dict[str, Any]) -> None:
        line = json.dumps({**entry, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        with (self.root / HISTORY_FILE).open("a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    # -- reading ------------------------------------------------------------------------------------
    def promoted(self) -> str | None:
        """The promoted version, or ``None``."""
        path = self.root / PROMOTED_FILE
        if not path.exists():
            return None
        return path.read_text().strip() or None

    def versions(self) -> list[str]:
        """Every registered version, oldest first."""
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and _VERSION.match(p.name) and (p / "manifest.json").exists())

    def list(self) -> list[ModelInfo]:
        """Every registered model with its headline numbers, oldest first."""
        promoted = self.promoted()
        out = []
        for v in self.versions():
            m = self.show(v)
            try:
                check_feature_set(m["manifest"].get("feature_set"), model=v)
                refused = None
            except FeatureSetMismatchError as e:
                refused = str(e)
            out.append(ModelInfo(v, m["manifest"]["created_at"], v == promoted,
                                 m["manifest"]["data_sha256"], m["metrics"], refused))
        return out

    def show(self, version: str) -> dict[str, Any]:
        """Manifest and metrics of one version.

        Raises:
            ModelNotFoundError: if it is not registered.
        """
        d = self._dir(version)
        return {"manifest": json.loads((d / "manifest.json").read_text()),
                "metrics": json.loads((d / "metrics.json").read_text()),
                "promoted": version == self.promoted()}

    def check(self, version: str | None = None) -> str:
        """Whether this code can load a version (default: the promoted one), without loading
        it: the checks :meth:`load` makes before reading the weights.

        Returns:
            str: the version checked.

        Raises:
            ModelNotFoundError: if it (or a promoted one) does not exist.
            FeatureSetMismatchError: if it was trained on another feature set, or on an
                unversioned one (a model registered before feature sets were versioned).
        """
        if version is None:
            version = self.promoted()
            if version is None:
                raise ModelNotFoundError(f"no model is promoted in {self.root}")
        check_feature_set(self.manifest(version).get("feature_set"), model=version)
        return version

    def load(self, version: str | None = None) -> ScoringPipeline:
        """Load a version, by default the promoted one, after checking its feature set and
        its file hashes.

        Raises:
            ModelNotFoundError: if it (or a promoted one) does not exist.
            FeatureSetMismatchError: if it was trained on another feature set (or an
                unversioned one): the message says to retrain.
            RegistryError: if a file does not match its manifest hash.
        """
        version = self.check(version)
        d = self._dir(version)
        manifest = json.loads((d / "manifest.json").read_text())
        for name, sha in manifest["files"].items():
            if _sha256(d / name) != sha:
                raise RegistryError(f"{d / name} does not match its manifest hash")
        state = json.loads((d / "pipeline.json").read_text())
        weights = torch.load(d / "weights.pt", map_location="cpu", weights_only=True)
        pipe = ScoringPipeline.from_state(state, weights)
        pipe.version = version
        return pipe

    def write_extra(self, version: str, name: str, value: Any) -> None:
        """Keep a JSON file beside a model (monitoring data such as its drift reference: not
        part of what :meth:`load` checks).

        Raises:
            ModelNotFoundError: if the version is not registered.
            ValueError: if ``name`` is not a plain ``*.json`` file name.
        """
        if not re.fullmatch(r"[a-z_]+\.json", name) or name in ("manifest.json",
                                                                 "pipeline.json",
                                                                 "metrics.json"):
            raise ValueError(f"name must be a new plain *.json file name, got {name!r}")
        _write_json(self._dir(version) / name, value)

    def read_extra(self, version: str, name: str) -> Any | None:
        """A JSON file kept beside a model by :meth:`write_extra`, or ``None``.

        Raises:
            ModelNotFoundError: if the version is not registered.
        """
        path = self._dir(version) / name
        return json.loads(path.read_text()) if path.exists() else None

    def manifest(self, version: str) -> dict[str, Any]:
        """The manifest of one version."""
        return dict(json.loads((self._dir(version) / "manifest.json").read_text()))

    def _dir(self, version: str) -> Path:
        if not _VERSION.match(version):
            raise ModelNotFoundError(f"{version!r} is not a model version")
        d = self.root / version
        if not (d / "manifest.json").exists():
            raise ModelNotFoundError(f"no model {version} in {self.root}")
        return d
