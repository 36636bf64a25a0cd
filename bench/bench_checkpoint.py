"""What a LadybugDB checkpoint costs against the size of a verdict table's audit strings.

    python bench/bench_checkpoint.py [--rows 120000] [--inserts 500]

For each way of storing a verdict's features JSON (raw, zlib + base64, not stored), builds a
``Verdict`` table of ``--rows`` rows by bulk copy (distinct, realistic JSON: identical strings
compress to nothing), then twice creates ``--inserts`` verdicts in one transaction and times the
``CHECKPOINT`` that follows. Prints a Markdown table (docs/BENCHMARKS.md, "Serving").
"""

from __future__ import annotations

import argparse
import base64
import json
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import ladybug
import numpy as np
import pyarrow as pa


def features(rng: np.random.Generator) -> str:
    """A verdict's features as the service stores them: ~180 named numbers, ~4.4 KB."""
    return json.dumps({f"feature_{i}": round(float(v), 6) for i, v in enumerate(rng.random(180))})


def zipped(rng: np.random.Generator) -> str:
    return base64.b64encode(zlib.compress(features(rng).encode(), 6)).decode()


def run(kind: str, make: Callable[[np.random.Generator], str] | None, rows: int, inserts: int,
        seed: int) -> tuple[float, list[float]]:
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "verdicts.lbug"
        db = ladybug.Database(str(path))
        conn = ladybug.Connection(db)
        conn.set_max_threads_for_exec(1)
        conn.execute("CREATE NODE TABLE Verdict(id STRING, decision STRING, "
                     "features_json STRING, PRIMARY KEY(id))")
        step = 20_000
        for lo in range(0, rows, step):
            n = min(step, rows - lo)
            conn.execute("COPY Verdict FROM $t", {"t": pa.table({
                "id": [f"v{i}" for i in range(lo, lo + n)], "decision": ["approve"] * n,
                "features_json": [make(rng) if make else None for _ in range(n)]})})
        conn.execute("CHECKPOINT")
        size = path.stat().st_size / 2**20
        times = []
        for round_ in range(2):
            conn.execute("BEGIN TRANSACTION")
            for i in range(inserts):
                conn.execute("CREATE (v:Verdict {id: $id, decision: 'approve', "
                             "features_json: $f})",
                             {"id": f"{kind}-{round_}-{i}", "f": make(rng) if make else None})
            conn.execute("COMMIT")
            t = time.perf_counter()
            conn.execute("CHECKPOINT")
            times.append((time.perf_counter() - t) * 1000)
        conn.close()
        db.close()
    return size, times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=120_000)
    ap.add_argument("--inserts", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    lines = [f"{args.rows:,} verdicts bulk-copied, then {args.inserts} created and checkpointed "
             f"(twice), {time.strftime('%Y-%m-%d %H:%M')}:", "",
             "| `features_json` | file MiB | checkpoint ms |", "|---|---:|---|"]
    for kind, make in (("raw JSON", features), ("zlib + base64", zipped), ("not stored", None)):
        size, times = run(kind.split()[0], make, args.rows, args.inserts, args.seed)
        lines.append(f"| {kind} | {size:.0f} | {' / '.join(f'{t:.0f}' for t in times)} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
