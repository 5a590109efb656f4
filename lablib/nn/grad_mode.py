"""``no_grad``: forwards that keep nothing for a backward, as ``torch.no_grad``.

Every layer's forward keeps what its backward will need: its input, the im2col columns, the
positions of the maxima, the softmax. Evaluation never calls backward, so under ``no_grad`` a forward
keeps nothing and skips the work that only a backward reads: each activation is freed as soon as the
next layer has read it, and an evaluation batch needs the memory of its largest layer, not of the
whole network. The arithmetic of the forward is the same, so are its outputs, to the last bit.

    with no_grad():
        logits = model(images)
"""

from __future__ import annotations

from contextlib import ContextDecorator
from contextvars import ContextVar, Token

_grad_enabled: ContextVar[bool] = ContextVar("grad_enabled", default=True)


def is_grad_enabled() -> bool:
    """Whether a forward now keeps what a backward needs (True outside ``no_grad``)."""
    return _grad_enabled.get()


class no_grad(ContextDecorator):
    """A context (or decorator) in which forwards keep nothing for a backward; lower-case, as PyTorch's."""

    def __enter__(self) -> None:
        self._token: Token[bool] = _grad_enabled.set(False)

    def __exit__(self, *exc: object) -> None:
        _grad_enabled.reset(self._token)
