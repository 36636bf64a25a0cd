"""When fraud and default become known: the label timeline.

Fraud applications are confirmed by investigators days to weeks after the fact (victims of
account takeover complain sooner); a configurable share is never found, and some of those are
even reviewed and cleared by mistake. A fraudster's account is labelled with its first confirmed
application; a colluding or inflating merchant some weeks after its first confirmed case. The
ledger marks defaults 30 days after the first missed instalment. A label is never visible before
the event it is about.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator._builder import ACCOMPLICE, DAY, FRAUDSTER, PATTERN_CODE, WorldBuilder
from simulator.credit_default import LoanOutcomes

ENTITY_TYPES = ("User", "Application", "Merchant")
USER, APPLICATION, MERCHANT = range(3)
KINDS = ("fraud", "cleared", "default")
FRAUD, CLEARED, DEFAULT = range(3)
SOURCES = ("investigator", "customer_report", "ledger")
INVESTIGATOR, CUSTOMER_REPORT, LEDGER = range(3)


@dataclass(frozen=True)
class LabelTimeline:
    """Every label event, and per entity when its fraud / default label becomes visible.

    Args:
        entity_type, entity, kind, visible_at, source (np.ndarray): one row per label event
            (codes index :data:`ENTITY_TYPES`, :data:`KINDS`, :data:`SOURCES`).
        app_fraud_at, app_cleared_at (np.ndarray): per application, ``-1`` for never.
        user_fraud_at, user_default_at (np.ndarray): per user, ``-1`` for never.
        merchant_fraud_at (np.ndarray): per merchant, ``-1`` for never.
    """

    entity_type: np.ndarray
    entity: np.ndarray
    kind: np.ndarray
    visible_at: np.ndarray
    source: np.ndarray
    app_fraud_at: np.ndarray
    app_cleared_at: np.ndarray
    user_fraud_at: np.ndarray
    user_default_at: np.ndarray
    merchant_fraud_at: np.ndarray


def _min_by(key: np.ndarray, value: np.ndarray, n: int) -> np.ndarray:
    """Smallest non-negative ``value`` per ``key`` (``-1`` where none)."""
    out = np.full(n, np.iinfo(np.int64).max)
    ok = value >= 0
    np.minimum.at(out, key[ok], value[ok])
    return np.where(out == np.iinfo(np.int64).max, -1, out)


def assign_labels(b: WorldBuilder, rng: np.random.Generator,
                  loans: LoanOutcomes) -> LabelTimeline:
    """Draw the label timeline of the world.

    Args:
        b (WorldBuilder): the finished world.
        rng (np.random.Generator): random source of this stage.
        loans (LoanOutcomes): funding and default per application.
    """
    lc = b.config.labels
    apps = b.applications.frame()
    users = b.users.frame()
    n_apps, n_users, n_merch = len(apps["ts"]), len(users["role"]), len(b.merchants)
    ts = apps["ts"]
    fraud = apps["pattern"] > 0
    ato = apps["pattern"] == PATTERN_CODE["account_takeover"]

    def delay(median: float | np.ndarray, k: int) -> np.ndarray:
        d = np.asarray(median) * np.exp(lc.delay_sigma * rng.standard_normal(k))
        return np.asarray(np.clip(d, lc.delay_min_days, lc.delay_max_days) * DAY, dtype=np.int64)

    labelled = fraud & (rng.random(n_apps) >= lc.unlabelled_fraud_share)
    median = np.where(ato, lc.ato_delay_median_days, lc.delay_median_days)
    app_fraud_at = np.where(labelled, ts + delay(median, n_apps), -1)

    reviewed = ~fraud & (rng.random(n_apps) < lc.cleared_share)
    wrongly = fraud & ~labelled & (rng.random(n_apps) < lc.wrongly_cleared_share)
    cleared = reviewed | wrongly
    app_cleared_at = np.where(cleared, ts + delay(lc.delay_median_days, n_apps), -1)

    # Accounts: fraudsters and accomplices with their first confirmed application; accounts
    # of a group that filed nothing themselves (fake buyers) once their group is confirmed.
    bad_user = np.isin(users["role"], (FRAUDSTER, ACCOMPLICE))
    user_fraud_at = _min_by(apps["user"], np.where(fraud, app_fraud_at, -1), n_users)
    user_fraud_at[~bad_user] = -1
    group = apps["group"]
    n_groups = int(max(group.max(initial=-1), users["group"].max(initial=-1))) + 1
    group_at = _min_by(np.maximum(group, 0), np.where(group >= 0, app_fraud_at, -1), n_groups)
    silent = bad_user & (user_fraud_at < 0) & (users["group"] >= 0)
    silent &= ~np.isin(np.arange(n_users), apps["user"][fraud])
    g_at = group_at[np.maximum(users["group"], 0)]
    found = silent & (g_at >= 0) & (rng.random(n_users) >= lc.unlabelled_fraud_share)
    user_fraud_at[found] = g_at[found] + delay(lc.delay_median_days, n_users)[found]

    m = b.merchants.frame()
    bad_merchant = m["pattern"] > 0
    m_at = group_at[np.maximum(m["group"], 0)]
    merchant_fraud_at = np.where(bad_merchant & (m_at >= 0),
                                 m_at + (lc.merchant_extra_days * DAY
                                         * rng.uniform(0.5, 1.5, n_merch)).astype(np.int64), -1)

    user_default_at = _min_by(apps["user"], np.where(loans.default, loans.default_visible_at, -1),
                              n_users)

    rows = [
        (APPLICATION, np.flatnonzero(app_fraud_at >= 0), FRAUD,
         app_fraud_at[app_fraud_at >= 0], np.where(ato[app_fraud_at >= 0], CUSTOMER_REPORT,
                                                   INVESTIGATOR)),
        (USER, np.flatnonzero(user_fraud_at >= 0), FRAUD, user_fraud_at[user_fraud_at >= 0],
         INVESTIGATOR),
        (MERCHANT, np.flatnonzero(merchant_fraud_at >= 0), FRAUD,
         merchant_fraud_at[merchant_fraud_at >= 0], INVESTIGATOR),
        (APPLICATION, np.flatnonzero(cleared), CLEARED, app_cleared_at[cleared], INVESTIGATOR),
        (APPLICATION, np.flatnonzero(loans.default), DEFAULT,
         loans.default_visible_at[loans.default], LEDGER),
        (USER, np.flatnonzero(user_default_at >= 0), DEFAULT,
         user_default_at[user_default_at >= 0], LEDGER),
    ]
    cols = [np.concatenate([np.broadcast_to(np.asarray(r[i]), r[1].shape) for r in rows])
            for i in range(5)]
    return LabelTimeline(
        entity_type=cols[0].astype(np.int8), entity=cols[1].astype(np.int64),
        kind=cols[2].astype(np.int8), visible_at=cols[3].astype(np.int64),
        source=cols[4].astype(np.int8), app_fraud_at=app_fraud_at,
        app_cleared_at=app_cleared_at, user_fraud_at=user_fraud_at,
        user_default_at=user_default_at, merchant_fraud_at=merchant_fraud_at)
