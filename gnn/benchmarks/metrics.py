"""Node-classification metrics: ROC-AUC for binary labels, accuracy otherwise."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import Tensor


def metric_name(num_classes: int) -> str:
    """``"roc_auc"`` for a binary task, ``"accuracy"`` for a multi-class one."""
    return "roc_auc" if num_classes <= 2 else "accuracy"


def score_nodes(logits: Tensor, y: Tensor, num_classes: int) -> float:
    """The task's metric for ``logits`` against labels ``y``.

    Args:
        logits (torch.Tensor): ``[M, 1]`` (binary) or ``[M, C]`` model outputs.
        y (torch.Tensor): int labels ``[M]``.
        num_classes (int): ``C``; binary when ``<= 2``.

    Returns:
        float: ROC-AUC (NaN when only one class is present) or accuracy.
    """
    y_np = y.detach().cpu().numpy()
    if num_classes <= 2:
        if len(np.unique(y_np)) < 2:
            return float("nan")
        return float(roc_auc_score(y_np, logits.detach().cpu().reshape(-1).float().numpy()))
    pred = logits.detach().argmax(dim=-1).cpu()
    return float((pred == torch.as_tensor(y_np)).float().mean())
