"""`ScoringPipeline`: features -> neighbourhood -> model -> calibration, the one path every score
takes — training, batch rescoring and online scoring of a single application.

A pipeline holds what a trained model is (configuration, weights, feature normalisation,
calibration); a :class:`~gnn.data.lending_graph.LendingGraph` is the graph state it reads. Scoring is
per seed and independent of the batch: the sampler draws by hashed ids, the features read only
the seed's own events and neighbourhood, so scoring one application online gives what scoring
all of them in a batch gives for it (up to float summation order in the dense layers).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import numpy as np
import torch

import kernels as K
from gnn.train.calibration import Calibrator
from gnn.errors import ModelError
from gnn.features.feature_normaliser import FeatureNormaliser
from gnn.nn.hetero_risk_gnn import HeteroRiskEnsemble, HeteroRiskGNN, RiskOutput, TreeBatch
from gnn.data.lending_graph import NODE_TYPES, LendingGraph
from gnn.data.neighbour_sampler import NeighbourSampler, SampledTrees, Seeds
from gnn.features.risk_features import NODE_FEATURES, ApplicationQueries, RiskFeatures
from gnn.nn.credit_hazard import CreditHazardModel
from gnn.nn.fraud_blend import FraudBlend
from gnn.nn.stacked_ensemble import StackedEnsemble
from graph.typing import NodeType

_USER_ENTITIES: Final = {"user_device": 4, "user_phone": 2, "user_home": 2, "user_work": 2,
                         "user_ip": 4}

DEFAULT_FANOUTS: Final[dict[NodeType, dict[str, list[int]]]] = {
    "Application": {
        "app_user": [1], "app_device": [1], "app_ip": [1], "app_merchant": [1],
        **{k: [0, v] for k, v in _USER_ENTITIES.items()},
        "user_contact": [0, 3], "contact_of": [0, 3], "user_merchant": [0, 3],
        "user_app": [0, 5], "user_owns": [0, 1],
        "device_user": [0, 8], "device_app": [0, 8], "ip_user": [0, 5], "ip_app": [0, 8],
        "merchant_app": [0, 5], "merchant_buyer": [0, 5], "merchant_owner": [0, 1],
    },
    "User": {
        **{k: [v] for k, v in _USER_ENTITIES.items()},
        "user_contact": [3], "contact_of": [3], "user_merchant": [3], "user_app": [5],
        "user_owns": [1],
        "device_user": [0, 5], "device_app": [0, 3], "phone_user": [0, 5], "home_user": [0, 5],
        "work_user": [0, 5], "ip_user": [0, 3], "ip_app": [0, 2], "app_device": [0, 1],
        "app_ip": [0, 1], "merchant_app": [0, 2], "merchant_owner": [0, 1],
    },
    "Merchant": {
        "merchant_app": [10], "merchant_buyer": [10], "merchant_owner": [1],
        "app_user": [0, 1], "app_device": [0, 1], "app_ip": [0, 1], "user_app": [0, 2],
        "user_device": [0, 1], "user_owns": [0, 1],
    },
}
"""Per root type, per relation, the fan-out cap at hop 1 and hop 2."""


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that shapes the pipeline besides learned numbers.

    Args:
        fanouts (dict): per root type, per relation, caps per hop. (default: :data:`DEFAULT_FANOUTS`)
        sampler_seed (int): seed of the neighbour sampler. (default: ``0``)
        hub_degree (int): sampler hub threshold. (default: ``50``)
        hub_fanout (int): neighbours drawn from a hub. (default: ``2``)
        pool_size (int): most recent neighbours a draw chooses among. (default: ``64``)
        kernel_hub_degree (int): hub cap of the shared-entity kernel. (default: ``20``)
        hidden_channels (int): model state size. (default: ``64``)
        embedding_dim (int): embedding size. (default: ``64``)
        num_layers (int): message-passing layers; the fan-outs have as many hops. (default: ``2``)
        dropout (float): dropout. (default: ``0.1``)
    """

    fanouts: dict[NodeType, dict[str, list[int]]] = field(
        default_factory=lambda: copy.deepcopy(DEFAULT_FANOUTS))
    sampler_seed: int = 0
    hub_degree: int = 50
    hub_fanout: int = 2
    pool_size: int = 64
    kernel_hub_degree: int = 20
    hidden_channels: int = 64
    embedding_dim: int = 64
    num_layers: int = 2
    dropout: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineConfig:
        return cls(**dict(data))


