"""BatchNorm folded into the layer before it: the same function, as PyTorch's fusion folds it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from lablib import nn
from lablib.models.numpy_model import build_numpy
from lablib.models.specs import get_spec
from lablib.nn import fusion
from lablib.nn.fusion import InferenceConv2d, fuse_bn_eval, fuse_for_inference


def _with_statistics(bn: nn.Module, rng: np.random.Generator) -> None:
    """Running statistics and affine parameters far from their initial 0, 1, 1, 0."""
    bn.running_mean = rng.standard_normal(bn.num_features).astype(np.float32)
    bn.running_var = rng.uniform(0.2, 3.0, bn.num_features).astype(np.float32)
    bn.weight.data = rng.uniform(0.5, 1.5, bn.num_features).astype(np.float32)
    bn.bias.data = rng.standard_normal(bn.num_features).astype(np.float32)


@pytest.mark.parametrize("kind", ["conv", "linear"])
def test_a_folded_layer_is_pytorchs(kind):
    rng = np.random.default_rng(0)
    if kind == "conv":
        layer, bn = nn.Conv2d(3, 5, 3, stride=2, padding=1, rng=rng), nn.BatchNorm2d(5)
        torch_layer, torch_bn, fuse = torch.nn.Conv2d(3, 5, 3, 2, 1), torch.nn.BatchNorm2d(5), fuse_conv_bn_eval
    else:
        layer, bn = nn.Linear(6, 5, rng=rng), nn.BatchNorm1d(5)
        torch_layer, torch_bn, fuse = torch.nn.Linear(6, 5), torch.nn.BatchNorm1d(5), fuse_linear_bn_eval
    _with_statistics(bn, rng)
    state = {
        **{f"0.{k}": v for k, v in layer.state_dict().items()},
        **{f"1.{k}": v for k, v in bn.state_dict().items()},
    }
    twin = torch.nn.Sequential(torch_layer, torch_bn)
    twin.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
    expected = fuse(twin[0].eval(), twin[1].eval())
    fused = fuse_bn_eval(layer, bn)
    np.testing.assert_allclose(fused.weight.data, expected.weight.detach().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(fused.bias.data, expected.bias.detach().numpy(), rtol=1e-6, atol=1e-6)
    assert fused.weight.data.dtype == np.float32 and layer.weight.data is not fused.weight.data


@pytest.mark.parametrize(("name", "width"), [("lab2025_cnn", 20), ("lab2023_cnn", 12)])
def test_the_folded_network_computes_the_same_function(name, width):
    rng = np.random.default_rng(1)
    model = build_numpy(get_spec(name, width), seed=0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            _with_statistics(module, rng)
    model.eval()
    x = rng.uniform(-0.5, 0.5, (16, 1, 28, 28)).astype(np.float32)
    with nn.no_grad():
        expected = model(x)
        fused = fuse_for_inference(model)
        actual = fused(x)
        np.testing.assert_array_equal(model(x), expected, "the model itself is left as it was")
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)
    assert (actual.argmax(1) == expected.argmax(1)).all()
    assert not fused.training
    assert not any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in fused.modules())
    assert all(isinstance(m, InferenceConv2d) for m in fused.modules() if isinstance(m, nn.Conv2d))


def test_a_batchnorm_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match="cannot fold"):
        fuse_bn_eval(nn.Linear(4, 3, rng=np.random.default_rng(0)), nn.BatchNorm1d(5))
    with pytest.raises(ValueError, match="cannot fold"):
        fuse_bn_eval(nn.Linear(4, 3, rng=np.random.default_rng(0)), nn.BatchNorm1d(3, track_running_stats=False))


@pytest.mark.parametrize(("stride", "padding", "band_bytes"), [(1, 1, 2**21), (2, 1, 2**21), (2, 0, 1), (1, 2, 12000)])
def test_an_inference_convolution_computes_the_convolution_band_by_band(monkeypatch, stride, padding, band_bytes):
    """Bands of one output row (band_bytes 1), of a few rows with a shorter last band, and the whole output."""
    monkeypatch.setattr(fusion, "BAND_BYTES", band_bytes)
    rng = np.random.default_rng(2)
    conv = nn.Conv2d(3, 5, 3, stride=stride, padding=padding, rng=rng)
    x = rng.standard_normal((4, 3, 11, 11)).astype(np.float32)
    inference = InferenceConv2d.from_conv(conv)
    with nn.no_grad():
        np.testing.assert_allclose(inference(x), conv(x), rtol=1e-5, atol=1e-5)
    assert inference.weight is conv.weight


def test_an_inference_convolution_refuses_training():
    inference = InferenceConv2d.from_conv(nn.Conv2d(1, 2, 3, rng=np.random.default_rng(0)))
    with pytest.raises(RuntimeError, match="no_grad"):
        inference(np.zeros((1, 1, 5, 5), np.float32))
    with pytest.raises(RuntimeError, match="no backward"):
        inference.backward(np.zeros((1, 2, 3, 3), np.float32))
