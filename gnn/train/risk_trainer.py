"""`train_risk_model`: fit a :class:`ScoringPipeline` on a lending graph under a time split.

* Seeds: every application before ``T1`` (fraud target; default target on mature loans), a
  sample of users and every merchant at random times before ``T1`` (account and merchant fraud,
  the scores batch rescoring writes). Validation seeds are the same kinds in ``[T1, T2)``
  (minus the label-maturity embargo).
* Targets are the labels visible before ``T2`` (:func:`gnn.data.time_split.application_targets`).
* Class imbalance: positive weight ``sqrt(negatives / positives)`` in the loss, per head.
* Two phases. First the whole network learns from application seeds, early-stopped on the
  validation AUPRC of application fraud (validation applications old enough at ``T2`` for their
  labels to have arrived). Then only the parameters that user and merchant roots alone use
  (their input, last layer and heads) learn from user and merchant seeds, early-stopped on user
  validation AUPRC: application scores are untouched by the second phase.
* Calibration (isotonic or Platt) per root type and head, fitted on validation seeds only.
* Seeds everywhere: torch, the batch order, the seed sample, the neighbour sampler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from torch import nn

from gnn.train.calibration import Calibrator, Method
from gnn.train.credit_trainer import CreditTrainConfig, train_credit_model
from gnn.train.fraud_blend_trainer import train_fraud_blend
from gnn.errors import ModelError
from gnn.features.feature_normaliser import FeatureNormaliser
from gnn.nn.credit_hazard import CreditHazardModel
from gnn.nn.fraud_blend import FraudBlend, blend_inputs
from gnn.nn.hetero_risk_gnn import HeteroRiskEnsemble, HeteroRiskGNN
from gnn.data.lending_graph import NODE_TYPES, LendingGraph
from gnn.features.risk_features import ApplicationQueries
from gnn.pipeline import PipelineConfig, Prepared, ScoringPipeline
from gnn.data.time_split import ApplicationTargets, TimeSplit, application_targets

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RiskTrainConfig:
    """Optimisation settings.

    Args:
        epochs (int): most epochs. (default: ``20``)
        patience (int): epochs without a better validation AUPRC before stopping. (default: ``4``)
        lr (float): AdamW learning rate. (default: ``3e-3``)
        weight_decay (float): AdamW weight decay. (default: ``1e-4``)
        batch_size (int): seeds per step. (default: ``512``)
        pd_weight (float): weight of the default loss. (default: ``0.5``)
        node_epochs (int): most epochs of the second phase (user and merchant roots).
            (default: ``4``)
        user_seeds (int): users sampled per split as seeds. (default: ``20000``)
        calibration (Method): fraud heads: ``"auto"``, ``"isotonic"`` or ``"platt"``.
            (default: ``"auto"``)
        pd_calibration (Method): default heads; Platt by default because the loans that
            calibrate them are few and older than the loans scored, where a step function's
            empty extremes (probability 0) do not carry over. (default: ``"platt"``)
        average_top (int): the weights of this many best epochs (validation AUPRC) are
            averaged into each member. (default: ``3``)
        members (int): networks trained from seeds ``seed, seed + 1, ...`` whose logits are
            averaged (:class:`gnn.nn.hetero_risk_gnn.HeteroRiskEnsemble`); 1 for a single
            network. (default: ``3``)
        max_minutes (float): stop starting new epochs after this much training time; the
            best epochs so far are kept. (default: ``10``)
        seed (int): seed of torch and of every draw. (default: ``0``)
        device (str): ``"cpu"`` or ``"cuda"``. (default: ``"cpu"``)
        threads (int): torch CPU threads, 0 to leave torch's default; small tree batches run
            fastest on one thread of a shared machine. (default: ``1``)
        credit (CreditTrainConfig, optional): the credit model that gives applications their
            probability of default (:mod:`gnn.train.credit_trainer`); ``None`` leaves it to
            the GNN's default head. (default: defaults)
        fraud_blend (bool): blend the GNN's fraud logit of applications with gradient-boosted
            trees over their root features and neighbour aggregates
            (:mod:`gnn.train.fraud_blend_trainer`); ``False`` lets the GNN's logit decide
            alone. (default: ``True``)
    """

    epochs: int = 20
    patience: int = 4
    lr: float = 3e-3
    weight_decay: float = 1e-4
    batch_size: int = 512
    pd_weight: float = 0.5
    node_epochs: int = 4
    user_seeds: int = 20_000
    calibration: Method = "auto"
    pd_calibration: Method = "platt"
    average_top: int = 3
    members: int = 3
    max_minutes: float = 10.0
    seed: int = 0
    device: str = "cpu"
    threads: int = 1
    credit: CreditTrainConfig | None = field(default_factory=CreditTrainConfig)
    fraud_blend: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SeedSet:
    """Prepared, normalised seeds of one root type with their targets.

    Args:
        data (Prepared): normalised trees and features.
        fraud (np.ndarray): float32 target ``[R]``.
        pd (np.ndarray): float32 target ``[R]``.
        pd_mask (np.ndarray): bool ``[R]``: whether ``pd`` is a training target.
    """

    data: Prepared
    fraud: np.ndarray
    pd: np.ndarray
    pd_mask: np.ndarray

    def __len__(self) -> int:
        return len(self.data)


@dataclass
class RiskTrainResult:
    """What training produced.

    Args:
        pipeline (ScoringPipeline): the calibrated pipeline, best epoch.
        history (list[dict]): per epoch: loss, validation AUPRC and AUROC, seconds.
        metrics (dict): validation metrics of the calibrated pipeline.
        seconds (dict): wall time per stage.
        split (TimeSplit): the split used.
        best_epoch (int): the epoch whose weights were kept.
    """

    pipeline: ScoringPipeline
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    seconds: dict[str, float]
    split: TimeSplit
    best_epoch: int
    counts: dict[str, int] = field(default_factory=dict)


def _node_seeds(graph: LendingGraph, node_type: str, lo: int, hi: int, n: int, cutoff: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n`` nodes that exist before ``hi`` (first every one labelled before ``cutoff``),
    each at a random time in ``[max(lo, created), hi)``."""
    created = graph.attrs[node_type]["created_at"]
    ok = np.flatnonzero(created < hi)
    labelled = ok[graph.fraud_at[node_type][ok] < cutoff]
    others = np.setdiff1d(ok, labelled)
    take = max(n - labelled.shape[0], 0)
    chosen = np.sort(np.concatenate([labelled, rng.permutation(others)[:take]]))
    start = np.maximum(created[chosen], lo)
    times = start + (rng.random(chosen.shape[0]) * np.maximum(hi - start, 1)).astype(np.int64)
    return chosen, times


