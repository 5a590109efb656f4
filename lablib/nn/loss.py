"""Losses: softmax cross-entropy and center loss (Wen et al., 2016).

Each takes ``(input, target)`` with ``target`` the integer class of every row, returns the loss
averaged over the batch as a Python float and keeps what its ``backward()`` needs (nothing under
``no_grad``). ``backward()``
returns the gradient of that mean loss with respect to the input; pass ``grad_output`` to scale it
when the loss enters a weighted sum (``ce + λ * center``).
"""

from __future__ import annotations

import numpy as np

from lablib.nn.functional import softmax_terms
from lablib.nn.grad_mode import is_grad_enabled
from lablib.nn.module import Module


def _check_target(target: np.ndarray, n: int, num_classes: int) -> np.ndarray:
    target = np.asarray(target)
    if not np.issubdtype(target.dtype, np.integer):
        raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")
    if target.shape != (n,):
        raise ValueError(f"target must have shape ({n},), one class per row, got {target.shape}")
    if n and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(
            f"target values must be class indices in 0..{num_classes - 1}, got {target.min()}..{target.max()}"
        )
    return target


class CrossEntropyLoss(Module):
    """Softmax and cross-entropy in one step, averaged over the batch: ``torch.nn.CrossEntropyLoss``.

    With label smoothing ``ε`` the target distribution is ``q = (1 - ε) * onehot(y) + ε / C``, so the
    loss of a row is ``(1 - ε) * (-log p_y) + ε * mean_j(-log p_j)``. Fused, the gradient is simply
    ``(softmax(z) - q) / N``. ``-log p_j = logsumexp(z) - z_j`` is computed after subtracting the row
    maximum, so no logit, however large, overflows.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def forward(self, logits: np.ndarray, target: np.ndarray) -> float:
        if logits.ndim != 2:
            raise ValueError(f"logits must have shape (N, C), got {logits.shape}")
        n, c = logits.shape
        target = _check_target(target, n, c)
        eps = self.label_smoothing
        shifted, exp, sum_exp = softmax_terms(logits)
        log_sum_exp = np.log(sum_exp)
        nll = log_sum_exp - shifted[np.arange(n), target]
        smooth = log_sum_exp - shifted.sum(axis=1) / c
        self._probs, self._target = None, None
        if is_grad_enabled():
            exp /= sum_exp[:, None]
            self._probs, self._target = exp, target
        return float(((1 - eps) * nll + eps * smooth).sum()) / n

    def __call__(self, logits: np.ndarray, target: np.ndarray) -> float:  # type: ignore[override]
        return self.forward(logits, target)

    def backward(self, grad_output: float = 1.0) -> np.ndarray:
        probs = self.saved("_probs")
        n, c = probs.shape
        eps = self.label_smoothing
        grad = probs - eps / c
        grad[np.arange(n), self._target] -= 1 - eps
        grad *= float(grad_output) / n
        return grad

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}"


class CenterLoss(Module):
    """``0.5 * mean_i ||x_i - c_{y_i}||²``: pulls each feature vector towards the centre of its class.

    Wen et al. sum over the mini-batch; the mean used here makes the weight of the loss independent
    of the batch size, and the gradient is ``(x_i - c_{y_i}) / N``. The centres are a buffer, not a
    parameter: the optimiser leaves them alone (they are in ``state_dict``), and
    :meth:`update_centers` moves them by Wen et al.'s rule with rate ``alpha``. They start as
    standard normal draws, as ``torch.randn`` would give.
    """

    def __init__(
        self,
        num_classes: int,
        feat_dim: int,
        alpha: float = 0.5,
        *,
        dtype: np.dtype | type = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng()
        self.num_classes, self.feat_dim, self.alpha = num_classes, feat_dim, alpha
        self.register_buffer("centers", rng.standard_normal((num_classes, feat_dim)).astype(dtype))

    def forward(self, features: np.ndarray, target: np.ndarray) -> float:
        if features.ndim != 2 or features.shape[1] != self.feat_dim:
            raise ValueError(f"features must have shape (N, {self.feat_dim}), got {features.shape}")
        target = _check_target(target, len(features), self.num_classes)
        diff = features - self.centers[target]
        self._diff, self._target = (diff, target) if is_grad_enabled() else (None, None)
        return float(0.5 * np.sum(np.square(diff)) / len(features))

    def __call__(self, features: np.ndarray, target: np.ndarray) -> float:  # type: ignore[override]
        return self.forward(features, target)

    def backward(self, grad_output: float = 1.0) -> np.ndarray:
        diff = self.saved("_diff")
        return diff * (float(grad_output) / len(diff))

    def update_centers(self) -> None:
        """Move the centres towards the features of the last forward batch (Wen et al., eq. 4):

        ``Δc_j = Σ_{i: y_i = j} (c_j - x_i) / (1 + n_j)`` and ``c_j ← c_j - α Δc_j``; the ``1 +``
        leaves the centres of classes absent from the batch where they are.
        """
        diff, target = self.saved("_diff"), self._target
        delta = np.zeros_like(self.centers)
        np.add.at(delta, target, -diff)
        counts = np.bincount(target, minlength=self.num_classes).astype(self.centers.dtype)
        self.centers -= self.alpha * delta / (1 + counts)[:, None]

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, feat_dim={self.feat_dim}, alpha={self.alpha}"
