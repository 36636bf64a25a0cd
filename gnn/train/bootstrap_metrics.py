"""Metrics of scored binary outcomes, computed at once for many bootstrap resamples.

A bootstrap resample of ``n`` items is a vector of counts (how often each item was drawn), so a
metric of the resample is the metric of the original items weighted by those counts. The
metrics here take a ``[B, n]`` matrix of such weights and sort the scores once for all ``B``
resamples; with no weights they are the plain metrics of the ``n`` items. They agree with
scikit-learn's ``roc_auc_score``, ``average_precision_score`` (ties grouped by distinct score)
and ``roc_curve(drop_intermediate=False)`` given the same ``sample_weight``.

:func:`stratified_resamples` draws the weights: positives and negatives are resampled apart,
so every resample keeps the class counts of the original and every metric stays defined.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

MAX_FPR = 0.01
"""The false-positive rate of ``recall_at_1pct_fpr``."""

RANKING_METRICS = ("auroc", "auprc", "recall_at_1pct_fpr")
PROBABILITY_METRICS = ("auroc", "brier", "predicted_over_observed", "ece")
CALIBRATION_BINS = 10


def _weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    if weights is None:
        return np.ones((1, n))
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = w[None, :]
    if w.ndim != 2 or w.shape[1] != n:
        raise ValueError(f"weights must have shape [B, {n}], got {np.shape(weights)}")
    if (w < 0).any():
        raise ValueError("weights must be non-negative")
    return w


def _check(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    score = np.asarray(score, dtype=np.float64)
    if y.ndim != 1 or score.shape != y.shape:
        raise ValueError(f"y and score must be 1-d of one length, got {y.shape} and "
                         f"{score.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y must hold 0/1 (or bool) labels")
    if np.isnan(score).any():
        raise ValueError("score holds NaN")
    return y.astype(bool), score


def ranking_metrics(y: np.ndarray, score: np.ndarray, weights: np.ndarray | None = None
                    ) -> dict[str, np.ndarray]:
    """AUROC, AUPRC (average precision) and recall at 1 % FPR, per row of ``weights``.

    Args:
        y (np.ndarray): 0/1 labels ``[n]``.
        score (np.ndarray): scores ``[n]``, higher meaning more likely positive.
        weights (np.ndarray, optional): ``[B, n]`` (or ``[n]``) non-negative weights, e.g.
            bootstrap counts. (default: one row of ones)

    Returns:
        dict[str, np.ndarray]: each of :data:`RANKING_METRICS` as ``[B]``; NaN in a row whose
        weighted positives or negatives are zero.

    Raises:
        ValueError: on labels other than 0/1, NaN scores or weights of the wrong shape.
    """
    y, score = _check(y, score)
    w = _weights(weights, y.shape[0])
    b = w.shape[0]
    if y.shape[0] == 0:
        nan = np.full(b, np.nan)
        return {k: nan.copy() for k in RANKING_METRICS}
    order = np.argsort(-score, kind="stable")
    s = score[order]
    wo = w[:, order]
    # NOTE: the curve has one point per distinct score, after the last item of each tie
    # group: tied items move together, as in scikit-learn's _binary_clf_curve. Only the
    # cumulative weights need the whole [B, n] matrix; everything else is read at the few
    # groups that hold positives.
    new_group = s[1:] != s[:-1]
    ends = np.flatnonzero(np.r_[new_group, True])
    group = np.r_[0, np.cumsum(new_group)]
    positives = np.flatnonzero(y[order])
    seen = np.cumsum(wo, axis=1)[:, ends]
    pos_cum = np.concatenate([np.zeros((b, 1)), np.cumsum(wo[:, positives], axis=1)], axis=1)
    tps = pos_cum[:, np.searchsorted(positives, ends, side="right")]
    fps = seen - tps
    pos = tps[:, -1]
    neg = fps[:, -1]
    valid = (pos > 0) & (neg > 0)
    hit = np.unique(group[positives])
    before = hit - 1
    zero = np.zeros((b, 1))

    def prev(a: np.ndarray) -> np.ndarray:
        return np.where(before >= 0, a[:, np.maximum(before, 0)], zero)

    gained = tps[:, hit] - prev(tps)
    ties = fps[:, hit] - prev(fps)
    with np.errstate(divide="ignore", invalid="ignore"):
        # a positive beats every negative scored below it and half of those tied with it
        auroc = np.sum(gained * (neg[:, None] - fps[:, hit] + ties / 2), axis=1) / (pos * neg)
        auprc = np.sum(gained * tps[:, hit] / np.where(seen[:, hit] > 0, seen[:, hit], 1.0),
                       axis=1) / pos
        # fps never decreases along the curve: the best recall within the FPR budget is the
        # recall at the last point inside it, or 0 (the curve's origin) if none is
        inside = np.sum(fps / neg[:, None] <= MAX_FPR, axis=1)
        recall = np.where(inside > 0, tps[np.arange(b), np.maximum(inside - 1, 0)], 0.0) / pos
    out = {"auroc": auroc, "auprc": auprc, "recall_at_1pct_fpr": recall}
    return {k: np.where(valid, v, np.nan) for k, v in out.items()}


def probability_metrics(y: np.ndarray, p: np.ndarray, weights: np.ndarray | None = None,
                        bins: int = CALIBRATION_BINS) -> dict[str, np.ndarray]:
    """AUROC, Brier score and calibration of probabilities ``p``, per row of ``weights``.

    Calibration is given twice: ``predicted_over_observed`` (mean predicted probability over
    the observed rate: 1 is calibrated in the large) and ``ece`` (expected calibration error:
    the item-weighted mean of |mean predicted - observed rate| over ``bins`` bins of equal
    count in the *unweighted* items, ordered by ``p``; a resample keeps the bins of the
    original items, so each resample is judged on the same bins).

    Args:
        y (np.ndarray): 0/1 outcomes ``[n]``.
        p (np.ndarray): predicted probabilities ``[n]``.
        weights (np.ndarray, optional): ``[B, n]`` (or ``[n]``) non-negative weights.
            (default: one row of ones)
        bins (int, optional): calibration bins. (default: ``10``)

    Returns:
        dict[str, np.ndarray]: each of :data:`PROBABILITY_METRICS` as ``[B]``; AUROC and the
        ratio are NaN where a row has no positive (or no negative, for AUROC).
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    y, p = _check(y, p)
    w = _weights(weights, y.shape[0])
    yf = y.astype(np.float64)
    total = w.sum(axis=1)
    out = {"auroc": ranking_metrics(y, p, w)["auroc"]}
    with np.errstate(divide="ignore", invalid="ignore"):
        out["brier"] = np.where(total > 0, (w @ (p - yf) ** 2) / total, np.nan)
        observed = w @ yf
        out["predicted_over_observed"] = np.where(observed > 0, (w @ p) / observed, np.nan)
        ece = np.zeros(w.shape[0])
        for chunk in np.array_split(np.argsort(p, kind="stable"), bins):
            if chunk.size == 0:
                continue
            wb = w[:, chunk]
            nb = wb.sum(axis=1)
            gap = np.abs(wb @ p[chunk] - wb @ yf[chunk]) / np.where(nb > 0, nb, 1.0)
            ece += np.where(nb > 0, nb * gap, 0.0)
        out["ece"] = np.where(total > 0, ece / total, np.nan)
    return out


