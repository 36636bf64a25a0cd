"""`ScoredTestSet`: one world's test applications, their ground truth and every model's scores.

What :func:`gnn.train.risk_evaluation.evaluate_world` scored, kept per application so that metrics
can be recomputed on resamples and on any subset (pattern, product) later, and across worlds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ScoredTestSet:
    """Per test application: ground truth and scores.

    Args:
        application_id (np.ndarray): str ``[n]``.
        fraud (np.ndarray): bool ``[n]``, ground truth.
        pattern (np.ndarray): str ``[n]``, the planted pattern of a fraud application, ``""``
            for an honest one.
        product (np.ndarray): str ``[n]``.
        funded (np.ndarray): bool ``[n]``, the loan was funded (default is judged on these).
        default (np.ndarray): bool ``[n]``, ground truth.
        fraud_scores (Mapping[str, np.ndarray]): model -> fraud score ``[n]`` (any scale that
            ranks: rules count what fired).
        pd_scores (Mapping[str, np.ndarray]): model -> probability of default ``[n]``, for the
            models that give one.
    """

    application_id: np.ndarray
    fraud: np.ndarray
    pattern: np.ndarray
    product: np.ndarray
    funded: np.ndarray
    default: np.ndarray
    fraud_scores: Mapping[str, np.ndarray]
    pd_scores: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        n = len(self)
        for name in ("fraud", "pattern", "product", "funded", "default"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got "
                                 f"{getattr(self, name).shape}")
        for kind in ("fraud_scores", "pd_scores"):
            for model, s in getattr(self, kind).items():
                if np.shape(s) != (n,):
                    raise ValueError(f"{kind}[{model!r}] must have shape ({n},), got "
                                     f"{np.shape(s)}")

    def __len__(self) -> int:
        return int(self.application_id.shape[0])

    def to_json(self) -> dict[str, Any]:
        """JSON-ready lists (floats round-trip exactly; the model order is kept in lists, as
        JSON writers may sort keys)."""
        return {
            "fraud_models": list(self.fraud_scores),
            "pd_models": list(self.pd_scores),
            "application_id": self.application_id.tolist(),
            "fraud": self.fraud.astype(int).tolist(),
            "pattern": self.pattern.tolist(),
            "product": self.product.tolist(),
            "funded": self.funded.astype(int).tolist(),
            "default": self.default.astype(int).tolist(),
            "fraud_scores": {m: np.asarray(s, np.float64).tolist()
                             for m, s in self.fraud_scores.items()},
            "pd_scores": {m: np.asarray(s, np.float64).tolist()
                          for m, s in self.pd_scores.items()},
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> ScoredTestSet:
        """The inverse of :meth:`to_json`."""
        return cls(
            application_id=np.asarray(value["application_id"], dtype=object),
            fraud=np.asarray(value["fraud"], dtype=bool),
            pattern=np.asarray(value["pattern"], dtype=object),
            product=np.asarray(value["product"], dtype=object),
            funded=np.asarray(value["funded"], dtype=bool),
            default=np.asarray(value["default"], dtype=bool),
            fraud_scores={m: np.asarray(value["fraud_scores"][m], np.float64)
                          for m in value.get("fraud_models", value["fraud_scores"])},
            pd_scores={m: np.asarray(value["pd_scores"][m], np.float64)
                       for m in value.get("pd_models", value["pd_scores"])},
        )
