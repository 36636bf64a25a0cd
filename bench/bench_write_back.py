"""Batch rescoring's write-back into LadybugDB: a chunk as ``batch_size``-row statements (how
chunks were written before) against a chunk as one transaction (``gnn.rescoring.write_chunk``).

    python bench/bench_write_back.py [--users 1000000] [--chunk 16384] [--rounds 2]

Each way, alternating, on a fresh scratch store beside the data (``/data`` when it exists)
holding ``--users`` ``User`` ids (bulk-loaded, not timed): every user's scores written in chunks
of ``--chunk`` with each chunk's ``RescoreChunk`` record, then checked all there. Prints one
line per round (docs/BENCHMARKS.md, "Batch rescoring").
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from gnn.rescoring import write_chunk
from graph.ladybug_store import LadybugStore
from graph.schema import RESCORE_CHUNK


def _statements(store: LadybugStore, ids: list[str], fraud: np.ndarray, k: int) -> None:
    """The way before: the scores, then the record, each ``batch_size`` rows a statement."""
    store.upsert_nodes("User", [
        {"id": i, "fraud_score": float(f), "pd_score": float(f), "scored_at": 0,
         "model_version": "bench"} for i, f in zip(ids, fraud.tolist(), strict=True)])
    store.upsert_nodes(RESCORE_CHUNK, [{"id": f"bench/User/{k}", "chunk": k}])


def _one_transaction(store: LadybugStore, ids: list[str], fraud: np.ndarray, k: int) -> None:
    write_chunk(store, "User", ids, fraud, fraud, scored_at=0, model_version="bench",
                record={"id": f"bench/User/{k}", "chunk": k})


def run(way: str, users: int, chunk: int) -> float:
    ids = [f"U{i:08d}" for i in range(users)]
    fraud = np.random.default_rng(0).random(users)
    write = _statements if way == "statements" else _one_transaction
    scratch = Path(tempfile.mkdtemp(prefix="bench-write-back-", dir="/data" if Path(
        "/data").is_dir() else None))
    try:
        with LadybugStore(scratch / "graph.lbug", batch_size=5000) as store:
            store.apply_schema()
            store.bulk_load([("User", pa.table({"id": pa.array(ids)}))], [])
            t0 = time.perf_counter()
            for k, lo in enumerate(range(0, users, chunk)):
                write(store, ids[lo:lo + chunk], fraud[lo:lo + chunk], k)
            took = time.perf_counter() - t0
            written = store.export_nodes("User").column("fraud_score").null_count
            if written != 0 or store.counts()[RESCORE_CHUNK] != -(-users // chunk):
                raise SystemExit(f"{way}: not every score or record was written")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=1_000_000, help="users in the scratch store")
    ap.add_argument("--chunk", type=int, default=16384, help="rows per rescoring chunk")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of both ways")
    args = ap.parse_args()
    for r in range(args.rounds):
        for way in ("statements", "one transaction"):
            took = run(way, args.users, args.chunk)
            print(f"round {r + 1}, {way}: {args.users:,} scores in {took:.1f} s "
                  f"({args.users / took:,.0f} rows/s)", flush=True)


if __name__ == "__main__":
    main()
