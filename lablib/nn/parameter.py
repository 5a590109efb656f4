"""Parameter: a trainable array and the gradient accumulated into it (``torch.nn.Parameter``)."""

from __future__ import annotations

import numpy as np


class Parameter:
    """A trainable array. ``grad`` is ``None`` until a backward pass accumulates into it."""

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.grad: np.ndarray | None = None

    def accumulate_grad(self, grad: np.ndarray) -> None:
        """Add ``grad`` to ``self.grad``, as autograd accumulates into ``.grad``.

        The first gradient is kept as it is (cast to the parameter's dtype if needed): layers hand
        over a fresh array, never a view of one they write to again.
        """
        if self.grad is None:
            self.grad = grad.astype(self.data.dtype, copy=False)
        else:
            self.grad += grad

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"
