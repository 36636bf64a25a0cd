"""`TorchRanks`: the rescoring job across ``torch.distributed`` ranks launched by ``torchrun``
(gloo on this CPU machine) gives exactly the scores of one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gnn_lending_world import lending_graph, trained, world_dir

from gnn import ModelRegistry
from gnn.full_graph_inference import FullGraphInference
from gnn.rescoring import rescore_store
from graph import GraphStore, Pseudonymiser
from graph.loader import load_world
from graph.schema import RESCORE_CHUNK, RESCORE_RUN
from tests.utils.neo4j import NEO4J_DATABASE, neo4j_auth, neo4j_uri

ROOT = Path(__file__).resolve().parents[2]

_RANK = """
import sys
import numpy as np
from gnn import LendingGraph, ModelRegistry
from gnn.distributed_rescoring import start_ranks
from gnn.full_graph_inference import FullGraphInference
world, models, out = sys.argv[1:4]
ranks = start_ranks(2, "cpu")
graph = LendingGraph.from_world(world)
full = FullGraphInference(ModelRegistry(models).load(), graph, chunk_size=97, max_edges=300)
for label in ("User", "Merchant"):
    full.prepare(label, share=ranks.build_table)
    mine = {c.index: full.score_chunk(label, c) for c in full.chunks(label)
            if c.index % ranks.world_size == ranks.rank}
    parts = ranks.gather(mine)
    if ranks.rank == 0:
        merged = {k: v for p in parts for k, v in p.items()}
        order = sorted(merged)
        np.savez(f"{out}/{label}.npz", chunks=np.array(sorted({k % 2 for p in parts[1:]
                 for k in p})), **{f: np.concatenate([getattr(merged[i], f) for i in order])
                 for f in ("fraud", "pd", "embedding")})
ranks.close()
"""


def _torchrun(*args: str, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    # NOTE: one thread per process in both runs: a BLAS product's rounding may depend on
    # how many threads share it, and "exactly" is meant at the same thread count.
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_port", str(29500 + os.getpid() % 1000), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})})


def test_two_ranks_score_exactly_as_one_process(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    registry.promote(registry.save(trained().pipeline, data_sha256="0" * 64))
    script = tmp_path / "rank.py"
    script.write_text(_RANK)
    out = _torchrun(str(script), str(world_dir()), str(tmp_path / "models"), str(tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    one = FullGraphInference(registry.load(), lending_graph(), chunk_size=97, max_edges=300)
    for label in ("User", "Merchant"):
        got = np.load(tmp_path / f"{label}.npz")
        want = one.score(label)
        np.testing.assert_array_equal(got["fraud"], want.fraud)
        np.testing.assert_array_equal(got["pd"], want.pd)
        np.testing.assert_array_equal(got["embedding"], want.embedding)
    assert np.load(tmp_path / "User.npz")["chunks"].tolist() == [1]  # rank 1 scored odd chunks


@pytest.mark.neo4j
def test_torchrun_rescore_through_neo4j_routing_equals_one_process(
        neo4j_store: GraphStore, tmp_path: Path) -> None:
    """Two ranks of ``riskgraph rescore`` under torchrun, reading through a ``neo4j://``
    (routing) URI, write exactly the scores one process wrote, each rank its own chunks."""
    registry = ModelRegistry(tmp_path / "models")
    registry.promote(registry.save(trained().pipeline, data_sha256="0" * 64))
    load_world(neo4j_store, world_dir(), Pseudonymiser(b"rescoring-test-secret-key"),
               progress=False)
    one = rescore_store(neo4j_store, registry.load(), chunk_size=50)
    want = _scores(neo4j_store)
    user, password = neo4j_auth()
    out = _torchrun("-m", "serving.cli", "rescore", "--chunk-size", "50", "--no-progress",
                    env={"RISKGRAPH_DATA_DIR": str(tmp_path),
                         "RISKGRAPH_NEO4J_URI": neo4j_uri("neo4j"),
                         "RISKGRAPH_NEO4J_USER": user, "RISKGRAPH_NEO4J_PASSWORD": password,
                         "RISKGRAPH_NEO4J_DATABASE": NEO4J_DATABASE,
                         "RISKGRAPH_PSEUDONYM_SECRET": "rescoring-test-secret-key"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert '"world_size": 2' in out.stdout
    runs = neo4j_store.get_nodes(RESCORE_RUN, neo4j_store.node_ids(RESCORE_RUN))
    (two,) = [i for i in runs if i != one.run_id]
    assert runs[two].properties["state"] == "done"
    chunks = neo4j_store.get_nodes(RESCORE_CHUNK, [
        i for i in neo4j_store.node_ids(RESCORE_CHUNK) if i.startswith(two)])
    assert len(chunks) == one.chunks["total"]
    assert {c.properties["rank"] for c in chunks.values()} == {0, 1}
    assert _scores(neo4j_store) == want


def _scores(store: GraphStore) -> dict[str, dict[str, tuple[object, object]]]:
    out = {}
    for label in ("User", "Merchant"):
        t = store.export_nodes(label).to_pydict()
        out[label] = {i: (f, p) for i, f, p in zip(t["id"], t["fraud_score"], t["pd_score"],
                                                   strict=True)}
    return out