@dataclass
class Prepared:
    """Sampled trees with raw (not yet normalised) features.

    Args:
        trees (SampledTrees): one tree per seed.
        x (dict[NodeType, np.ndarray]): raw node features per type.
        root_x (np.ndarray): raw root features ``[R, F]``.
        root_names (list[str]): root feature names.
        root_groups (list[str]): ``own``, ``lookup`` or ``graph`` per root feature.
    """

    trees: SampledTrees
    x: dict[NodeType, np.ndarray]
    root_x: np.ndarray
    root_names: list[str]
    root_groups: list[str]

    @property
    def root_type(self) -> NodeType:
        return self.trees.root_type

    def __len__(self) -> int:
        return self.trees.num_roots

    def select(self, roots: np.ndarray) -> Prepared:
        """The seeds at ``roots`` (sorted, unique)."""
        trees, keep = self.trees.select_with_masks(roots)
        return Prepared(trees, {t: v[keep[t]] for t, v in self.x.items()},
                        self.root_x[roots], self.root_names, self.root_groups)


@dataclass
class Scores:
    """Scores of a batch of seeds.

    Args:
        fraud (np.ndarray): calibrated fraud probability ``[R]``.
        pd (np.ndarray): probability of default ``[R]``: the credit model's
            (:class:`~gnn.nn.credit_hazard.CreditHazardModel`) for applications when the
            pipeline has one, else the GNN default head's, calibrated.
        fraud_logit (np.ndarray): the fraud log-odds that decide, before calibration ``[R]``:
            the fraud blend's (:class:`~gnn.nn.fraud_blend.FraudBlend`) for applications when
            the pipeline has one, else the GNN's raw logit.
        pd_logit (np.ndarray): raw logit of the GNN's default head ``[R]`` (an input of the
            credit model, not the logit of ``pd`` when a credit model decides it).
        embedding (np.ndarray): float32 ``[R, embedding_dim]``.
        gnn_fraud_logit (np.ndarray, optional): the GNN's own raw fraud logit ``[R]`` where a
            blend decides; ``None`` when ``fraud_logit`` is the GNN's. (default: ``None``)
    """

    fraud: np.ndarray
    pd: np.ndarray
    fraud_logit: np.ndarray
    pd_logit: np.ndarray
    embedding: np.ndarray
    gnn_fraud_logit: np.ndarray | None = None

    @property
    def gnn_logit(self) -> np.ndarray:
        """The GNN's own raw fraud logit ``[R]``, blended or not."""
        return self.fraud_logit if self.gnn_fraud_logit is None else self.gnn_fraud_logit


