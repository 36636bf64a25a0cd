"""`FullGraphInference`: the network evaluated layer by layer over the whole graph gives the
sampled trees' scores where the sampler keeps every candidate, and stays within a stated bound
of them where it draws (the one difference by design)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from gnn_lending_world import lending_graph, trained

from gnn import ModelError, ScoringPipeline
from gnn.full_graph_inference import FullGraphInference, root_chunks
from gnn.rescoring import score_graph


def _keep_every_candidate(pipe: ScoringPipeline) -> ScoringPipeline:
    """The same model with fan-outs, hub cap and pool so large that the sampler keeps every
    neighbour it may follow: its trees are the whole neighbourhood."""
    out = copy.copy(pipe)
    fanouts = {rt: {r: [1_000_000 if c > 0 else 0 for c in caps] for r, caps in per.items()}
               for rt, per in pipe.config.fanouts.items()}
    out.config = dataclasses.replace(pipe.config, fanouts=fanouts, hub_degree=1_000_000,
                                     pool_size=1_000_000)
    out._bound = None
    return out


def test_equals_the_sampled_trees_where_the_sampler_keeps_every_candidate() -> None:
    pipe = _keep_every_candidate(trained().pipeline)
    graph = lending_graph()
    trees = score_graph(pipe, graph)
    # NOTE: small chunks and edge pieces, so that every table is built from several pieces
    full = FullGraphInference(pipe, graph, chunk_size=97, max_edges=300)
    for label in ("User", "Merchant"):
        got = full.score(label)
        want = trees[label]
        # float32 summation order only (a CSR product in the tree, index_add here)
        np.testing.assert_allclose(got.fraud_logit, want.fraud_logit, rtol=0, atol=2e-5)
        np.testing.assert_allclose(got.pd_logit, want.pd_logit, rtol=0, atol=2e-5)
        np.testing.assert_allclose(got.embedding, want.embedding, rtol=0, atol=2e-5)
        np.testing.assert_allclose(got.fraud, want.fraud, rtol=0, atol=1e-5)


def test_the_difference_from_sampled_trees_is_bounded() -> None:
    """Below the first hop (which is the sampler's own draw), where the sampler draws ``k`` of
    more candidates the layer-wise mean is over its whole pool: measured on this world max
    |fraud difference| 0.0037 (users), 0.0085 (merchants), mean 0.0001 and 0.0004; the bound
    leaves room for another training's weights."""
    pipe = trained().pipeline
    graph = lending_graph()
    trees = score_graph(pipe, graph)
    full = FullGraphInference(pipe, graph)
    for label in ("User", "Merchant"):
        diff = np.abs(full.score(label).fraud - trees[label].fraud)
        assert diff.max() <= 0.05, (label, diff.max())
        assert diff.mean() <= 0.005, (label, diff.mean())


def test_chunking_does_not_change_a_score() -> None:
    pipe = trained().pipeline
    graph = lending_graph()
    small = FullGraphInference(pipe, graph, chunk_size=64, max_edges=128).score("User")
    large = FullGraphInference(pipe, graph, chunk_size=100_000, max_edges=10_000_000
                               ).score("User")
    np.testing.assert_allclose(small.fraud_logit, large.fraud_logit, rtol=0, atol=1e-5)
    np.testing.assert_allclose(small.embedding, large.embedding, rtol=0, atol=1e-5)


def test_features_computed_ahead_give_the_scores_of_one_chunk_at_a_time() -> None:
    """``score_chunks`` computes the next chunk's root features on a second thread while the
    network runs: every score equal to the bit to ``score_chunk`` one chunk at a time, in the
    chunks' order, and the work beside the network counted apart from the wall-time stages."""
    pipe = trained().pipeline
    graph = lending_graph()
    full = FullGraphInference(pipe, graph, chunk_size=50)
    full.prepare("User")
    chunks = full.chunks("User")
    assert len(chunks) > 3
    one_by_one = [full.score_chunk("User", c) for c in chunks]
    ahead = list(full.score_chunks("User", chunks))
    assert [c.index for c, _ in ahead] == [c.index for c in chunks]
    for want, (_, got) in zip(one_by_one, ahead, strict=True):
        assert np.array_equal(got.fraud_logit, want.fraud_logit)
        assert np.array_equal(got.pd_logit, want.pd_logit)
        assert np.array_equal(got.embedding, want.embedding)
    assert full.times.prefetched > 0
    assert list(full.score_chunks("User", [])) == []


def test_bad_arguments_are_refused() -> None:
    pipe, graph = trained().pipeline, lending_graph()
    with pytest.raises(ValueError, match="max_edges"):
        FullGraphInference(pipe, graph, max_edges=0)
    with pytest.raises(ValueError, match="chunk_size"):
        root_chunks(10, 0)
    with pytest.raises(ValueError, match="root_type"):
        FullGraphInference(pipe, graph).prepare("Device")
    with pytest.raises(ModelError, match="prepare"):
        full = FullGraphInference(pipe, graph)
        full.score_chunk("User", full.chunks("User")[0])
    with pytest.raises(ModelError, match="prepare"):
        full = FullGraphInference(pipe, graph)
        next(full.score_chunks("User", full.chunks("User")))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_cpu_scores() -> None:
    """Features by the CuPy kernels and the network on CUDA: the CPU's probabilities within
    1e-4 (float32 products and atomic sums in another order)."""
    pipe = copy.deepcopy(trained().pipeline)
    graph = lending_graph()
    cpu = {label: FullGraphInference(pipe, graph).score(label) for label in ("User", "Merchant")}
    pipe.use_kernels("cuda")
    gpu_run = FullGraphInference(pipe, graph, device="cuda", chunk_size=97, max_edges=300)
    for label in ("User", "Merchant"):
        got = gpu_run.score(label)
        np.testing.assert_allclose(got.fraud, cpu[label].fraud, rtol=0, atol=1e-4)
        np.testing.assert_allclose(got.pd, cpu[label].pd, rtol=0, atol=1e-4)
        np.testing.assert_allclose(got.embedding, cpu[label].embedding, rtol=0, atol=1e-3)
