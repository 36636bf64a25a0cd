"""`attribute`: what moved a score — each root feature's and each relation's share of the fraud
and default logits that :meth:`gnn.ScoringPipeline.predict` returns.

Both methods run the model :meth:`predict` runs (:meth:`gnn.ScoringPipeline.scoring_model`: an
ensemble's members stacked, eval mode) on one batch holding every variant of every tree:

* **Root features: Integrated Gradients** (Sundararajan et al., 2017) over the normalised root
  features, against the training mean (the normaliser's zero) as the baseline. Chosen because it
  is *complete*: a root's attributions sum to ``logit(x) - logit(baseline)``, so the weights of
  the reasons are shares of the score itself, in logits, not a ranking on some other scale;
  and because it needs only gradients, no sampling (SHAP's Monte-Carlo coalitions would cost
  hundreds of forward passes and a seed, LIME a surrogate model that is not the one that
  decides). The path integral is Gauss-Legendre quadrature over ``steps`` points (the
  integrand is smooth between ReLU kinks; at equal points it halved the midpoint rule's error
  on a trained model). A root's features reach only its own row (messages flow from children
  to parents), so the neighbourhood is computed once
  (:meth:`gnn.StackedEnsemble.forward_with_context`) and every point of the path costs one
  root row through the same layers (:meth:`gnn.StackedEnsemble.root_output`); two backward
  passes through those rows give the two heads' gradients.
* **Relations: occlusion** of subtrees. A relation group (:data:`RELATION_GROUPS`: the
  application's device with the accounts and applications behind it, the applicant's contacts,
  its earlier applications ...) is scored as if the sampled tree had no node there:
  ``logit(tree) - logit(tree without the group)``, what the neighbours reached that way add.
  Gradients would answer another question (a neighbour's feature nudged, not the neighbour
  gone) and a mean aggregator has no edge weight to integrate over; a tree without, say,
  contacts is a state the model meets in training. Each variant is one more root row, plus a
  copy of the one node whose children change (the applicant, for the groups behind it);
  everything else is shared with the original tree
  (:meth:`gnn.nn.hetero_risk_gnn.TreeBatch.from_edges`), so all variants cost one forward pass
  a little larger than the score's own.

The two are separate decompositions over disjoint inputs (the root's features; the neighbours'
nodes): feature attributions sum, with the baseline logit, to the logit; relation attributions
are counterfactual differences and sum to nothing in particular. Both are deterministic
functions of the prepared seeds and the model, and a root's values do not depend on the other
roots of its batch (up to float summation order).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import torch

from gnn.nn.hetero_risk_gnn import HeteroRiskEnsemble, HeteroRiskGNN, RiskOutput, TreeBatch
from gnn.data.lending_graph import NODE_TYPES, RELATIONS
from gnn.data.neighbour_sampler import RELATION_IDS, SampledTrees, _expand
from gnn.features.neighbour_aggregates import aggregate_blocks
from gnn.features.risk_features import NODE_FEATURES
from gnn.pipeline import Prepared, Scores, ScoringPipeline
from gnn.nn.stacked_ensemble import StackedEnsemble
from graph.typing import NodeType

DEFAULT_STEPS: Final = 32
"""Integration points of Integrated Gradients (tests/gnn/test_attribution.py states the error)."""

RELATION_GROUPS: Final[dict[NodeType, dict[str, tuple[tuple[str, ...], ...]]]] = {
    "Application": {
        "device": (("app_device",),),
        "ip": (("app_ip",),),
        "merchant": (("app_merchant",),),
        "user_applications": (("app_user", "user_app"),),
        "user_devices": (("app_user", "user_device"),),
        "user_phones": (("app_user", "user_phone"),),
        "user_addresses": (("app_user", "user_home"), ("app_user", "user_work")),
        "user_ips": (("app_user", "user_ip"),),
        "contacts": (("app_user", "user_contact"), ("app_user", "contact_of")),
        "user_merchants": (("app_user", "user_merchant"),),
        "owned_merchants": (("app_user", "user_owns"),),
    },
    "User": {
        "user_applications": (("user_app",),),
        "user_devices": (("user_device",),),
        "user_phones": (("user_phone",),),
        "user_addresses": (("user_home",), ("user_work",)),
        "user_ips": (("user_ip",),),
        "contacts": (("user_contact",), ("contact_of",)),
        "user_merchants": (("user_merchant",),),
        "owned_merchants": (("user_owns",),),
    },
    "Merchant": {
        "merchant_applications": (("merchant_app",),),
        "merchant_buyers": (("merchant_buyer",),),
        "merchant_owner": (("merchant_owner",),),
    },
}
"""Per root type, the relation groups: name -> relation paths from the root. A path of one
relation removes the root's children along it with their subtrees (the application's device and
whoever is behind it); a path of two removes the grandchildren along the second relation under
the children along the first (the applicant's contacts, but not the applicant). The application's
applicant itself is no group: what it is, the root features say."""

_TYPE_INDEX: Final = {t: i for i, t in enumerate(NODE_TYPES)}
_REL_NAMES: Final = tuple(RELATIONS)
_REL_PARENT_TYPE: Final = np.array([_TYPE_INDEX[RELATIONS[r][0]] for r in _REL_NAMES],
                                   dtype=np.int64)


def _check_groups() -> None:
    for root, groups in RELATION_GROUPS.items():
        for name, paths in groups.items():
            for path in paths:
                parent: NodeType = root
                assert 1 <= len(path) <= 2, (name, path)
                for rel in path:
                    assert RELATIONS[rel][0] == parent, (name, path)
                    parent = RELATIONS[rel][1]


_check_groups()


@dataclass(frozen=True)
class RootAttribution:
    """One root's attributions, by name (what :mod:`serving.explanations` reads).

    Args:
        values (dict[str, float]): the raw (not normalised) root feature values.
        fraud (dict[str, float]): Integrated Gradients of the fraud logit per root feature.
        pd (dict[str, float]): the same for the default logit.
        fraud_relations (dict[str, float]): occlusion of each relation group, fraud logit.
        pd_relations (dict[str, float]): the same for the default logit.
        fraud_logit (float): the logit explained (``predict``'s, up to float rounding).
        pd_logit (float): likewise.
        fraud_baseline (float): the fraud logit with the root features at the training mean.
        pd_baseline (float): likewise.
    """

    values: dict[str, float]
    fraud: dict[str, float]
    pd: dict[str, float]
    fraud_relations: dict[str, float]
    pd_relations: dict[str, float]
    fraud_logit: float
    pd_logit: float
    fraud_baseline: float
    pd_baseline: float


@dataclass(frozen=True)
class Attributions:
    """Attributions of a batch of roots (:func:`attribute`).

    Args:
        root_type (NodeType): the roots' type.
        feature_names (list[str]): root feature names (``Prepared.root_names``).
        relation_names (list[str]): relation groups (:data:`RELATION_GROUPS` of the root type).
        values (np.ndarray): raw root features ``[R, F]`` (``Prepared.root_x``).
        fraud_logit (np.ndarray): ``[R]`` logits explained.
        pd_logit (np.ndarray): ``[R]``.
        fraud_baseline (np.ndarray): ``[R]`` logits at the baseline root features.
        pd_baseline (np.ndarray): ``[R]``.
        fraud_features (np.ndarray): ``[R, F]`` Integrated Gradients; each row sums to
            ``fraud_logit - fraud_baseline`` up to the integration error.
        pd_features (np.ndarray): ``[R, F]``.
        fraud_relations (np.ndarray): ``[R, G]`` occlusion differences (0 where the tree has
            no node in the group).
        pd_relations (np.ndarray): ``[R, G]``.
        steps (int): integration points used.
        scores (Scores): the roots' scores from the same forward pass, as
            :meth:`ScoringPipeline.predict` returns them (up to float summation order): a
            caller that explains every score need not call ``predict`` as well.

    Shapes:
        - ``R`` roots, ``F`` root features, ``G`` relation groups; float64 arrays.
    """

    root_type: NodeType
    feature_names: list[str]
    relation_names: list[str]
    values: np.ndarray
    fraud_logit: np.ndarray
    pd_logit: np.ndarray
    fraud_baseline: np.ndarray
    pd_baseline: np.ndarray
    fraud_features: np.ndarray
    pd_features: np.ndarray
    fraud_relations: np.ndarray
    pd_relations: np.ndarray
    steps: int
    scores: Scores

    def __len__(self) -> int:
        return int(self.fraud_logit.shape[0])

    def root(self, i: int) -> RootAttribution:
        """Root ``i``'s attributions by name.

        Raises:
            IndexError: if ``i`` is not a root of the batch.
        """
        if not 0 <= i < len(self):
            raise IndexError(f"root {i} out of range for {len(self)} roots")

        def named(names: list[str], row: np.ndarray) -> dict[str, float]:
            return dict(zip(names, row.tolist(), strict=True))

        f, g = self.feature_names, self.relation_names
        return RootAttribution(
            named(f, self.values[i]), named(f, self.fraud_features[i]),
            named(f, self.pd_features[i]), named(g, self.fraud_relations[i]),
            named(g, self.pd_relations[i]), float(self.fraud_logit[i]),
            float(self.pd_logit[i]), float(self.fraud_baseline[i]),
            float(self.pd_baseline[i]))


def attribute(pipeline: ScoringPipeline, prepared: Prepared, *,
              device: torch.device | str = "cpu", steps: int = DEFAULT_STEPS,
              relations: bool = True) -> Attributions:
    """Attributions of the fraud and default logits of prepared seeds (module docstring).

    Args:
        pipeline (ScoringPipeline): the model that scores.
        prepared (Prepared): raw seeds, as :meth:`ScoringPipeline.predict` takes them.
        device (torch.device or str, optional): where the model runs. (default: ``"cpu"``)
        steps (int, optional): Integrated Gradients points. (default: :data:`DEFAULT_STEPS`)
        relations (bool, optional): also occlude the relation groups. (default: ``True``)

    Returns:
        Attributions: per root, per feature and per relation group, for both logits.

    Raises:
        ValueError: if ``steps`` is below 1.
        ModelError: if the root features differ from the model's.

    Shapes:
        - **input:** ``R`` prepared seeds with ``F`` root features
        - **output:** ``[R, F]`` and ``[R, G]`` attributions, ``[R]`` logits
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    norm = pipeline.normalise(prepared)
    device = torch.device(device)
    model = _stacked(pipeline.scoring_model(device))
    rt = norm.root_type
    groups = list(RELATION_GROUPS.get(rt, {}).items()) if relations else []
    r, f = len(norm), norm.root_x.shape[1]
    if r == 0:
        z, zf, zg = np.zeros(0), np.zeros((0, f)), np.zeros((0, len(groups)))
        return Attributions(rt, list(prepared.root_names), [n for n, _ in groups],
                            np.zeros((0, f)), z, z, z, z, zf, zf, zg, zg, steps,
                            pipeline.predict(prepared, device=device))
    plan = _Variants.of(norm.trees, groups)
    batch = plan.batch(norm, pipeline.config.num_layers).to(device)
    x = torch.from_numpy(np.ascontiguousarray(norm.root_x, dtype=np.float32)).to(device)
    with torch.no_grad():
        out, context = model.forward_with_context(replace(
            batch, root_x=torch.cat([x, x[torch.from_numpy(plan.pair_tree).to(device)]])))
    fl32 = out.fraud_logit.float().cpu().numpy()
    pl32 = out.pd_logit.float().cpu().numpy()
    blend_x = pipeline.blend_inputs(prepared)
    scores = pipeline.scores(rt, fl32[:r], pl32[:r], out.embedding[:r].float().cpu().numpy(),
                             prepared.root_x, blend_x)
    fl, pl = fl32.astype(np.float64), pl32.astype(np.float64)
    # NOTE: the baseline is the normalised training mean, 0; path point k is alpha_k * x.
    nodes, weights = _quadrature(steps)
    alphas = torch.from_numpy(nodes).to(device)
    # NOTE: the path twice, the fraud logit differentiated on the first copy and the default
    # logit on the second, in one backward pass (a row's outputs depend on its own row alone):
    # one pass instead of two is ~0.3 ms of a verdict's ~10. An application's default side is
    # the credit model's where the pipeline has one (_credit_attributions): the GNN's default
    # logit is then not integrated at all, the path taken once.
    credit = rt == "Application" and pipeline.credit is not None
    copies = 1 if credit else 2
    k = steps * r
    with torch.inference_mode(False), torch.enable_grad():
        point = (alphas[:, None, None] * x[None]).reshape(k, f)
        path = torch.cat([point] * copies).requires_grad_(True)
        on_path = model.root_output(torch.cat([torch.zeros_like(x), path]), context,
                                    torch.arange(r, device=device).repeat(copies * steps + 1))
        target = on_path.fraud_logit[r:r + k].sum()
        if not credit:
            target = target + on_path.pd_logit[r + k:].sum()
        (grad,) = torch.autograd.grad(target, path)
    xd = norm.root_x.astype(np.float64)

    def integrated(gr: torch.Tensor) -> np.ndarray:
        return np.einsum("k,krf->rf", weights,
                         gr.double().cpu().numpy().reshape(steps, r, f)) * xd

    ig_fraud = integrated(grad[:k])
    ig_pd = np.zeros((r, f)) if credit else integrated(grad[k:])
    occ_fraud = np.zeros((r, len(groups)))
    occ_pd = np.zeros((r, len(groups)))
    variant = r + np.arange(plan.pair_tree.shape[0])
    occ_fraud[plan.pair_tree, plan.pair_group] = fl[plan.pair_tree] - fl[variant]
    occ_pd[plan.pair_tree, plan.pair_group] = pl[plan.pair_tree] - pl[variant]
    pd_logit = pl[:r]
    pd_base = on_path.pd_logit[:r].detach().double().cpu().numpy()
    if credit:
        pd_logit, pd_base, ig_pd, occ_pd = _credit_attributions(
            pipeline, prepared, fl[:r], pl[:r], ig_pd, occ_pd, scores.pd)
    fraud_logit = fl[:r]
    fraud_base = on_path.fraud_logit[:r].detach().double().cpu().numpy()
    if blend_x is not None:
        fraud_logit = scores.fraud_logit.astype(np.float64)
        fraud_base, ig_fraud, occ_fraud = _blend_attributions(
            pipeline, prepared, blend_x, fraud_base, ig_fraud, occ_fraud,
            [name for name, _ in groups])
    return Attributions(
        rt, list(prepared.root_names), [name for name, _ in groups],
        np.asarray(prepared.root_x, dtype=np.float64), fraud_logit, pd_logit, fraud_base,
        pd_base, ig_fraud, ig_pd, occ_fraud, occ_pd, steps, scores)


def _blend_attributions(pipeline: ScoringPipeline, prepared: Prepared, blend_x: np.ndarray,
                        gnn_base: np.ndarray, ig: np.ndarray, occ: np.ndarray,
                        group_names: list[str]
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fraud side explained as the blend decides it
    (:class:`gnn.nn.fraud_blend.FraudBlend`): the GNN's attributions times its weight, plus the
    trees' TreeSHAP shares (:meth:`~gnn.nn.fraud_blend.FraudBlend.trees_contributions`); the
    blended log-odds they explain are the scores' (computed once, not again here).

    A tree input that is a root feature adds its share to that feature. A neighbour aggregate
    is what the neighbours add, as the GNN's neighbours are: its share stays in the baseline
    (the feature attributions still sum, with it, to the logit) and is added to the relation
    group its neighbours are reached through (:func:`_aggregate_groups`), beside the GNN's
    occlusion difference; the applicant's own node (hop 1) is in no group.

    Returns:
        the baseline of the blended log-odds, ``[R, F]`` and ``[R, G]`` attributions.
    """
    blend = pipeline.fraud_blend
    assert blend is not None
    shares, expected = blend.trees_contributions(blend_x)
    feats = blend.w_gnn * ig
    rel = blend.w_gnn * occ
    base = blend.w_gnn * gnn_base + blend.intercept + expected
    own = len(blend.feature_names)
    # NOTE: the trees' root features are distinct columns, so one fancy-indexed add is the
    # per-column adds it replaces, to the bit.
    feats[:, _columns(prepared.root_names, blend.feature_names)] += shares[:, :own]
    base = base + shares[:, own:].sum(axis=1)
    aggregate, group = _aggregate_group_columns(blend.fanouts, prepared.root_type,
                                                tuple(group_names))
    # NOTE: several aggregates add to one group, in column order, as a loop over them would.
    np.add.at(rel, (slice(None), group), shares[:, own + aggregate])
    return base, feats, rel


def _columns(names: Sequence[str], wanted: Sequence[str]) -> np.ndarray:
    """The position in ``names`` of each of ``wanted`` ``[len(wanted)]``."""
    index = {n: i for i, n in enumerate(names)}
    return np.fromiter((index[n] for n in wanted), dtype=np.int64, count=len(wanted))


_FanoutsKey = tuple[tuple[str, tuple[int, ...]], ...]


def _fanouts_key(fanouts: Mapping[str, Sequence[int]]) -> _FanoutsKey:
    """The sampler's caps as a hashable key, for the functions cached once per model."""
    return tuple((k, tuple(v)) for k, v in sorted(fanouts.items()))


def _aggregate_group_columns(fanouts: Mapping[str, Sequence[int]], root_type: NodeType,
                             group_names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The neighbour-aggregate columns that add to a relation group of ``group_names``, and
    that group's position, in column order (:func:`_aggregate_groups`)."""
    return _group_columns_of(_fanouts_key(fanouts), root_type, group_names)


@functools.lru_cache(maxsize=8)
def _group_columns_of(fanouts: _FanoutsKey, root_type: NodeType,
                      group_names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_aggregate_group_columns` of hashable fanouts: once per model."""
    where = {g: j for j, g in enumerate(group_names)}
    pairs = [(col, where[g]) for col, g in enumerate(_groups_of(fanouts, root_type))
             if g in where]
    return (np.array([c for c, _ in pairs], dtype=np.int64),
            np.array([j for _, j in pairs], dtype=np.int64))


def _aggregate_groups(fanouts: Mapping[str, Sequence[int]], root_type: NodeType
                      ) -> tuple[str | None, ...]:
    """Per neighbour-aggregate column (:func:`gnn.features.neighbour_aggregates.aggregate_names`
    order), the relation group (:data:`RELATION_GROUPS`) its neighbours are reached through, or
    ``None``: a hop-2 relation hangs under the hop-1 relation that reaches its source type."""
    return _groups_of(_fanouts_key(fanouts), root_type)


@functools.lru_cache(maxsize=8)
def _groups_of(fanouts: _FanoutsKey, root_type: NodeType) -> tuple[str | None, ...]:
    """:func:`_aggregate_groups` of hashable fanouts: worked out once per model, not per
    verdict."""
    caps = dict(fanouts)
    groups = RELATION_GROUPS.get(root_type, {})
    first = {RELATIONS[rel][1]: rel for rel, c in caps.items()
             if RELATIONS[rel][0] == root_type and c and c[0] > 0}
    out: list[str | None] = []
    for t, rel, hop in aggregate_blocks(caps):
        path = (rel,) if hop == 1 else (first.get(RELATIONS[rel][0], ""), rel)
        group = next((g for g, paths in groups.items()
                      if any(path[:len(p)] == p for p in paths)), None)
        out += [group] * (1 + 2 * len(NODE_FEATURES[t]))
    return tuple(out)


def _credit_attributions(pipeline: ScoringPipeline, prepared: Prepared, fraud_logit: np.ndarray,
                         pd_logit: np.ndarray, ig_pd: np.ndarray, occ_pd: np.ndarray,
                         pd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The default side explained as the credit model decides it: its per-input shares of the
    default log-odds (:meth:`CreditHazardModel.contributions`) on the root features it reads;
    ``pd`` is the probability the scores carry (computed once, not again here).

    The credit model reads the neighbourhood only through root features (contacts and
    co-borrowers in default, shared entities), so no relation group is occluded for it. The
    share of a GNN logit it reads (:data:`gnn.nn.credit_hazard.GNN_INPUTS`) is not split over
    features here: it stays in the baseline, and the reasons name what the features explain.

    Returns:
        the explained log-odds, their baseline, ``[R, F]`` and ``[R, G]`` attributions.
    """
    credit = pipeline.credit
    assert credit is not None
    x = credit.inputs(prepared.root_x, prepared.root_names, fraud_logit, pd_logit)
    shares, base = credit.contributions(x, pd)
    feats = np.zeros_like(ig_pd)
    inputs = credit.input_names
    for k in (k for k, name in enumerate(inputs) if name in credit.gnn_inputs):
        base = base + shares[:, k]
    own = [k for k, name in enumerate(inputs) if name not in credit.gnn_inputs]
    feats[:, _columns(prepared.root_names, [inputs[k] for k in own])] += shares[:, own]
    return base + feats.sum(axis=1), base, feats, np.zeros_like(occ_pd)


@functools.lru_cache(maxsize=8)
def _quadrature(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes on ``(0, 1)`` (float32) and weights (float64, sum 1)."""
    x, w = np.polynomial.legendre.leggauss(steps)
    return ((x + 1.0) / 2.0).astype(np.float32), w / 2.0


def _stacked(model: Callable[[TreeBatch], RiskOutput]) -> StackedEnsemble:
    """The scoring model as a :class:`StackedEnsemble` (an ensemble's is already one)."""
    if isinstance(model, StackedEnsemble):
        return model
    if isinstance(model, HeteroRiskEnsemble):
        return StackedEnsemble(list(model.members))  # type: ignore[arg-type]
    assert isinstance(model, HeteroRiskGNN), type(model)
    # NOTE: a single network scores through its own forward; stacked alone it computes the
    # same function (float rounding apart), and only the stacked form exposes its root rows.
    return StackedEnsemble([model])


@dataclass(frozen=True)
class _Variants:
    """Every variant of a batch of trees as one rooted graph that shares unchanged parts.

    Root rows: every root with its whole tree (row ``i``), then one row per ``(tree, group)``
    pair whose tree has a node in the group, without that group's nodes. A pair whose group
    hangs two hops down gets a copy of the child those nodes hang from (``dirty``), which the
    pair's root row links to instead.

    Args:
        trees (SampledTrees): the original trees.
        gtype, depth, parent, rel, tree, gtop (np.ndarray): per original node, in the global
            order (types in :data:`gnn.data.lending_graph.NODE_TYPES` order): its type index,
            depth, global parent (``-1`` for roots), relation id, tree, and the group it tops
            (``-1``: none).
        offsets (np.ndarray): first global index of each type ``[T + 1]``.
        pair_tree, pair_group (np.ndarray): the ``(tree, group)`` pairs ``[P]``.
        dirty_pair, dirty_node (np.ndarray): the copied children: their pair and node ``[D]``.
    """

    trees: SampledTrees
    gtype: np.ndarray
    depth: np.ndarray
    parent: np.ndarray
    rel: np.ndarray
    tree: np.ndarray
    gtop: np.ndarray
    offsets: np.ndarray
    pair_tree: np.ndarray
    pair_group: np.ndarray
    dirty_pair: np.ndarray
    dirty_node: np.ndarray

    @classmethod
    def of(cls, trees: SampledTrees, groups: list[tuple[str, tuple[tuple[str, ...], ...]]]
           ) -> _Variants:
        sizes = [trees.num_nodes(t) for t in NODE_TYPES]
        offsets = np.zeros(len(NODE_TYPES) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        gtype = np.repeat(np.arange(len(NODE_TYPES), dtype=np.int64), sizes)
        depth = np.concatenate([trees.depth[t] for t in NODE_TYPES]).astype(np.int64)
        rel = np.concatenate([trees.rel[t] for t in NODE_TYPES]).astype(np.int64)
        tree = np.concatenate([trees.tree[t] for t in NODE_TYPES]).astype(np.int64)
        local_parent = np.concatenate([trees.parent[t] for t in NODE_TYPES]).astype(np.int64)
        has_parent = rel >= 0
        parent = np.full(depth.shape[0], -1, dtype=np.int64)
        parent[has_parent] = (offsets[_REL_PARENT_TYPE[rel[has_parent]]]
                              + local_parent[has_parent])
        n_rel = len(_REL_NAMES)
        top1 = np.full(n_rel, -1, dtype=np.int64)
        top2 = np.full((n_rel, n_rel), -1, dtype=np.int64)
        for g, (_, paths) in enumerate(groups):
            for path in paths:
                ids = [RELATION_IDS[p] for p in path]
                if len(ids) == 1:
                    top1[ids[0]] = g
                else:
                    top2[ids[0], ids[1]] = g
        first = np.where(depth == 1, rel, -1)
        for d in range(2, int(depth.max(initial=0)) + 1):
            at = np.flatnonzero(depth == d)
            first[at] = first[parent[at]]
        gtop = np.full(depth.shape[0], -1, dtype=np.int64)
        d1 = depth == 1
        gtop[d1] = top1[rel[d1]]
        d2 = np.flatnonzero(depth == 2)
        gtop[d2] = top2[first[d2], rel[d2]]
        tops = np.flatnonzero(gtop >= 0)
        n_groups = max(len(groups), 1)
        pair_keys, top_pair = np.unique(tree[tops] * n_groups + gtop[tops], return_inverse=True)
        deep = depth[tops] == 2
        dirty_keys = np.unique(top_pair[deep].astype(np.int64) * depth.shape[0]
                               + parent[tops[deep]])
        return cls(trees, gtype, depth, parent, rel, tree, gtop, offsets,
                   pair_keys // n_groups, pair_keys % n_groups,
                   dirty_keys // depth.shape[0], dirty_keys % depth.shape[0])

    def batch(self, norm: Prepared, num_layers: int) -> TreeBatch:
        """The variants' :class:`TreeBatch` (root features zero: the caller sets them)."""
        trees = self.trees
        r = trees.num_roots
        n = self.depth.shape[0]
        rt = _TYPE_INDEX[trees.root_type]
        roots = self.offsets[rt] + np.arange(r, dtype=np.int64)
        # items: root rows, the original non-root nodes, the copied children
        root_src = np.concatenate([roots, roots[self.pair_tree]])
        others = np.flatnonzero(self.depth > 0)
        src = np.concatenate([root_src, others, self.dirty_node])
        n_roots = root_src.shape[0]
        item_type = self.gtype[src]
        item_depth = np.where(np.arange(src.shape[0]) < n_roots, 0, self.depth[src])
        order = np.lexsort((np.arange(src.shape[0]), item_depth, item_type))
        counts = np.bincount(item_type, minlength=len(NODE_TYPES))
        starts = np.zeros(len(NODE_TYPES), dtype=np.int64)
        np.cumsum(counts[:-1], out=starts[1:])
        row = np.empty(src.shape[0], dtype=np.int64)
        row[order] = np.arange(src.shape[0]) - starts[item_type[order]]
        new = np.full(n, -1, dtype=np.int64)
        new[others] = row[n_roots:n_roots + others.shape[0]]
        dirty_row = row[n_roots + others.shape[0]:]
        root_row = row[:r]
        pair_row = row[r:n_roots]

        child: list[np.ndarray] = []
        par: list[np.ndarray] = []
        rel: list[np.ndarray] = []
        # the original edges below the roots
        deep = np.flatnonzero(self.depth >= 2)
        child.append(new[deep])
        par.append(new[self.parent[deep]])
        rel.append(self.rel[deep])
        # the roots' children
        d1 = np.flatnonzero(self.depth == 1)
        child.append(new[d1])
        par.append(root_row[self.tree[d1]])
        rel.append(self.rel[d1])
        # the root's children under each pair's root, less the group, copies where dirty
        by_tree = d1[np.argsort(self.tree[d1], kind="stable")]
        lo = np.searchsorted(self.tree[by_tree], self.pair_tree, side="left")
        hi = np.searchsorted(self.tree[by_tree], self.pair_tree, side="right")
        p, u = _expand(lo, hi)
        u = by_tree[u]
        keep = self.gtop[u] != self.pair_group[p]
        p, u = p[keep], u[keep]
        c = new[u]
        if self.dirty_node.shape[0]:
            key = p * n + u
            dkey = self.dirty_pair * n + self.dirty_node
            at = np.minimum(np.searchsorted(dkey, key), dkey.shape[0] - 1)
            hit = dkey[at] == key
            c = np.where(hit, dirty_row[at], c)
        child.append(c)
        par.append(pair_row[p])
        rel.append(self.rel[u])
        # the copied children's own children, less the group
        d2 = np.flatnonzero(self.depth == 2)
        by_parent = d2[np.argsort(self.parent[d2], kind="stable")]
        lo = np.searchsorted(self.parent[by_parent], self.dirty_node, side="left")
        hi = np.searchsorted(self.parent[by_parent], self.dirty_node, side="right")
        k, w = _expand(lo, hi)
        w = by_parent[w]
        keep = self.gtop[w] != self.pair_group[self.dirty_pair[k]]
        k, w = k[keep], w[keep]
        child.append(new[w])
        par.append(dirty_row[k])
        rel.append(self.rel[w])

        all_child, all_par, all_rel = (np.concatenate(a) for a in (child, par, rel))
        by_rel = np.argsort(all_rel, kind="stable")
        bounds = np.searchsorted(all_rel[by_rel], np.arange(len(_REL_NAMES) + 1))
        edges = {name: (all_child[by_rel[bounds[i]:bounds[i + 1]]],
                        all_par[by_rel[bounds[i]:bounds[i + 1]]])
                 for i, name in enumerate(_REL_NAMES)}
        x: dict[NodeType, np.ndarray] = {}
        depth: dict[NodeType, np.ndarray] = {}
        for ti, t in enumerate(NODE_TYPES):
            items = order[starts[ti]:starts[ti] + counts[ti]]
            x[t] = norm.x[t][src[items] - self.offsets[ti]]
            depth[t] = item_depth[items]
        root_x = np.zeros((n_roots, norm.root_x.shape[1]), dtype=np.float32)
        return TreeBatch.from_edges(trees.root_type, n_roots, x, root_x, depth, edges,
                                    num_layers)
