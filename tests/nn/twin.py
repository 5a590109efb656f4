"""Helpers to run a NumPy layer and its torch twin on the same input and weights."""

from __future__ import annotations

import numpy as np
import torch

from lablib.nn import Module


def copy_weights(layer: Module, twin: torch.nn.Module) -> None:
    twin.load_state_dict({key: torch.from_numpy(np.array(value)) for key, value in layer.state_dict().items()})


def compare(layer: Module, twin: torch.nn.Module, x: np.ndarray, rng: np.random.Generator, rtol=1e-4, atol=1e-5):
    """Forward and backward through both; assert output, input gradient and parameter gradients agree."""
    tx = torch.from_numpy(x.copy()).requires_grad_()
    y = layer.forward(x)
    ty = twin(tx)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=rtol, atol=atol, err_msg="forward")
    grad = rng.standard_normal(y.shape).astype(x.dtype)
    dx = layer.backward(grad)
    ty.backward(torch.from_numpy(grad))
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=rtol, atol=atol, err_msg="input gradient")
    twin_params = dict(twin.named_parameters())
    for name, param in layer.named_parameters():
        np.testing.assert_allclose(
            param.grad, twin_params[name].grad.numpy(), rtol=rtol, atol=atol, err_msg=f"gradient of {name}"
        )
    for name, buf in twin.named_buffers():
        np.testing.assert_allclose(layer.state_dict()[name], buf.numpy(), rtol=rtol, atol=atol, err_msg=name)
