"""Every layer of the NumPy core against PyTorch autograd (float32) and finite differences (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lablib import nn
from lablib.nn.gradient_check import eval_numerical_gradient_array, rel_error
from tests.nn.twin import compare, copy_weights

SETTINGS = settings(max_examples=25, deadline=None)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@SETTINGS
@given(
    batch=st.sampled_from([1, 3]),
    cin=st.integers(1, 4),
    cout=st.integers(1, 5),
    kernel=st.sampled_from([1, 2, 3]),
    stride=st.sampled_from([1, 2]),
    padding=st.sampled_from([0, 1, 2]),
    size=st.sampled_from([7, 8, 13]),
    bias=st.booleans(),
)
def test_conv2d_matches_torch(batch, cin, cout, kernel, stride, padding, size, bias):
    r = rng(batch * 100 + size)
    layer = nn.Conv2d(cin, cout, kernel, stride, padding, bias, rng=r)
    twin = torch.nn.Conv2d(cin, cout, kernel, stride, padding, bias=bias)
    copy_weights(layer, twin)
    compare(layer, twin, r.standard_normal((batch, cin, size, size)).astype(np.float32), r)


@SETTINGS
@given(
    batch=st.sampled_from([1, 2]),
    channels=st.integers(1, 3),
    kernel=st.sampled_from([2, 3]),
    stride=st.sampled_from([None, 1, 2]),
    padding=st.sampled_from([0, 1]),
    size=st.sampled_from([7, 8, 13]),
)
def test_maxpool2d_matches_torch(batch, channels, kernel, stride, padding, size):
    if padding * 2 > kernel:
        return  # PyTorch refuses padding larger than half the kernel
    r = rng(size)
    layer = nn.MaxPool2d(kernel, stride, padding)
    twin = torch.nn.MaxPool2d(kernel, stride, padding)
    compare(layer, twin, r.standard_normal((batch, channels, size, size)).astype(np.float32), r)


@pytest.mark.parametrize(("batch", "fin", "fout", "bias"), [(1, 3, 4, True), (5, 7, 2, False), (8, 64, 10, True)])
def test_linear_matches_torch(batch, fin, fout, bias):
    r = rng()
    layer = nn.Linear(fin, fout, bias, rng=r)
    twin = torch.nn.Linear(fin, fout, bias=bias)
    copy_weights(layer, twin)
    compare(layer, twin, r.standard_normal((batch, fin)).astype(np.float32), r)


@pytest.mark.parametrize(
    ("cls", "twin_cls", "shape"),
    [(nn.BatchNorm1d, torch.nn.BatchNorm1d, (6, 5)), (nn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 7, 7))],
)
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_matches_torch_in_train_and_eval(cls, twin_cls, shape, affine):
    r = rng()
    layer = cls(shape[1], affine=affine)
    twin = twin_cls(shape[1], affine=affine)
    if affine:
        layer.weight.data[:] = r.uniform(0.5, 1.5, shape[1])
        layer.bias.data[:] = r.standard_normal(shape[1])
    copy_weights(layer, twin)
    for _ in range(3):  # running statistics follow over several batches
        layer.zero_grad()
        twin.zero_grad()
        compare(layer, twin, (3 * r.standard_normal(shape) + 1).astype(np.float32), r)
    assert int(layer.num_batches_tracked) == int(twin.num_batches_tracked) == 3
    layer.eval()
    twin.eval()
    layer.zero_grad()
    twin.zero_grad()
    compare(layer, twin, r.standard_normal(shape).astype(np.float32), r)


def test_batchnorm_refuses_one_value_per_channel_in_training():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3).forward(np.ones((1, 3), np.float32))


@pytest.mark.parametrize(("cls", "twin_cls"), [(nn.SiLU, torch.nn.SiLU), (nn.ReLU, torch.nn.ReLU)])
def test_activations_match_torch(cls, twin_cls):
    r = rng()
    x = (r.standard_normal((4, 3, 5, 5)) * 4).astype(np.float32)
    x[0, 0, 0, :3] = [-1e4, 1e4, 0.0]
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        compare(cls(), twin_cls(), x, r)


def test_flatten_and_dropout_in_eval_match_torch():
    r = rng()
    compare(nn.Flatten(), torch.nn.Flatten(), r.standard_normal((2, 3, 4, 5)).astype(np.float32), r)
    compare(nn.Flatten(2), torch.nn.Flatten(2), r.standard_normal((2, 3, 4, 5)).astype(np.float32), r)
    compare(nn.Dropout(0.3).eval(), torch.nn.Dropout(0.3).eval(), r.standard_normal((4, 6)).astype(np.float32), r)


def test_dropout_scales_kept_units_and_routes_gradient_through_them():
    layer = nn.Dropout(0.25, rng=rng())
    x = np.ones((200, 50), np.float32)
    y = layer.forward(x)
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), y)


def test_gradients_accumulate_like_autograd():
    r = rng()
    layer, twin = nn.Linear(4, 3, rng=r), torch.nn.Linear(4, 3)
    copy_weights(layer, twin)
    for _ in range(2):
        x = r.standard_normal((5, 4)).astype(np.float32)
        layer.forward(x)
        layer.backward(np.ones((5, 3), np.float32))
        twin(torch.from_numpy(x)).sum().backward()
    np.testing.assert_allclose(layer.weight.grad, twin.weight.grad.numpy(), rtol=1e-5, atol=1e-6)


# Finite differences, float64: every layer's input and parameter gradients.
FD_CASES = [
    ("conv s1 p1", lambda r: nn.Conv2d(2, 3, 3, 1, 1, rng=r), (2, 2, 5, 5)),
    ("conv s2 p2 no bias", lambda r: nn.Conv2d(2, 2, 3, 2, 2, bias=False, rng=r), (1, 2, 7, 7)),
    ("maxpool", lambda r: nn.MaxPool2d(2), (2, 2, 6, 6)),
    ("linear", lambda r: nn.Linear(5, 4, rng=r), (3, 5)),
    ("batchnorm1d", lambda r: nn.BatchNorm1d(4), (5, 4)),
    ("batchnorm2d", lambda r: nn.BatchNorm2d(3), (2, 3, 4, 4)),
    ("batchnorm2d eval", lambda r: nn.BatchNorm2d(3).eval(), (2, 3, 4, 4)),
    ("silu", lambda r: nn.SiLU(), (3, 7)),
    ("relu", lambda r: nn.ReLU(), (3, 7)),
    ("flatten", lambda r: nn.Flatten(), (2, 3, 2, 2)),
]


@pytest.mark.parametrize(("name", "make", "shape"), FD_CASES, ids=[case[0] for case in FD_CASES])
def test_finite_differences(name, make, shape):
    r = rng(1)
    layer = make(r).double()
    for param in layer.parameters():
        param.data[...] = r.standard_normal(param.shape)
    x = r.standard_normal(shape)
    if name == "relu":
        x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
    y = layer.forward(x)
    grad = r.standard_normal(y.shape)
    dx = layer.backward(grad)
    numeric = eval_numerical_gradient_array(lambda v: layer.forward(v), x, grad)
    assert rel_error(dx, numeric) < 1e-6, name
    for pname, param in layer.named_parameters():
        layer.forward(x)
        numeric = eval_numerical_gradient_array(lambda _: layer.forward(x), param.data, grad)
        assert rel_error(param.grad, numeric) < 1e-6, f"{name}: {pname}"


def test_state_dict_keys_and_shapes_match_torch():
    pairs = [
        (nn.Conv2d(2, 3, 3), torch.nn.Conv2d(2, 3, 3)),
        (nn.Conv2d(2, 3, 3, bias=False), torch.nn.Conv2d(2, 3, 3, bias=False)),
        (nn.Linear(4, 2), torch.nn.Linear(4, 2)),
        (nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)),
        (nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)),
    ]
    for layer, twin in pairs:
        ours = {key: np.shape(value) for key, value in layer.state_dict().items()}
        theirs = {key: tuple(value.shape) for key, value in twin.state_dict().items()}
        assert list(ours.items()) == list(theirs.items())
        layer.load_state_dict({key: value.numpy() for key, value in twin.state_dict().items()})
        for key, value in twin.state_dict().items():
            np.testing.assert_array_equal(layer.state_dict()[key], value.numpy())


def test_load_state_dict_names_what_does_not_fit():
    layer = nn.Linear(4, 2)
    with pytest.raises(KeyError, match=r"missing keys \['bias'\]"):
        layer.load_state_dict({"weight": np.zeros((2, 4))})
    with pytest.raises(ValueError, match=r"state_dict\['weight'\] has shape \(3, 4\), Linear expects \(2, 4\)"):
        layer.load_state_dict({"weight": np.zeros((3, 4)), "bias": np.zeros(2)})


@pytest.mark.parametrize(("layer", "fan_in"), [(nn.Linear(300, 20), 300), (nn.Conv2d(8, 16, 3), 72)])
def test_default_initialisation_is_pytorchs(layer, fan_in):
    bound = 1 / np.sqrt(fan_in)
    weight = layer.weight.data
    assert weight.dtype == np.float32
    assert np.abs(weight).max() <= bound
    assert abs(weight.std() - bound / np.sqrt(3)) < 0.05 * bound  # U(-b, b) has std b / sqrt(3)
    assert np.abs(layer.bias.data).max() <= bound
