"""`StackedEnsemble`: the members run as one give the ensemble's outputs; the pipeline rebuilds
it when a weight changes."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from gnn_lending_world import lending_graph, trained

from gnn import (
    ApplicationQueries,
    HeteroRiskEnsemble,
    HeteroRiskGNN,
    StackedEnsemble,
    TreeBatch,
)
from gnn.data.lending_graph import NODE_TYPES


def _batch(pipe: object, first: int, n: int) -> TreeBatch:
    g = lending_graph()
    prepared = pipe.prepare_applications(  # type: ignore[attr-defined]
        g, ApplicationQueries.from_graph(g, np.arange(first, first + n)))
    return pipe.batch(pipe.normalise(prepared))  # type: ignore[attr-defined,no-any-return]


def _members(batch: TreeBatch, n: int) -> list[HeteroRiskGNN]:
    members = []
    for seed in range(n):
        torch.manual_seed(seed)
        members.append(HeteroRiskGNN({t: batch.x[t].shape[1] for t in NODE_TYPES},
                                     {"Application": batch.root_x.shape[1]},
                                     hidden_channels=16, embedding_dim=8, num_layers=2).eval())
    return members


@pytest.mark.parametrize("n", [1, 2, 40])
def test_stacked_members_give_the_ensemble_outputs(n: int) -> None:
    pipe = trained().pipeline
    batch = _batch(pipe, 3, n)
    for ensemble in (pipe.model, HeteroRiskEnsemble(_members(batch, 3))):
        ensemble.eval()
        with torch.inference_mode():
            want = ensemble(batch)
            got = StackedEnsemble(list(ensemble.members))(batch)
        # NOTE: float32 sums in another order: equal up to rounding, not bit for bit.
        for name in ("fraud_logit", "pd_logit", "embedding"):
            a, b = getattr(got, name), getattr(want, name)
            assert a.shape == b.shape
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_a_batch_with_a_type_missing_at_depth_one() -> None:
    # One application of a user with no merchant: some node types have no rows to update.
    pipe = trained().pipeline
    batch = _batch(pipe, 0, 1)
    assert any(batch.prefix[1][t] == 0 for t in NODE_TYPES)
    with torch.inference_mode():
        want = pipe.model.eval()(batch)
        got = StackedEnsemble(list(pipe.model.members))(batch)
    torch.testing.assert_close(got.fraud_logit, want.fraud_logit, rtol=1e-5, atol=1e-5)


def test_pipeline_predicts_with_the_stack_and_rebuilds_it_when_a_weight_changes() -> None:
    pipe = copy.deepcopy(trained().pipeline)
    assert isinstance(pipe.model, HeteroRiskEnsemble) and len(pipe.model.members) == 2
    g = lending_graph()
    prepared = pipe.prepare_applications(g, ApplicationQueries.from_graph(g, np.arange(30)))
    before = pipe.predict(prepared)
    stacked = pipe._inference_model()
    assert isinstance(stacked, StackedEnsemble) and pipe._inference_model() is stacked

    def members_alone() -> np.ndarray:
        with torch.inference_mode():
            return pipe.model(pipe.batch(pipe.normalise(prepared))).fraud_logit.numpy()

    np.testing.assert_allclose(before.gnn_logit, members_alone(), rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        pipe.model.members[1].fraud_head["Application"].bias += 2.0
    after = pipe.predict(prepared)
    assert pipe._inference_model() is not stacked
    np.testing.assert_allclose(after.gnn_logit, before.gnn_logit + 1.0, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(after.gnn_logit, members_alone(), rtol=1e-5, atol=1e-5)