def stratified_resamples(y: np.ndarray, resamples: int, rng: np.random.Generator,
                         chunk: int = 100) -> Iterator[np.ndarray]:
    """Bootstrap count weights, the positives and the negatives of ``y`` resampled apart.

    Each resample draws ``P`` of the ``P`` positives and ``N`` of the ``N`` negatives
    uniformly with replacement; the weight of an item is how often it was drawn.

    Args:
        y (np.ndarray): 0/1 labels ``[n]``.
        resamples (int): ``B``, the number of resamples in all.
        rng (np.random.Generator): the source of every draw.
        chunk (int, optional): resamples per yielded block (bounds memory; the draws, and so
            the result, depend on it). (default: ``100``)

    Yields:
        np.ndarray: float64 ``[b, n]`` blocks, ``b <= chunk``, ``B`` rows in all.
    """
    if resamples < 1 or chunk < 1:
        raise ValueError(f"resamples and chunk must be >= 1, got {resamples} and {chunk}")
    y = np.asarray(y).astype(bool)
    n = y.shape[0]
    strata = [np.flatnonzero(y), np.flatnonzero(~y)]
    for lo in range(0, resamples, chunk):
        b = min(chunk, resamples - lo)
        offsets = np.arange(b)[:, None] * n
        flat = [(offsets + members[rng.integers(0, members.size, size=(b, members.size))]
                 ).ravel() for members in strata if members.size]
        drawn = np.concatenate(flat) if flat else np.zeros(0, np.int64)
        yield np.bincount(drawn, minlength=b * n).reshape(b, n).astype(np.float64)


def reliability_bins(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS
                     ) -> list[dict[str, float]]:
    """Equal-count bins ordered by ``p``: mean predicted, observed rate and count per bin.

    These are the bins :func:`probability_metrics`' ``ece`` is computed over.
    """
    y, p = _check(y, p)
    out = []
    for chunk in np.array_split(np.argsort(p, kind="stable"), bins):
        if chunk.size:
            out.append({"predicted": float(p[chunk].mean()), "observed": float(y[chunk].mean()),
                        "n": float(chunk.size)})
    return out