class ScoringPipeline:
    """A trained model with everything it needs to score a graph state.

    Args:
        config (PipelineConfig): sampler and model shape.
        model (HeteroRiskGNN or HeteroRiskEnsemble): the network.
        node_norm (Mapping[NodeType, FeatureNormaliser]): per node type.
        root_norm (Mapping[NodeType, FeatureNormaliser]): per root type.
        calibrators (Mapping[str, Calibrator]): ``"<RootType>.fraud"`` / ``"<RootType>.pd"``.
        root_feature_names (Mapping[NodeType, Sequence[str]]): per root type, for checks.
        version (str, optional): registry version. (default: ``"unversioned"``)
        credit (CreditHazardModel, optional): the probability of default of applications;
            without it the GNN's default head gives it. (default: ``None``)
        fraud_blend (FraudBlend, optional): the fraud log-odds of applications, from the GNN's
            and trees over the neighbour aggregates; without it the GNN's logit decides.
            (default: ``None``)
    """

    def __init__(
        self,
        config: PipelineConfig,
        model: HeteroRiskGNN | HeteroRiskEnsemble,
        node_norm: Mapping[NodeType, FeatureNormaliser],
        root_norm: Mapping[NodeType, FeatureNormaliser],
        calibrators: Mapping[str, Calibrator],
        root_feature_names: Mapping[NodeType, Sequence[str]],
        version: str = "unversioned",
        credit: CreditHazardModel | None = None,
        fraud_blend: FraudBlend | None = None,
    ) -> None:
        self.config = config
        self.model = model
        self.node_norm = dict(node_norm)
        self.root_norm = dict(root_norm)
        self.calibrators = dict(calibrators)
        self.root_feature_names = {k: list(v) for k, v in root_feature_names.items()}
        self.version = version
        self.credit = credit
        self.fraud_blend = fraud_blend
        self.kernels: K.Backend = K.CPU
        self._bound: tuple[int, NeighbourSampler, RiskFeatures] | None = None
        self._stacked: tuple[tuple[tuple[int, int], ...], StackedEnsemble] | None = None
        self._params: tuple[torch.nn.Module, list[torch.nn.Parameter]] | None = None

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(version={self.version!r}, model={self.model!r}, "
                f"roots={sorted(self.root_norm)})")

    # -- graph-bound parts ------------------------------------------------------------------------
    def use_kernels(self, device: torch.device | str) -> None:
        """Compute features with the kernels on ``device``: CuPy on a CUDA device (batch
        training and rescoring), NumPy on the CPU (online batches of a few applications, where
        copies to a device would cost more than they save).

        Raises:
            kernels.BackendUnavailableError: a CUDA device is asked for and CuPy cannot use one.
        """
        cuda = torch.device(device).type == "cuda"
        self.kernels = K.select_backend("cuda" if cuda else "cpu")
        self._bound = None

    def bind(self, graph: LendingGraph) -> tuple[NeighbourSampler, RiskFeatures]:
        """The sampler and feature builder of ``graph`` (cached for the last graph)."""
        if self._bound is None or self._bound[0] != id(graph):
            c = self.config
            sampler = NeighbourSampler(graph, c.fanouts, seed=c.sampler_seed,
                                       hub_degree=c.hub_degree, hub_fanout=c.hub_fanout,
                                       pool_size=c.pool_size)
            feats = RiskFeatures(graph, hub_degree=c.kernel_hub_degree, kernels=self.kernels)
            self._bound = (id(graph), sampler, feats)
        return self._bound[1], self._bound[2]

    # -- features and neighbourhood -----------------------------------------------------------------
    def prepare_applications(self, graph: LendingGraph, apps: ApplicationQueries) -> Prepared:
        """Sample and featurise application seeds (as of their own times)."""
        sampler, feats = self.bind(graph)
        trees = sampler.sample(apps.seeds())
        x, root_x, names, groups = feats.seed_features(trees, apps)
        return Prepared(trees, x, root_x, names, groups)

    def prepare_nodes(self, graph: LendingGraph, node_type: NodeType, positions: np.ndarray,
                      times: np.ndarray) -> Prepared:
        """Sample and featurise ``User`` or ``Merchant`` seeds as of ``times``.

        Raises:
            ValueError: for another node type.
        """
        if node_type not in ("User", "Merchant"):
            raise ValueError(f"node_type must be 'User' or 'Merchant', got {node_type!r}")
        sampler, feats = self.bind(graph)
        positions = np.asarray(positions, dtype=np.int64)
        times = np.asarray(times, dtype=np.int64)
        keys = graph.keys(node_type)[positions]
        trees = sampler.sample(Seeds(node_type, positions, times, keys))
        x = feats.node_features(trees)
        if node_type == "User":
            root_x, names, groups = feats.user_features(positions, times)
        else:
            root_x, names, groups = feats.merchant_features(positions, times)
        return Prepared(trees, x, root_x, names, groups)

    # -- model ------------------------------------------------------------------------------------
    def normalise(self, prepared: Prepared) -> Prepared:
        """The same seeds with normalised features (float32).

        Raises:
            ModelError: if the root features differ from the ones the model was trained on.
        """
        rt = prepared.root_type
        if rt not in self.root_norm:
            raise ModelError(f"this model does not score {rt!r} roots")
        if list(prepared.root_names) != self.root_feature_names[rt]:
            raise ModelError(f"{rt} root features differ from the model's")
        return Prepared(prepared.trees,
                        {t: self.node_norm[t](v) for t, v in prepared.x.items()},
                        self.root_norm[rt](prepared.root_x), prepared.root_names,
                        prepared.root_groups)

    def batch(self, normalised: Prepared) -> TreeBatch:
        """A :class:`TreeBatch` of already normalised seeds."""
        return TreeBatch.build(normalised.trees, normalised.x, normalised.root_x,
                               self.config.num_layers)

    def predict(self, prepared: Prepared, *, device: torch.device | str = "cpu",
                batch_size: int = 4096) -> Scores:
        """Scores of prepared (raw) seeds, in chunks of ``batch_size`` roots.

        Args:
            prepared (Prepared): from :meth:`prepare_applications` or :meth:`prepare_nodes`.
            device (torch.device or str, optional): where the model runs. (default: ``"cpu"``)
            batch_size (int, optional): roots per forward pass. (default: ``4096``)
        """
        norm = self.normalise(prepared)
        device = torch.device(device)
        model = self.scoring_model(device)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        n = len(norm)
        with torch.inference_mode():
            for lo in range(0, n, batch_size):
                # NOTE: one chunk (every online batch) is the whole of ``norm``, no copy
                chunk = norm if n <= batch_size else norm.select(
                    np.arange(lo, min(lo + batch_size, n)))
                out = model(self.batch(chunk).to(device))
                parts.append((out.fraud_logit.float().cpu().numpy(),
                              out.pd_logit.float().cpu().numpy(),
                              out.embedding.float().cpu().numpy()))
        dim = self.model.embedding_dim
        fl = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.float32)
        pl = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.float32)
        emb = np.concatenate([p[2] for p in parts]) if parts else np.zeros((0, dim), np.float32)
        return self.scores(prepared.root_type, fl, pl, emb, prepared.root_x,
                           self.blend_inputs(prepared))

    def blend_inputs(self, prepared: Prepared) -> np.ndarray | None:
        """The fraud blend's inputs of prepared (raw) seeds
        (:meth:`gnn.nn.fraud_blend.FraudBlend.inputs`), ``None`` where no blend decides."""
        if prepared.root_type != "Application" or self.fraud_blend is None:
            return None
        return self.fraud_blend.inputs(prepared.trees, prepared.x, prepared.root_x,
                                       prepared.root_names)

    def deciding_fraud_logit(self, root_type: NodeType, gnn_logit: np.ndarray,
                             blend_x: np.ndarray | None = None) -> np.ndarray:
        """The fraud log-odds that decide, before calibration: the blend's for applications
        when the pipeline has one, else the GNN's (one definition for online, batch and
        evaluation).

        Raises:
            ModelError: if the blend needs ``blend_x`` and it is missing.
        """
        if root_type != "Application" or self.fraud_blend is None:
            return gnn_logit
        if blend_x is None:
            raise ModelError("the fraud blend scores applications from their sampled trees")
        return self.fraud_blend.logit(gnn_logit, blend_x).astype(np.float32)

    def scores(self, root_type: NodeType, fraud_logit: np.ndarray, pd_logit: np.ndarray,
               embedding: np.ndarray, root_x: np.ndarray | None = None,
               blend_x: np.ndarray | None = None) -> Scores:
        """:class:`Scores` of raw model outputs: the fraud log-odds that decide (the blend's
        for applications where there is one) and the default logit calibrated per root type,
        the probability of default of applications from the credit model where there is one.

        Args:
            root_type (NodeType): the roots' type.
            fraud_logit, pd_logit (np.ndarray): the network's raw logits ``[R]``.
            embedding (np.ndarray): ``[R, embedding_dim]``.
            root_x (np.ndarray, optional): raw root features ``[R, F]`` (the credit model's
                inputs); required for applications when the pipeline has a credit model.
                (default: ``None``)
            blend_x (np.ndarray, optional): :meth:`blend_inputs` of the same seeds; required
                for applications when the pipeline has a fraud blend. (default: ``None``)

        Raises:
            ModelError: if the credit model needs ``root_x`` or the blend ``blend_x`` and it is
                missing.
        """
        deciding = self.deciding_fraud_logit(root_type, fraud_logit, blend_x)
        return Scores(self._calibrate(f"{root_type}.fraud", deciding),
                      self.probability_of_default(root_type, pd_logit, root_x, fraud_logit),
                      deciding, pd_logit, embedding,
                      None if deciding is fraud_logit else fraud_logit)

    def probability_of_default(self, root_type: NodeType, pd_logit: np.ndarray,
                               root_x: np.ndarray | None = None,
                               fraud_logit: np.ndarray | None = None) -> np.ndarray:
        """The probability of default that decides: the credit model's for applications when
        the pipeline has one, else the GNN default head's calibrated logit (one definition for
        online, batch and evaluation).

        Raises:
            ModelError: if the credit model needs ``root_x`` and it is missing.
        """
        if root_type != "Application" or self.credit is None:
            return self._calibrate(f"{root_type}.pd", pd_logit)
        if root_x is None:
            raise ModelError("the credit model scores applications from their root features")
        return self.credit.predict(self.credit.inputs(
            root_x, self.root_feature_names["Application"], fraud_logit, pd_logit))

    def gnn_pd(self, root_type: NodeType, pd_logit: np.ndarray) -> np.ndarray:
        """The GNN default head's calibrated probability (what decided before the credit
        model; the evaluation shows it beside)."""
        return self._calibrate(f"{root_type}.pd", pd_logit)

    def scoring_model(self, device: torch.device | str = "cpu"
                      ) -> Callable[[TreeBatch], RiskOutput]:
        """The model :meth:`predict` runs, on ``device`` and in eval mode (an ensemble's
        members stacked into one): what explains a score must run exactly this
        (:func:`gnn.attribution.attribute`).

        Args:
            device (torch.device or str, optional): where the model runs. (default: ``"cpu"``)
        """
        device = torch.device(device)
        if not _placed_on(self.model, device):
            # NOTE: only when it is elsewhere: ``to`` walks ~250 modules (~5 ms, a quarter of
            # one online verdict) even when nothing moves.
            self.model.to(device)
        if self.model.training:
            self.model.eval()
        return self._inference_model()

    def _inference_model(self) -> Callable[[TreeBatch], RiskOutput]:
        """The model for :meth:`predict`: an ensemble's members stacked into one
        (:class:`gnn.nn.stacked_ensemble.StackedEnsemble`), built again whenever a weight changed
        or moved (training between evaluations, ``to(device)``)."""
        model = self.model
        if not isinstance(model, HeteroRiskEnsemble) or len(model.members) < 2:
            return model
        if self._params is None or self._params[0] is not model:
            # NOTE: walking the modules for their parameters costs ~0.4 ms; the list, ~0.05.
            self._params = (model, list(model.parameters()))
        key = tuple((p.data_ptr(), p._version) for p in self._params[1])
        if self._stacked is None or self._stacked[0] != key:
            self._stacked = (key, StackedEnsemble(list(model.members)))  # type: ignore[arg-type]
        return self._stacked[1]

    def _calibrate(self, key: str, logits: np.ndarray) -> np.ndarray:
        cal = self.calibrators.get(key)
        return (cal or Calibrator())(logits)

    # -- the public scoring calls -------------------------------------------------------------------
    def score_applications(self, graph: LendingGraph, apps: ApplicationQueries, *,
                           device: torch.device | str = "cpu",
                           chunk_size: int = 8192) -> Scores:
        """Fraud and default probabilities of applications (batch rescoring and online).

        Args:
            graph (LendingGraph): the graph state.
            apps (ApplicationQueries): the applications, from the graph or from a request.
            device (torch.device or str, optional): where the model runs. (default: ``"cpu"``)
            chunk_size (int, optional): seeds prepared at once (bounds memory).
                (default: ``8192``)
        """
        parts = [self.predict(self.prepare_applications(graph, apps.take(np.arange(
            lo, min(lo + chunk_size, len(apps))))), device=device)
            for lo in range(0, len(apps), chunk_size)]
        return concat_scores(parts, self.model.embedding_dim)

    def score_nodes(self, graph: LendingGraph, node_type: NodeType, positions: np.ndarray,
                    times: np.ndarray, *, device: torch.device | str = "cpu",
                    chunk_size: int = 8192) -> Scores:
        """Fraud and default probabilities and embeddings of users or merchants as of ``times``."""
        positions = np.asarray(positions, dtype=np.int64)
        times = np.broadcast_to(np.asarray(times, dtype=np.int64), positions.shape)
        parts = [self.predict(self.prepare_nodes(graph, node_type, positions[lo:lo + chunk_size],
                                                 times[lo:lo + chunk_size]), device=device)
                 for lo in range(0, positions.shape[0], chunk_size)]
        return concat_scores(parts, self.model.embedding_dim)

    # -- persistence --------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything but the weights, as JSON-ready values."""
        return {
            "version": self.version,
            "config": self.config.to_dict(),
            "node_channels": {t: len(NODE_FEATURES[t]) for t in NODE_TYPES},
            "members": (len(self.model.members) if isinstance(self.model, HeteroRiskEnsemble)
                        else 0),
            "root_feature_names": self.root_feature_names,
            "node_norm": {t: n.state_dict() for t, n in self.node_norm.items()},
            "root_norm": {t: n.state_dict() for t, n in self.root_norm.items()},
            "calibrators": {k: c.state_dict() for k, c in self.calibrators.items()},
            "credit": None if self.credit is None else self.credit.state_dict(),
            "fraud_blend": None if self.fraud_blend is None else self.fraud_blend.state_dict(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], weights: Mapping[str, torch.Tensor]
                   ) -> ScoringPipeline:
        """Rebuild a pipeline saved with :meth:`state` and the model's ``state_dict``."""
        config = PipelineConfig.from_dict(state["config"])
        names = state["root_feature_names"]
        def member() -> HeteroRiskGNN:
            return HeteroRiskGNN(state["node_channels"], {t: len(v) for t, v in names.items()},
                                 hidden_channels=config.hidden_channels,
                                 embedding_dim=config.embedding_dim,
                                 num_layers=config.num_layers, dropout=config.dropout)

        n = int(state.get("members", 0))
        model: HeteroRiskGNN | HeteroRiskEnsemble = (
            HeteroRiskEnsemble([member() for _ in range(n)]) if n else member())
        model.load_state_dict(weights)
        model.eval()
        return cls(
            config, model,
            {t: FeatureNormaliser.from_state_dict(s) for t, s in state["node_norm"].items()},
            {t: FeatureNormaliser.from_state_dict(s) for t, s in state["root_norm"].items()},
            {k: Calibrator.from_state_dict(s) for k, s in state["calibrators"].items()},
            names, state.get("version", "unversioned"),
            None if state.get("credit") is None
            else CreditHazardModel.from_state_dict(state["credit"]),
            None if state.get("fraud_blend") is None
            else FraudBlend.from_state_dict(state["fraud_blend"]),
        )


def concat_scores(parts: Sequence[Scores], dim: int) -> Scores:
    """One :class:`Scores` of consecutive parts."""
    if not parts:
        z = np.zeros(0, dtype=np.float64)
        return Scores(z, z, z.astype(np.float32), z.astype(np.float32),
                      np.zeros((0, dim), np.float32))
    blended = [p.gnn_fraud_logit is not None for p in parts]
    if any(blended) and not all(blended):
        raise ModelError("scores of a blend and of the GNN alone do not concatenate")
    joined = {f: np.concatenate([getattr(p, f) for p in parts])
              for f in ("fraud", "pd", "fraud_logit", "pd_logit", "embedding")}
    return Scores(**joined, gnn_fraud_logit=(np.concatenate([p.gnn_logit for p in parts])
                                             if all(blended) else None))


def _placed_on(model: torch.nn.Module, device: torch.device) -> bool:
    """Whether the model's parameters are on ``device`` (``cuda`` matches any ``cuda:i``)."""
    for p in model.parameters():
        here = p.device
        return here.type == device.type and device.index in (None, here.index)
    return False
