"""Center loss in PyTorch, number for number the twin of ``lablib.nn.CenterLoss``."""

from __future__ import annotations

import torch
from torch import nn


class CenterLoss(nn.Module):
    """``0.5 * mean_i ||x_i - c_{y_i}||²``, with autograd to the features.

    The centres are a buffer: no optimiser sees them, and :meth:`update_centers` moves them by
    Wen et al.'s rule, ``c_j ← c_j - α Σ_{i: y_i = j} (c_j - x_i) / (1 + n_j)``.
    """

    def __init__(
        self,
        num_classes: int,
        feat_dim: int,
        alpha: float = 0.5,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.num_classes, self.feat_dim, self.alpha = num_classes, feat_dim, alpha
        self.register_buffer("centers", torch.randn(num_classes, feat_dim, device=device, dtype=dtype))

    def forward(self, features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 0.5 * (features - self.centers[target]).square().sum() / len(features)

    @torch.no_grad()
    def update_centers(self, features: torch.Tensor, target: torch.Tensor) -> None:
        """Move the centres of the classes in ``target`` towards their ``features``."""
        delta = torch.zeros_like(self.centers).index_add_(0, target, self.centers[target] - features)
        counts = torch.bincount(target, minlength=self.num_classes).to(self.centers.dtype)
        self.centers -= self.alpha * delta / (1 + counts)[:, None]

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, feat_dim={self.feat_dim}, alpha={self.alpha}"