def _auprc(y: np.ndarray, s: np.ndarray) -> float:
    return float(average_precision_score(y, s)) if 0 < y.sum() < y.shape[0] else float("nan")


def _auroc(y: np.ndarray, s: np.ndarray) -> float:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < y.shape[0] else float("nan")


def train_risk_model(
    graph: LendingGraph,
    split: TimeSplit,
    config: PipelineConfig | None = None,
    train_config: RiskTrainConfig | None = None,
    *,
    log: Callable[[str], None] | None = None,
) -> RiskTrainResult:
    """Train, early-stop and calibrate a pipeline on ``graph``.

    Args:
        graph (LendingGraph): the graph (labels visible after ``split.t2`` are never read).
        split (TimeSplit): the time split.
        config (PipelineConfig, optional): sampler and model shape. (default: defaults)
        train_config (RiskTrainConfig, optional): optimisation. (default: defaults)
        log (Callable[[str], None], optional): progress lines. (default: the module logger)

    Returns:
        RiskTrainResult: the pipeline and its numbers.

    Raises:
        ModelError: if the training or validation period holds no positive application.
    """
    cfg = config or PipelineConfig()
    tc = train_config or RiskTrainConfig()
    say = log or logger.info
    seconds: dict[str, float] = {}
    t_start = time.perf_counter()
    torch.manual_seed(tc.seed)
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    rng = np.random.default_rng(tc.seed)
    targets = application_targets(graph, split)
    if targets.fraud[targets.train].sum() == 0 or targets.fraud[targets.val_choose].sum() == 0:
        raise ModelError("no fraud label visible before T2 in the training or validation period")

    # untrained pipeline shell: prepares seeds, later receives normalisers and weights
    pipe = ScoringPipeline(cfg, HeteroRiskGNN({t: 1 for t in NODE_TYPES}, {}), {}, {}, {}, {})
    # NOTE: features of the whole training set at once: on a GPU the kernels run there.
    pipe.use_kernels(tc.device)
    t0 = time.perf_counter()
    raw: dict[str, Prepared] = {}
    tg: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    train_apps = np.flatnonzero(targets.train)
    val_apps = np.flatnonzero(targets.val_choose)
    raw["app_train"] = pipe.prepare_applications(
        graph, ApplicationQueries.from_graph(graph, train_apps))
    tg["app_train"] = (targets.fraud[train_apps], targets.pd[train_apps],
                       targets.pd_train[train_apps])
    # NOTE: the default head calibrates on mature loans of the training period that it did not
    # train on (targets.pd_val), not on the validation period, where no loan has matured yet.
    pd_cal = targets.pd_val[train_apps]
    raw["app_val"] = pipe.prepare_applications(graph, ApplicationQueries.from_graph(graph,
                                                                                    val_apps))
    tg["app_val"] = (targets.fraud[val_apps], targets.pd[val_apps], targets.pd_val[val_apps])
    lo = int(graph.attrs["Application"]["ts"].min())
    cut = split.label_cutoff
    for node_type, n in (("User", tc.user_seeds), ("Merchant", graph.num_nodes("Merchant"))):
        for part, (a, b) in (("train", (lo, split.t1)),
                             ("val", (split.t1, split.val_mature_before))):
            pos, times = _node_seeds(graph, node_type, a, b, n, cut, rng)
            raw[f"{node_type}_{part}"] = pipe.prepare_nodes(graph, node_type, pos, times)
            fraud = (graph.fraud_at[node_type][pos] < cut).astype(np.float32)
            if node_type == "User":
                pd = (graph.default_at["User"][pos] < cut).astype(np.float32)
                borrowed = graph.relations["user_app"].count_before(pos, times) > 0
            else:
                pd = np.zeros(pos.shape[0], np.float32)
                borrowed = np.zeros(pos.shape[0], bool)
            tg[f"{node_type}_{part}"] = (fraud, pd, borrowed)
    seconds["prepare"] = time.perf_counter() - t0
    counts = {k: len(v) for k, v in raw.items()}
    counts.update({f"{k}_fraud": int(v[0].sum()) for k, v in tg.items()})
    say(f"prepared seeds in {seconds['prepare']:.1f}s: {counts}")

    # normalisation fitted on training seeds only
    train_keys = [k for k in raw if k.endswith("_train")]
    node_norm = {t: FeatureNormaliser().fit(np.concatenate([raw[k].x[t] for k in train_keys]))
                 for t in NODE_TYPES}
    root_norm = {raw[k].root_type: FeatureNormaliser().fit(raw[k].root_x) for k in train_keys}
    names = {raw[k].root_type: list(raw[k].root_names) for k in train_keys}
    node_channels = {t: raw["app_train"].x[t].shape[1] for t in NODE_TYPES}

    def member() -> HeteroRiskGNN:
        return HeteroRiskGNN(node_channels,
                             {rt: len(n) for rt, n in names.items()},
                             hidden_channels=cfg.hidden_channels,
                             embedding_dim=cfg.embedding_dim, num_layers=cfg.num_layers,
                             dropout=cfg.dropout)

    pipe = ScoringPipeline(cfg, member(), node_norm, root_norm, {}, names)
    sets = {k: SeedSet(pipe.normalise(v), *tg[k]) for k, v in raw.items()}
    # the fraud blend's trees read the raw applications (root features, neighbour aggregates)
    blend_x = ({k: blend_inputs(raw[k].trees, raw[k].x, raw[k].root_x, raw[k].root_names,
                                raw[k].root_names, cfg.fanouts["Application"])
                for k in ("app_train", "app_val")} if tc.fraud_blend else {})
    del raw

    device = torch.device(tc.device)
    pos_w = {}
    for key in ("app_train", "User_train", "Merchant_train"):
        s = sets[key]
        pos_w[key] = _pos_weight(s.fraud), _pos_weight(s.pd[s.pd_mask])
    t0 = time.perf_counter()
    history: list[dict[str, Any]] = []
    # phase 1, per member: the whole network on application seeds, chosen on application
    # validation; members differ only in their seed.
    members: list[HeteroRiskGNN] = []
    best, best_epoch = -1.0, -1
    n_members = max(tc.members, 1)
    for i in range(n_members):
        torch.manual_seed(tc.seed + i)
        model = member().to(device)
        pipe.model = model
        deadline = t0 + tc.max_minutes * 60 * (i + 1) / n_members
        ap_i, ep_i = _fit(pipe, sets, ("app_train",), "app_val", list(model.parameters()), tc,
                          pos_w, np.random.default_rng([tc.seed, i]), device, history,
                          f"applications[{i}]", say, deadline=deadline)
        members.append(model)
        if ap_i > best:
            best, best_epoch = ap_i, ep_i
    ensemble = HeteroRiskEnsemble(members) if n_members > 1 else members[0]
    pipe.model = ensemble
    if n_members > 1:
        val = _predict_normalised(pipe, sets["app_val"].data, device)
        best = _auprc(sets["app_val"].fraud, val[0])
        say(f"ensemble of {n_members}: validation AUPRC {best:.4f}")
    # phase 2: the account and merchant roots' own last layer, input and heads, on user and
    # merchant seeds; every parameter the application scores depend on stays frozen.
    node_params = [p for n, p in ensemble.named_parameters() if _node_only(n, cfg.num_layers)]
    if node_params and tc.node_epochs > 0:
        _fit(pipe, sets, ("User_train", "Merchant_train"), "User_val", node_params,
             replace(tc, epochs=tc.node_epochs), pos_w, rng, device, history, "accounts", say,
             deadline=time.perf_counter() + tc.max_minutes * 60 / 4)
    seconds["train"] = time.perf_counter() - t0
    ensemble.to("cpu")

    metrics: dict[str, Any] = {"best_epoch": best_epoch, "best_val_auprc": best}
    # the network's validation outputs: what the blend weighs and what calibration maps
    val_out = {key: _predict_normalised(pipe, sets[key].data, torch.device("cpu"))
               for key in ("app_val", "User_val", "Merchant_val")}
    if blend_x:
        t0 = time.perf_counter()
        pipe.fraud_blend = _fraud_blend(pipe, sets, blend_x, val_out["app_val"][0], tc, metrics,
                                        say)
        seconds["fraud_blend"] = time.perf_counter() - t0
    # calibration on validation seeds only
    t0 = time.perf_counter()
    calibrators: dict[str, Calibrator] = {}
    for key, rt in (("app_val", "Application"), ("User_val", "User"),
                    ("Merchant_val", "Merchant")):
        s = sets[key]
        fl, pl, _ = val_out[key]
        if rt == "Application" and pipe.fraud_blend is not None:
            # NOTE: the blend decides, so its log-odds are what the fraud calibrator maps
            fl = pipe.deciding_fraud_logit(rt, fl, blend_x["app_val"])
        pd_source = (pl, s.pd, s.pd_mask)
        if rt == "Application":
            tr = sets["app_train"]
            sel = np.flatnonzero(pd_cal)
            pl_cal = _predict_normalised(pipe, tr.data.select(sel), torch.device("cpu"))[1]
            pd_source = (pl_cal, tr.pd[sel], np.ones(sel.shape[0], bool))
        for head, logits, target, mask in (("fraud", fl, s.fraud, np.ones(len(s), bool)),
                                           ("pd", *pd_source)):
            yy, zz = target[mask], logits[mask]
            name = f"{rt}.{head}"
            if 0 < yy.sum() < yy.shape[0]:
                method = tc.calibration if head == "fraud" else tc.pd_calibration
                calibrators[name] = Calibrator(method).fit(zz, yy)
                p = calibrators[name](zz)
                metrics[f"val_{name}_auprc"] = _auprc(yy, p)
                metrics[f"val_{name}_auroc"] = _auroc(yy, p)
                metrics[f"val_{name}_brier"] = float(np.mean((p - yy) ** 2))
                metrics[f"val_{name}_n"] = int(yy.shape[0])
                metrics[f"val_{name}_positives"] = int(yy.sum())
            else:
                say(f"no calibration for {name}: validation has one class only")
    pipe.calibrators = calibrators
    seconds["calibrate"] = time.perf_counter() - t0
    del blend_x
    if tc.credit is not None:
        t0 = time.perf_counter()
        pipe.credit = _credit_model(graph, split, pipe, tc.credit, metrics, say)
        seconds["credit"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - t_start
    say(f"trained in {seconds['total']:.1f}s, best epoch {best_epoch} "
        f"(application val AUPRC {best:.4f})")
    return RiskTrainResult(pipe, history, metrics, seconds, split, best_epoch, counts)


def _fraud_blend(pipe: ScoringPipeline, sets: Mapping[str, SeedSet],
                 blend_x: Mapping[str, np.ndarray], val_logit: np.ndarray,
                 tc: RiskTrainConfig, metrics: dict[str, Any],
                 say: Callable[[str], None]) -> FraudBlend | None:
    """The fraud blend of the trained GNN (``val_logit``: its fraud logit of the validation
    applications), or ``None`` (logged, in ``metrics``) when the periods hold one class only."""
    try:
        blend = train_fraud_blend(
            blend_x["app_train"], sets["app_train"].fraud, blend_x["app_val"],
            sets["app_val"].fraud, val_logit, pipe.root_feature_names["Application"],
            pipe.config.fanouts["Application"], seed=tc.seed, threads=tc.threads, log=say)
    except ModelError as e:
        say(f"no fraud blend, the GNN's logit decides alone: {e}")
        metrics["fraud_blend"] = f"none: {e}"
        return None
    metrics["fraud_blend"] = repr(blend)
    y = sets["app_val"].fraud
    metrics["val_gnn_alone_auprc"] = _auprc(y, val_logit)
    metrics["val_trees_alone_auprc"] = _auprc(y, blend.trees_logit(blend_x["app_val"]))
    return blend


def _credit_model(graph: LendingGraph, split: TimeSplit, pipe: ScoringPipeline,
                  config: CreditTrainConfig, metrics: dict[str, Any],
                  say: Callable[[str], None]) -> CreditHazardModel | None:
    """The credit model on every loan applied for before ``T2``, or ``None`` (logged, in
    ``metrics``) when the world holds too few visible defaults to learn one."""
    apps = np.flatnonzero(graph.attrs["Application"]["ts"] < split.t2)
    root_x, names, groups = pipe.bind(graph)[1].application_features(
        ApplicationQueries.from_graph(graph, apps))
    fl = pl = None
    if config.gnn_inputs:
        s = pipe.score_applications(graph, ApplicationQueries.from_graph(graph, apps))
        fl, pl = s.gnn_logit, s.pd_logit
    try:
        model = train_credit_model(graph, apps, root_x, names, groups, split.label_cutoff,
                                   config, fraud_logit=fl, pd_logit=pl, recent_from=split.t1,
                                   log=say)
    except ModelError as e:
        say(f"no credit model, the GNN's default head gives the probability of default: {e}")
        metrics["credit_model"] = f"none: {e}"
        return None
    metrics["credit_model"] = repr(model)
    return model


def _node_only(name: str, num_layers: int) -> bool:
    """Parameters only user and merchant roots use: their input, last layer and heads."""
    if name.startswith("members."):
        name = name.split(".", 2)[2]
    for rt in ("User", "Merchant"):
        if name.startswith((f"root_in.{rt}.", f"embed.{rt}.", f"fraud_head.{rt}.",
                            f"pd_head.{rt}.", f"convs.{num_layers - 1}.{rt}.",
                            f"norms.{num_layers - 1}.{rt}.")):
            return True
    return False


def _fit(pipe: ScoringPipeline, sets: dict[str, SeedSet], train_keys: tuple[str, ...],
         val_key: str, params: list[torch.nn.Parameter], tc: RiskTrainConfig,
         pos_w: dict[str, tuple[float, float]], rng: np.random.Generator, device: torch.device,
         history: list[dict[str, Any]], phase: str, say: Callable[[str], None], *,
         deadline: float) -> tuple[float, int]:
    """Train ``params`` on ``train_keys`` seeds, keep the epoch best on ``val_key`` AUPRC."""
    model = pipe.model
    trainable = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) in trainable)
    opt = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    best, best_epoch, bad = -1.0, -1, 0
    top: list[tuple[float, int, dict[str, torch.Tensor]]] = []
    for epoch in range(tc.epochs):
        te = time.perf_counter()
        model.train()
        steps = _epoch_plan(sets, train_keys, tc.batch_size, rng)
        total = 0.0
        for key, roots in steps:
            s = sets[key]
            out = model(pipe.batch(s.data.select(roots)).to(device))
            fw, pw = pos_w[key]
            y = torch.from_numpy(s.fraud[roots]).to(device)
            loss = nn.functional.binary_cross_entropy_with_logits(
                out.fraud_logit, y, pos_weight=torch.tensor(fw, device=device))
            m = torch.from_numpy(s.pd_mask[roots]).to(device)
            if bool(m.any()):
                yp = torch.from_numpy(s.pd[roots]).to(device)
                loss = loss + tc.pd_weight * nn.functional.binary_cross_entropy_with_logits(
                    out.pd_logit[m], yp[m], pos_weight=torch.tensor(pw, device=device))
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += float(loss.detach())
        val = _predict_normalised(pipe, sets[val_key].data, device)
        y_val = sets[val_key].fraud
        ap, auc = _auprc(y_val, val[0]), _auroc(y_val, val[0])
        history.append({"phase": phase, "epoch": epoch, "loss": total / max(len(steps), 1),
                        "val_auprc": ap, "val_auroc": auc,
                        "seconds": time.perf_counter() - te})
        say(f"{phase} epoch {epoch}: loss {history[-1]['loss']:.4f} val AUPRC {ap:.4f} "
            f"AUROC {auc:.4f} ({history[-1]['seconds']:.1f}s)")
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        top = sorted([*top, (ap if np.isfinite(ap) else -1.0, epoch, state)],
                     key=lambda x: (-x[0], x[1]))[: tc.average_top]
        if ap > best:
            best, best_epoch, bad = ap, epoch, 0
        else:
            bad += 1
            if bad >= tc.patience:
                break
        if time.perf_counter() > deadline:
            say(f"{phase}: time budget reached after epoch {epoch}")
            break
    # NOTE: the weights of the best few epochs, averaged (one basin, SWA-like), rank more
    # robustly than the single best epoch, whose choice on a few hundred validation positives
    # is noisy (decided on a separate development world, docs/EVALUATION.md).
    averaged = {k: torch.stack([t[2][k].float() for t in top]).mean(0).to(v.dtype)
                for k, v in top[0][2].items()}
    model.load_state_dict(averaged)
    for p in model.parameters():
        p.requires_grad_(True)
    val = _predict_normalised(pipe, sets[val_key].data, device)
    final = _auprc(sets[val_key].fraud, val[0])
    say(f"{phase}: best epoch {best_epoch} (validation AUPRC {best:.4f}); average of epochs "
        f"{sorted(t[1] for t in top)}: {final:.4f}")
    history.append({"phase": phase, "epoch": "average", "epochs": sorted(t[1] for t in top),
                    "val_auprc": final})
    return final, best_epoch


