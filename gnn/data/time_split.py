"""`TimeSplit`: train before T1, choose on T1–T2, test after T2 — with labels as known at T2.

The model is built at ``T2``: every label it sees, as a training target, a validation target or
a feature, became visible strictly before ``T2`` (features of an event at ``t`` only use labels
visible before ``t``). Test applications (``ts >= T2``) are judged against the ground truth,
which no part of training reads.

Labels arrive late (fraud is confirmed days to weeks after the application). An application of
the last days before ``T2`` would count as honest only because its label is not in yet, so the
model is *chosen* (early stopping, calibration) on the validation applications older than
``label_maturity_days`` at ``T2`` — an embargo, as in time-series cross-validation; the newest
ones are neither trained nor chosen on.

Default needs longer to show: a loan defaults months after it is funded. The default head
therefore trains and calibrates on *mature* funded applications only, those older than
``pd_maturity_days`` at ``T2``: the last ``T2 - T1`` of them calibrate, the earlier ones train.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gnn.errors import GraphDataError
from gnn.data.lending_graph import LendingGraph

DAY = 86_400


@dataclass(frozen=True)
class TimeSplit:
    """Split times, epoch seconds.

    Args:
        t1 (int): training applications are before ``t1``.
        t2 (int): validation applications are in ``[t1, t2)``, test ones from ``t2``; labels
            count only when visible before ``t2``.
        pd_maturity_days (int, optional): a loan is mature for the default target once this
            old at ``t2``. (default: ``75``)
        label_maturity_days (int, optional): validation applications younger than this at
            ``t2`` are left out of model choice. (default: ``14``)
    """

    t1: int
    t2: int
    pd_maturity_days: int = 75
    label_maturity_days: int = 14

    def __post_init__(self) -> None:
        if not self.t1 < self.t2:
            raise ValueError(f"t1 must be before t2, got {self.t1} and {self.t2}")
        if self.pd_maturity_days < 0:
            raise ValueError(f"pd_maturity_days must be >= 0, got {self.pd_maturity_days}")
        if not 0 <= self.label_maturity_days * DAY < self.t2 - self.t1:
            raise ValueError(f"label_maturity_days must be >= 0 and shorter than T2 - T1, got "
                             f"{self.label_maturity_days}")

    @property
    def label_cutoff(self) -> int:
        """Labels visible strictly before this time are known to the model."""
        return self.t2

    @property
    def val_mature_before(self) -> int:
        """Validation applications before this time are used to choose the model."""
        return self.t2 - self.label_maturity_days * DAY

    @property
    def pd_mature_before(self) -> int:
        return self.t2 - self.pd_maturity_days * DAY

    @property
    def pd_val_start(self) -> int:
        return self.pd_mature_before - (self.t2 - self.t1)

    @classmethod
    def from_fractions(cls, graph: LendingGraph, train: float = 0.6, val: float = 0.2,
                       pd_maturity_days: int = 75, label_maturity_days: int = 14) -> TimeSplit:
        """Cut the span of application times at ``train`` and ``train + val``.

        Raises:
            ValueError: on fractions outside (0, 1) or summing to 1 or more.
            GraphDataError: if the graph has no applications.
        """
        if not (0 < train < 1 and 0 < val < 1 and train + val < 1):
            raise ValueError(f"train and val must be in (0, 1) with train + val < 1, got "
                             f"{train}, {val}")
        ts = graph.attrs["Application"]["ts"]
        if ts.size == 0:
            raise GraphDataError("the graph has no applications to split")
        lo, hi = int(ts.min()), int(ts.max()) + 1
        t1 = lo + int((hi - lo) * train)
        t2 = lo + int((hi - lo) * (train + val))
        return cls((t1 // 3600) * 3600, (t2 // 3600) * 3600, pd_maturity_days,
                   label_maturity_days)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ApplicationTargets:
    """Per application (graph position): split membership and targets known at ``t2``.

    Args:
        train, val, test (np.ndarray): bool masks by application time.
        val_choose (np.ndarray): the validation applications old enough at ``t2`` for their
            labels to have arrived: the model is chosen and calibrated on these.
        fraud (np.ndarray): float32, 1 when a fraud label on the application was visible
            before ``t2``, else 0 (unlabelled counts as honest, as in production). A label on
            the *account* is a feature, not a target: a fraud-run account also files
            applications that are not themselves fraudulent.
        pd (np.ndarray): float32, 1 when a default label was visible before ``t2``.
        pd_train, pd_val (np.ndarray): bool masks of mature funded applications.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    val_choose: np.ndarray
    fraud: np.ndarray
    pd: np.ndarray
    pd_train: np.ndarray
    pd_val: np.ndarray


def application_targets(graph: LendingGraph, split: TimeSplit) -> ApplicationTargets:
    """Targets and masks of every application of ``graph`` under ``split``.

    Only labels visible strictly before ``split.t2`` are read, so moving, adding or removing
    any later label leaves the result unchanged (tests/gnn/test_time_split.py).
    """
    a = graph.attrs["Application"]
    ts = a["ts"]
    cut = split.label_cutoff
    fraud = graph.fraud_at["Application"] < cut
    pd = graph.default_at["Application"] < cut
    rep = graph.events["repayments"]
    funded = np.zeros(ts.shape[0], dtype=bool)
    funded[rep["application"][rep["ts"] < cut]] = True
    mature = funded & (ts < split.pd_mature_before)
    return ApplicationTargets(
        train=ts < split.t1, val=(ts >= split.t1) & (ts < split.t2), test=ts >= split.t2,
        val_choose=(ts >= split.t1) & (ts < split.val_mature_before),
        fraud=fraud.astype(np.float32), pd=pd.astype(np.float32),
        pd_train=mature & (ts < split.pd_val_start),
        pd_val=mature & (ts >= split.pd_val_start),
    )
