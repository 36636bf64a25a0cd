"""Schema fuzz of `riskgraph serve` over real HTTP, with a key of each role: no 5xx, ever.

    python bench/fuzz_api.py                      # 10,000 cases, embedded store, 2 workers
    python bench/fuzz_api.py --cases 2000 --neo4j-uri bolt://127.0.0.1:7688

1. `python -m serving.cli serve` starts in its own process on a fresh data directory (embedded
   LadybugDB, or the given Neo4j), with a bootstrap admin key; a scoring and an investigator
   key are created through `POST /v1/keys`.
2. Every operation of the OpenAPI document is fuzzed by schemathesis (hypothesis strategies
   from the schema), schema-valid and schema-violating cases alike, once with each role's key
   (a route the role may not call answers 403, and gets no cases after the first pass). Each
   (role, operation, mode) run has its own seed derived from `--seed`; passes repeat with new
   seeds until `--cases` cases were answered by an operation (403s not counted).
   Workers (`--workers`) split the runs: generating cases costs more CPU than answering them.
3. Every answer is checked by schemathesis' checks: no 5xx, status codes and bodies as the
   schema says (two checks that cannot apply are off: the policy file's rules, which a static
   schema cannot carry, and dropped headers or extra query parameters, which the API ignores).

Prints the cases sent, the time, the answers by status and every failure (with its curl
command); exits 1 on any failure or when fewer than `--cases` cases were answered.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
# NOTE: this checkout's packages, whatever `pip install -e` points at (workers import them too).
sys.path.insert(0, str(ROOT))
ROLES = ("scoring", "investigator", "admin")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", type=int, default=10_000,
                   help="least cases answered by an operation (403s to a role not counted)")
    p.add_argument("--workers", type=int, default=2, help="processes generating cases")
    p.add_argument("--seed", type=int, default=0, help="seed of every run's seed")
    p.add_argument("--neo4j-uri", help="serve from this Neo4j (default: embedded LadybugDB)")
    p.add_argument("--json", type=Path, help="also write the summary here")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="riskgraph-fuzz-") as tmp:
        admin = f"rgk_fuzzadmin_{secrets.token_urlsafe(32)}"
        port = _free_port()
        server = _start_server(Path(tmp), port, admin, args.neo4j_uri)
        try:
            base_url = f"http://127.0.0.1:{port}"
            keys = {role: _new_key(base_url, admin, role) for role in ROLES[:2]}
            keys["admin"] = admin
            summary = fuzz(base_url, keys, cases=args.cases, workers=args.workers,
                           seed=args.seed)
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    summary["store"] = "neo4j" if args.neo4j_uri else "ladybug"
    print(f"fuzz: {summary['cases']} cases in {summary['seconds']:.0f} s "
          f"({summary['store']}, {args.workers} workers): {summary['handled']} answered by "
          f"an operation, {summary['refused_403']} refused to a role; answers by status: "
          f"{summary['statuses']}; server errors: {summary['server_errors']}; "
          f"failures: {len(summary['failures'])}")
    for failure in summary["failures"]:
        print(f"\n--- {failure}")
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2))
    ok = not summary["failures"] and summary["server_errors"] == 0
    return 0 if ok and summary["handled"] >= args.cases else 1


def fuzz(base_url: str, keys: dict[str, str], *, cases: int, workers: int,
         seed: int) -> dict[str, Any]:
    """Send cases until at least ``cases`` of them were answered by an operation's handler
    (every answer but the 403 of a role that may not call it); a summary of the answers."""
    labels = _operation_labels()
    runs = [(role, label, mode) for role in keys for label in labels
            for mode in ("positive", "negative")]
    statuses: Counter[int] = Counter()
    refused: set[tuple[str, str]] = set()
    failures: list[str] = []
    start = time.perf_counter()
    passes = 0
    with mp.get_context("spawn").Pool(workers) as pool:
        while statuses.total() - statuses[403] < cases and passes < 20:
            # NOTE: a role refused an operation (403 to every case of the first pass) gets
            # no more of its cases: they test the role check, not the operation.
            todo = [run for run in runs if run[:2] not in refused]
            per_run = max(10, -(-(cases - statuses.total() + statuses[403]) // len(todo)))
            jobs = [(base_url, keys[role], label, mode, per_run,
                     zlib.crc32(f"{seed} {passes} {role} {label} {mode}".encode()))
                    for role, label, mode in todo]
            results = pool.map(_run, jobs)
            for (role, label, _), (counts, found) in zip(todo, results, strict=True):
                statuses.update(counts)
                failures.extend(found)
                if passes == 0 and counts and set(counts) == {403}:
                    refused.add((role, label))
            passes += 1
    return {
        "cases": statuses.total(),
        "handled": statuses.total() - statuses[403],
        "refused_403": statuses[403],
        "seconds": round(time.perf_counter() - start, 1),
        "passes": passes,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "server_errors": sum(v for k, v in statuses.items() if k >= 500),
        "failures": failures,
    }


def _operation_labels() -> list[str]:
    import schemathesis

    from serving.api import openapi_document

    schema = schemathesis.openapi.from_dict(openapi_document())
    return [result.ok().label for result in schema.get_all_operations()]


def _run(job: tuple[str, str, str, str, int, int]) -> tuple[Counter[int], list[str]]:
    """One (role, operation, mode) run in a worker: ``(answers by status, failures)``."""
    import hypothesis
    import requests
    import schemathesis
    from schemathesis import GenerationMode, checks

    from serving.api import openapi_document

    # NOTE: three checks cannot apply. The policy file's rules (each product's maximum
    # amount, its currency, a merchant for bnpl) are not in the schema, so schema-valid
    # data may be a 422; schema-violating mutations include dropped headers and extra query
    # parameters, which the API ignores as HTTP APIs do; and every case carries a valid key
    # (test_api checks what a missing or wrong one gets).
    EXCLUDED_CHECKS = [checks.positive_data_acceptance, checks.negative_data_rejection,
                       checks.ignored_auth]
    base_url, key, label, mode, max_examples, seed = job
    schema = schemathesis.openapi.from_dict(openapi_document())
    op = next(r.ok() for r in schema.get_all_operations() if r.ok().label == label)
    counts: Counter[int] = Counter()
    session = requests.Session()

    @hypothesis.seed(seed)
    @hypothesis.settings(max_examples=max_examples, deadline=None, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(case=op.as_strategy(generation_mode=GenerationMode(mode)))
    def run(case: schemathesis.Case) -> None:
        # NOTE: the schema's security scheme makes schemathesis send a key of its own
        # (positive: random text; negative: none); every case here carries a valid key.
        case.headers = {**(case.headers or {}), "X-API-Key": key}
        r = case.call(base_url=base_url, session=session, timeout=60)
        counts[r.status_code] += 1
        case.validate_response(r, excluded_checks=EXCLUDED_CHECKS)

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        pass  # negative mode of an operation with no input to violate (GET /healthz)
    except Exception as e:  # noqa: BLE001 - every failure is reported, the run goes on
        return counts, [f"{label} ({mode}, key {key.split('_')[1]}): {e}"]
    return counts, []


def _start_server(data_dir: Path, port: int, admin: str,
                  neo4j_uri: str | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RISKGRAPH_DATA_DIR": str(data_dir),
           "RISKGRAPH_PSEUDONYM_SECRET": secrets.token_hex(32),
           "RISKGRAPH_ADMIN_API_KEY": admin, "RISKGRAPH_API_PORT": str(port),
           "RISKGRAPH_RATE_LIMIT_PER_S": "100000", "RISKGRAPH_RATE_LIMIT_BURST": "100000",
           "RISKGRAPH_MAX_KEYS_PER_CALLER": "100000", "RISKGRAPH_LOG_LEVEL": "WARNING"}
    if neo4j_uri:
        env["RISKGRAPH_NEO4J_URI"] = neo4j_uri
    log = (data_dir / "serve.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "serving.cli", "serve"], env=env,
                              cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"serve exited: {(data_dir / 'serve.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("serve did not start within 120 s")


def _new_key(base_url: str, admin: str, role: str) -> str:
    r = httpx.post(f"{base_url}/v1/keys", json={"name": f"fuzz-{role}", "role": role},
                   headers={"X-API-Key": admin}, timeout=30)
    r.raise_for_status()
    return str(r.json()["key"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
