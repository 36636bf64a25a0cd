"""`train_node_classifier`: full-batch training with early stopping on a validation metric."""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from gnn.benchmarks.metrics import score_nodes
from gnn.benchmarks.node_graph import NodeGraph
from gnn.benchmarks.sep_gnn import SepGNN

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Args:
        lr (float): AdamW learning rate. (default: ``1e-3``)
        weight_decay (float): AdamW decoupled weight decay. (default: ``1e-4``)
        max_epochs (int): upper bound on full-batch steps. (default: ``500``)
        patience (int): stop after this many epochs without a better validation metric.
            (default: ``100``)
        eval_every (int): evaluate on validation every this many epochs. (default: ``5``)
        warmup_epochs (int): linear learning-rate warm-up. (default: ``10``)
        schedule (str): after warm-up, ``"constant"`` keeps ``lr``; ``"cosine"`` decays it to
            0 at ``max_epochs``. (default: ``"constant"``)
        ema_decay (float, optional): when set, evaluate and keep an exponential moving average
            of the weights (Polyak averaging: a free ensemble of recent epochs) instead of
            the raw weights. (default: ``None``)
    """

    lr: float = 1e-3
    weight_decay: float = 1e-4
    max_epochs: int = 500
    patience: int = 100
    eval_every: int = 5
    warmup_epochs: int = 10
    schedule: Literal["constant", "cosine"] = "constant"
    ema_decay: float | None = None

    def __post_init__(self) -> None:
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {self.ema_decay}")
        if self.lr <= 0 or self.max_epochs < 1 or self.eval_every < 1 or self.patience < 1:
            raise ValueError(f"invalid TrainConfig {self}")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")

    def lr_factor(self, epoch: int) -> float:
        """Multiplier of ``lr`` for 0-based ``epoch``."""
        warmup = max(self.warmup_epochs, 1)
        if epoch < warmup:
            return (epoch + 1) / warmup
        if self.schedule == "constant":
            return 1.0
        progress = (epoch - warmup) / max(self.max_epochs - warmup, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


@dataclass
class TrainResult:
    """What :func:`train_node_classifier` found.

    Args:
        best_epoch (int): epoch (1-based) of the best validation metric.
        best_val (float): that metric.
        epochs_run (int): epochs actually run.
        seconds (float): wall time of the training loop.
        history (list[tuple[int, float, float]]): ``(epoch, train loss, val metric)``.
    """

    best_epoch: int
    best_val: float
    epochs_run: int
    seconds: float
    history: list[tuple[int, float, float]] = field(default_factory=list)


def train_node_classifier(
    model: SepGNN,
    graph: NodeGraph,
    train_mask: Tensor,
    val_mask: Tensor,
    config: TrainConfig,
    device: torch.device | str,
) -> TrainResult:
    """Train ``model`` on ``train_mask`` nodes, keep the weights of the best validation epoch.

    Only ``train_mask`` labels enter the loss and only ``val_mask`` labels are scored; nothing
    else about the labels is read. The model is left on ``device`` holding the best weights.
    Seed torch's global generator before building the model to make the run reproducible.

    Args:
        model (SepGNN): the model; its output width is 1 for binary labels, else ``C``.
        graph (NodeGraph): the graph (any device; moved to ``device``).
        train_mask (torch.Tensor): bool ``[N]``.
        val_mask (torch.Tensor): bool ``[N]``.
        config (TrainConfig): optimisation settings.
        device (torch.device or str): where to train.

    Returns:
        TrainResult: best epoch, best validation metric, history.
    """
    device = torch.device(device)
    num_classes = max(graph.num_classes, 2)
    binary = num_classes == 2
    if model.out_channels != (1 if binary else num_classes):
        raise ValueError(f"model.out_channels={model.out_channels} does not fit "
                         f"{num_classes} classes")
    train_idx = torch.nonzero(train_mask & (graph.y >= 0)).view(-1).to(device)
    val_idx = torch.nonzero(val_mask & (graph.y >= 0)).view(-1).to(device)
    if train_idx.numel() == 0 or val_idx.numel() == 0:
        raise ValueError("train and validation masks must each hold labelled nodes")
    g = graph.to(device)
    model = model.to(device)
    y_train = g.y[train_idx]
    target = y_train.float() if binary else y_train
    y_val = g.y[val_idx]
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, config.lr_factor)
    averaged = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay),
                              use_buffers=True)
                if config.ema_decay is not None else None)
    judged = model if averaged is None else averaged.module

    best_val, best_epoch, best_state = float("-inf"), 0, copy.deepcopy(model.state_dict())
    history: list[tuple[int, float, float]] = []
    start = time.perf_counter()
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        optimizer.zero_grad(set_to_none=True)
        out = model(g.x, g.adjs)[train_idx]
        if binary:
            loss = F.binary_cross_entropy_with_logits(out.view(-1), target)
        else:
            loss = F.cross_entropy(out, target)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if averaged is not None:
            averaged.update_parameters(model)
        if epoch % config.eval_every == 0 or epoch == config.max_epochs:
            logits = judged.inference(g.x, g.adjs, device)
            val = score_nodes(logits[val_idx.cpu()], y_val.cpu(), num_classes)
            history.append((epoch, loss.item(), val))
            if val > best_val:
                best_val, best_epoch = val, epoch
                best_state = {k: v.detach().clone() for k, v in judged.state_dict().items()}
            elif epoch - best_epoch >= config.patience:
                break
    seconds = time.perf_counter() - start
    model.load_state_dict(best_state)
    log.debug("trained %d epochs in %.1fs, best val %.4f at %d", epoch, seconds, best_val,
              best_epoch)
    return TrainResult(best_epoch, best_val, epoch, seconds, history)
