"""`ApplicationHistory`: the applications a store holds and what became of them.

Read through the :class:`graph.GraphStore` interface the service uses (``export_nodes`` /
``export_edges``), so both stores give the same history. Per application: its product, amount
and time; the applicant's tenure at that time and home province (:func:`graph.province_of`,
from the declared city, never the coordinates); and the loan's outcome:

* **funded**: the store holds a repayment of it (``REPAID``), as training defines it
  (:func:`gnn.application_targets`): only the incumbent's funded loans have an outcome;
* **mature**: it is at least ``maturity_days`` old at ``as_of``: its outcome is known. A loan
  defaults months after it is funded, so a younger loan without a default may still default;
  younger loans are left out of every realised number (the defaults already seen on them are
  counted apart, :attr:`ApplicationHistory.early_default`);
* **defaulted**: the application carries a default label set at or before ``as_of``;
* **repaid**: the sum of its on-time and late repayments (what came back before the default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa

from graph import GraphStore, province_of

DAY: Final = 86_400
THIN_FILE_DAYS: Final = 30
"""Tenure below which the fairness report counts an applicant thin-file (issue 17); the
policy's own thin-file rule (``[thin_file]`` of policy.toml) is reported beside it."""
_PAID: Final = ("on_time", "late")


@dataclass(frozen=True)
class ApplicationHistory:
    """Applications in id order, one array entry each.

    Args:
        application_id (np.ndarray): object ids, sorted.
        product (np.ndarray): object, the product applied for.
        amount (np.ndarray): float64, the amount applied for.
        ts (np.ndarray): int64 application times.
        user_id (np.ndarray): object, the applicant (``""`` when unknown).
        tenure_days (np.ndarray): float64 days from the applicant's sign-up to the
            application (NaN when the store has no sign-up time).
        province (np.ndarray): object, the applicant's home province.
        funded (np.ndarray): bool, the store holds a repayment of the loan.
        mature (np.ndarray): bool, old enough at ``as_of`` for its outcome to be known.
        defaulted (np.ndarray): bool, a default label known at ``as_of``.
        repaid (np.ndarray): float64, on-time and late repayments of the loan.
        as_of (int): the time the history is read at, epoch seconds.
        maturity_days (int): the age from which an outcome is known.
    """

    application_id: np.ndarray
    product: np.ndarray
    amount: np.ndarray
    ts: np.ndarray
    user_id: np.ndarray
    tenure_days: np.ndarray
    province: np.ndarray
    funded: np.ndarray
    mature: np.ndarray
    defaulted: np.ndarray
    repaid: np.ndarray
    as_of: int
    maturity_days: int

    def __len__(self) -> int:
        return int(self.application_id.shape[0])

    @property
    def known(self) -> np.ndarray:
        """bool, the loan was funded and its outcome is known (mature)."""
        return np.asarray(self.funded & self.mature)

    @property
    def early_default(self) -> np.ndarray:
        """bool, funded loans that defaulted before they were mature (not in realised
        numbers: counting them without the younger loans that did not default yet would
        raise every default rate)."""
        return np.asarray(self.funded & ~self.mature & self.defaulted)

    @property
    def thin_file(self) -> np.ndarray:
        """bool, tenure below :data:`THIN_FILE_DAYS` at the application (unknown counts)."""
        return np.asarray(~(self.tenure_days >= THIN_FILE_DAYS))

    def loss(self) -> np.ndarray:
        """float64, what a defaulted loan lost: its amount less what was repaid (0 for the
        others)."""
        return np.where(self.defaulted, np.maximum(self.amount - self.repaid, 0.0), 0.0)

    def select(self, keep: np.ndarray) -> ApplicationHistory:
        """The applications where ``keep`` (bool) holds."""
        keep = np.asarray(keep, dtype=bool)
        return ApplicationHistory(
            self.application_id[keep], self.product[keep], self.amount[keep], self.ts[keep],
            self.user_id[keep], self.tenure_days[keep], self.province[keep], self.funded[keep],
            self.mature[keep], self.defaulted[keep], self.repaid[keep], self.as_of,
            self.maturity_days)


def load_history(store: GraphStore, *, maturity_days: int, as_of: int | None = None
                 ) -> ApplicationHistory:
    """Every application of ``store`` with its applicant and outcome (module docstring).

    Args:
        store (GraphStore): the configured store.
        maturity_days (int): the age from which a funded loan's outcome is known.
        as_of (int, optional): read the outcomes as known at this time, epoch seconds.
            (default: the latest application or repayment)

    Raises:
        ValueError: if ``maturity_days`` is negative.
    """
    if maturity_days < 0:
        raise ValueError(f"maturity_days must be >= 0, got {maturity_days}")
    apps = store.export_nodes("Application").sort_by("id")
    ids = _strings(apps, "id")
    n = len(ids)
    ts = _ints(apps, "ts")
    repaid_edges = store.export_edges("REPAID")
    rep_ts = _ints(repaid_edges, "ts")
    if as_of is None:
        as_of = int(max(ts.max(initial=0), rep_ts.max(initial=0)))

    index = {a: i for i, a in enumerate(ids.tolist())}
    rep_app = np.fromiter((index.get(a, -1) for a in _strings(repaid_edges, "dst").tolist()),
                          np.int64, repaid_edges.num_rows)
    seen = (rep_app >= 0) & (rep_ts <= as_of)
    funded = np.zeros(n, bool)
    funded[rep_app[seen]] = True
    paid = seen & np.isin(_strings(repaid_edges, "status"), _PAID)
    repaid = np.bincount(rep_app[paid], weights=_floats(repaid_edges, "amount")[paid],
                         minlength=n).astype(np.float64)

    applied = store.export_edges("APPLIED")
    applicant = np.full(n, "", dtype=object)
    for user, app in zip(_strings(applied, "src").tolist(), _strings(applied, "dst").tolist(),
                         strict=True):
        i = index.get(app)
        if i is not None:
            applicant[i] = user
    users = store.export_nodes("User")
    created = dict(zip(_strings(users, "id").tolist(), _floats(users, "created_at").tolist(),
                       strict=True))
    city = dict(zip(_strings(users, "id").tolist(), users.column("home_city").to_pylist(),
                    strict=True))
    signed_up = np.asarray([created.get(u, np.nan) for u in applicant.tolist()], np.float64)

    default_at = _floats(apps, "default_label_at")
    defaulted = (np.asarray(apps.column("default_label").fill_null(False).to_numpy(
        zero_copy_only=False), dtype=bool) & ~(default_at > as_of))
    return ApplicationHistory(
        application_id=ids, product=_strings(apps, "product"), amount=_floats(apps, "amount"),
        ts=ts, user_id=applicant, tenure_days=(ts - signed_up) / DAY,
        province=np.asarray([province_of(city.get(u)) for u in applicant.tolist()], object),
        funded=funded, mature=ts <= as_of - maturity_days * DAY, defaulted=defaulted,
        repaid=repaid, as_of=as_of, maturity_days=maturity_days)


def _strings(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).fill_null("").to_pylist(), dtype=object)


def _ints(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).fill_null(0).to_numpy(), dtype=np.int64)


def _floats(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).cast(pa.float64()).fill_null(np.nan).to_numpy(),
                      dtype=np.float64)
