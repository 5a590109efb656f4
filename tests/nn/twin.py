"""Helpers to run a NumPy layer and its torch twin on the same input and weights."""

from __future__ import annotations

import numpy as np
import torch

from lablib.nn import Module


def copy_weights(layer: Module, twin: torch.nn.Module) -> None:
    twin.load_state_dict({key: torch.from_numpy(np.array(value)) for key, value in layer.state_dict().items()})


def compare(
    layer: Module,
    twin: torch.nn.Module,
    x: np.ndarray,
    rng: np.random.Generator,
    rtol=1e-4,
    atol=1e-5,
    scaled: bool = False,
):
    """Forward and backward through both; assert output, input gradient and parameter gradients agree.

    With ``scaled``, each tensor's ``atol`` is multiplied by its largest magnitude (at least 1): a
    gradient summed over many values (a weight gradient reaching hundreds) carries float32 rounding
    in proportion to its size, not to each entry's.
    """

    def close(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
        scale = max(1.0, float(np.abs(theirs).max(initial=0.0))) if scaled else 1.0
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol * scale, err_msg=what)

    tx = torch.from_numpy(x.copy()).requires_grad_()
    y = layer.forward(x)
    ty = twin(tx)
    close(y, ty.detach().numpy(), "forward")
    grad = rng.standard_normal(y.shape).astype(x.dtype)
    dx = layer.backward(grad)
    ty.backward(torch.from_numpy(grad))
    close(dx, tx.grad.numpy(), "input gradient")
    twin_params = dict(twin.named_parameters())
    for name, param in layer.named_parameters():
        close(param.grad, twin_params[name].grad.numpy(), f"gradient of {name}")
    for name, buf in twin.named_buffers():
        close(layer.state_dict()[name], buf.numpy(), name)
