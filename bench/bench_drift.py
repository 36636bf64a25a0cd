"""What drift monitoring costs the serving process: a verdict observed (on the request thread)
and a ``/metrics`` scrape (the collector's ``DriftMonitor.status()``), against binning every
window again at each scrape (``measure_drift`` over the same windows, which is what a scrape did
before the monitor kept its counts, and what ``riskgraph drift`` still runs offline).

    python bench/bench_drift.py [--inputs 123] [--window 5000] [--runs 30] [--out FILE]

Synthetic reference and verdicts with the served model's shape (``--inputs`` root features and
the two scores, four products, every window full): the cost depends on the shape, not on the
values. Prints one Markdown table of medians, with the machine and the date.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine_info import machine, today  # noqa: E402

from gnn import DriftReference  # noqa: E402
from serving.champion_challenger import ChampionVerdict  # noqa: E402
from serving.drift import DriftMonitor, DriftThresholds, References, measure_drift  # noqa: E402
from serving.scoring import ApplicationFacts  # noqa: E402

PRODUCTS = ("bnpl", "cash_loan", "merchant_loan", "sme_owner_loan")


class _References(References):
    def __init__(self, reference: DriftReference) -> None:  # noqa: D107
        self.reference = reference

    def get(self, version: str | None) -> DriftReference | None:
        return self.reference if version == self.reference.model_version else None


def _verdicts(names: list[str], n: int, seed: int) -> list[ChampionVerdict]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(names)))
    out = []
    for i in range(n):
        facts = ApplicationFacts(application_id=f"a{i}", product=PRODUCTS[i % 4], amount=1.0,
                                 currency="CNY", user_id="u", device_id=None,
                                 device_masked=None, ip=None, lat=0.0, lon=0.0, ts=i,
                                 merchant_id=None)
        out.append(ChampionVerdict(facts, "approve", float(rng.random()),
                                   float(rng.random()), "m1", False,
                                   dict(zip(names, x[i].tolist(), strict=True))))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=123)
    ap.add_argument("--window", type=int, default=5000, help="verdicts kept per product")
    ap.add_argument("--runs", type=int, default=30, help="scrapes timed")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(args.inputs)]
    n_ref = 20_000
    values = {k: rng.normal(size=n_ref) for k in names}
    values["score:fraud"], values["score:pd"] = rng.random(n_ref), rng.random(n_ref)
    reference = DriftReference.from_samples(
        values, np.asarray(PRODUCTS, dtype=object)[rng.integers(0, 4, n_ref)],
        model_version="m1")
    monitor = DriftMonitor(_References(reference), window=args.window,
                           thresholds=DriftThresholds())
    fill = _verdicts(names, 4 * args.window, seed=1)
    for v in fill:
        monitor.observe(v)
    t = time.perf_counter()
    monitor.status()  # the first scrape counts the windows once
    first = time.perf_counter() - t

    more = _verdicts(names, 2000, seed=2)
    observe = []
    for v in more:
        t = time.perf_counter()
        monitor.observe(v)
        observe.append(time.perf_counter() - t)
    scrape, scratch = [], []
    samples = [s.sample for w in monitor._windows.values() for s in w]
    for _ in range(args.runs):
        t = time.perf_counter()
        monitor.status()
        scrape.append(time.perf_counter() - t)
        t = time.perf_counter()
        measure_drift(samples, reference, DriftThresholds(), "m1")
        scratch.append(time.perf_counter() - t)

    med = statistics.median
    lines = [
        f"Drift monitoring, {args.inputs} inputs + 2 scores, 4 products x {args.window} "
        f"verdicts in the windows; {machine()}, {today()}",
        "",
        "| step | median | p99 |",
        "|---|---|---|",
        f"| observe one verdict (request thread) | {med(observe) * 1e6:.0f} µs "
        f"| {np.quantile(observe, 0.99) * 1e6:.0f} µs |",
        f"| scrape: kept counts (`DriftMonitor.status`) | {med(scrape) * 1e3:.2f} ms "
        f"| {max(scrape) * 1e3:.2f} ms (max) |",
        f"| scrape: binning the windows again (`measure_drift`) | {med(scratch) * 1e3:.1f} ms "
        f"| {max(scratch) * 1e3:.1f} ms (max) |",
        f"| first scrape after a promotion (counts every window once) | {first * 1e3:.1f} ms "
        "| |",
        "",
        f"Ratio, binning again / kept counts: {med(scratch) / med(scrape):.0f}x",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
