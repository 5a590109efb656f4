"""Losses: cross-entropy fused with softmax, and center loss (Wen et al., 2016).

Both keep the batch they saw, so ``backward()`` needs no arguments: it returns the gradient of the
(mean) loss with respect to the logits or the features.
"""

from __future__ import annotations

import numpy as np

from lablib.nn.module import Module


def _check_target(target: np.ndarray, n: int, num_classes: int) -> np.ndarray:
    target = np.asarray(target)
    if target.shape != (n,):
        raise ValueError(f"target must have shape ({n},), got {target.shape}")
    if target.size and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(f"target values must be class indices in 0..{num_classes - 1}, got {target.min()}..{target.max()}")
    return target


class CrossEntropyLoss(Module):
    """Mean over the batch of ``-sum_j q_j log softmax(z)_j`` with ``q`` the (smoothed) one-hot target.

    Label smoothing ``eps`` gives ``q = (1 - eps) * onehot + eps / C``, as ``torch.nn.CrossEntropyLoss``.
    The gradient is ``(softmax(z) - q) / N``; log-sum-exp after subtracting the row maximum keeps it
    finite for any logits.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if not 0 <= label_smoothing <= 1:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def forward(self, logits: np.ndarray, target: np.ndarray) -> float:
        n, c = logits.shape
        target = _check_target(target, n, c)
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)
        log_probs = shifted - np.log(sum_exp)
        q = np.full_like(logits, self.label_smoothing / c)
        q[np.arange(n), target] += 1 - self.label_smoothing
        self._probs, self._q = exp / sum_exp, q
        return float(-np.sum(q * log_probs) / n)

    def __call__(self, logits: np.ndarray, target: np.ndarray) -> float:  # type: ignore[override]
        return self.forward(logits, target)

    def backward(self, grad_output: float = 1.0) -> np.ndarray:
        n = len(self._probs)
        return (self._probs - self._q) * np.asarray(grad_output / n, dtype=self._probs.dtype)

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}"


class CenterLoss(Module):
    """``0.5 * mean_i ||x_i - c_{y_i}||^2``: pulls each feature vector towards its class centre.

    The centres are a buffer, not a parameter: the optimiser leaves them alone, and
    :meth:`update_centers` moves them by Wen et al.'s rule with rate ``alpha``:
    ``c_j -= alpha * sum_{i: y_i = j} (c_j - x_i) / (1 + n_j)``. Centres start as standard normal
    draws, as ``torch.randn`` would give.
    """

    def __init__(
        self,
        num_classes: int,
        feat_dim: int,
        alpha: float = 0.5,
        *,
        dtype: type = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng()
        self.num_classes, self.feat_dim, self.alpha = num_classes, feat_dim, alpha
        self.register_buffer("centers", rng.standard_normal((num_classes, feat_dim)).astype(dtype))

    def forward(self, features: np.ndarray, target: np.ndarray) -> float:
        target = _check_target(target, len(features), self.num_classes)
        diff = features - self.centers[target]
        self._diff, self._target = diff, target
        return float(0.5 * np.sum(np.square(diff)) / len(features))

    def __call__(self, features: np.ndarray, target: np.ndarray) -> float:  # type: ignore[override]
        return self.forward(features, target)

    def backward(self, grad_output: float = 1.0) -> np.ndarray:
        return self._diff * np.asarray(grad_output / len(self._diff), dtype=self._diff.dtype)

    def update_centers(self) -> None:
        """Move the centres of the classes in the last batch towards their features."""
        delta = np.zeros_like(self.centers)
        np.add.at(delta, self._target, -self._diff)  # sum of (c_j - x_i)
        counts = np.bincount(self._target, minlength=self.num_classes).astype(self.centers.dtype)
        self.centers -= self.alpha * delta / (1 + counts)[:, None]

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, feat_dim={self.feat_dim}, alpha={self.alpha}"