def _pos_weight(y: np.ndarray) -> float:
    pos = float(y.sum())
    neg = float(y.shape[0]) - pos
    return float(np.sqrt(neg / pos)) if pos > 0 and neg > 0 else 1.0


def _epoch_plan(sets: dict[str, SeedSet], keys: tuple[str, ...], batch_size: int,
                rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """Shuffled batches of the given training seed sets, interleaved at random."""
    steps: list[tuple[str, np.ndarray]] = []
    for key in keys:
        n = len(sets[key])
        if n == 0:
            continue
        order = rng.permutation(n)
        for lo in range(0, n, batch_size):
            steps.append((key, np.sort(order[lo:lo + batch_size])))
    perm = rng.permutation(len(steps))
    return [steps[i] for i in perm]


def _predict_normalised(pipe: ScoringPipeline, data: Prepared, device: torch.device,
                        batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw logits and embeddings of already normalised seeds."""
    model = pipe.model
    was = model.training
    model.eval()
    fl, pl, emb = [], [], []
    with torch.inference_mode():
        for lo in range(0, len(data), batch_size):
            chunk = data.select(np.arange(lo, min(lo + batch_size, len(data))))
            out = model(pipe.batch(chunk).to(device))
            fl.append(out.fraud_logit.cpu().numpy())
            pl.append(out.pd_logit.cpu().numpy())
            emb.append(out.embedding.cpu().numpy())
    model.train(was)
    if not fl:
        return np.zeros(0), np.zeros(0), np.zeros((0, model.embedding_dim))
    return np.concatenate(fl), np.concatenate(pl), np.concatenate(emb)


__all__ = ["ApplicationTargets", "SeedSet", "RiskTrainConfig", "RiskTrainResult", "train_risk_model"]
