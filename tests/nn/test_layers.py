"""Every layer of the NumPy core against PyTorch autograd (float32) and finite differences (float64)."""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lablib import nn
from lablib.models.numpy_model import build_numpy
from lablib.models.specs import get_spec
from lablib.nn.gradient_check import eval_numerical_gradient_array, rel_error
from lablib.nn.init import bias_uniform, calculate_fan_in_and_fan_out, kaiming_uniform
from tests.nn.twin import compare, copy_weights

SETTINGS = settings(max_examples=25, deadline=None)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def batch_last(x: np.ndarray) -> np.ndarray:
    """The same values in the memory order a convolution hands over: ``(C, H, W, N)`` seen as ``(N, C, H, W)``."""
    return np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)


def images(r: np.random.Generator, shape: tuple[int, ...], layout: str) -> np.ndarray:
    x = r.standard_normal(shape).astype(np.float32)
    return batch_last(x) if layout == "batch_last" else x


LAYOUTS = st.sampled_from(["contiguous", "batch_last"])


# PyTorch autograd, float32: output, input gradient, parameter gradients and buffers.


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
    layout=LAYOUTS,
)
def test_conv2d_matches_torch(batch, cin, cout, kernel, stride, padding, size, bias, layout):
    r = rng(batch * 100 + size)
    layer = nn.Conv2d(cin, cout, kernel, stride, padding, bias, rng=r)
    twin = torch.nn.Conv2d(cin, cout, kernel, stride, padding, bias=bias)
    copy_weights(layer, twin)
    compare(layer, twin, images(r, (batch, cin, size, size), layout), r)


@SETTINGS
@given(
    batch=st.sampled_from([1, 2]),
    channels=st.integers(1, 3),
    kernel=st.sampled_from([1, 2, 3]),
    stride=st.sampled_from([None, 1, 2, 3]),
    padding=st.sampled_from([0, 1]),
    size=st.sampled_from([7, 8, 13]),
    ties=st.booleans(),
    layout=LAYOUTS,
)
def test_maxpool2d_matches_torch(batch, channels, kernel, stride, padding, size, ties, layout):
    padding = min(padding, kernel // 2)  # PyTorch refuses padding over half the kernel
    r = rng(size + kernel)
    x = images(r, (batch, channels, size, size), layout)
    if ties:  # few distinct values: windows with several maxima, where the first one gets the gradient
        x = np.round(x)
    compare(nn.MaxPool2d(kernel, stride, padding), torch.nn.MaxPool2d(kernel, stride, padding), x, r)


@pytest.mark.parametrize(("batch", "fin", "fout", "bias"), [(1, 3, 4, True), (5, 7, 2, False), (8, 64, 10, True)])
def test_linear_matches_torch(batch, fin, fout, bias):
    r = rng()
    layer = nn.Linear(fin, fout, bias, rng=r)
    twin = torch.nn.Linear(fin, fout, bias=bias)
    copy_weights(layer, twin)
    compare(layer, twin, r.standard_normal((batch, fin)).astype(np.float32), r)


BATCHNORMS = [
    (nn.BatchNorm1d, torch.nn.BatchNorm1d, (6, 5), "contiguous"),
    (nn.BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 5), "contiguous"),
    (nn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 7, 7), "contiguous"),
    (nn.BatchNorm2d, torch.nn.BatchNorm2d, (1, 2, 13, 13), "batch_last"),
]
BATCHNORM_OPTIONS = [
    {},
    {"affine": False},
    {"bias": False},
    {"momentum": None},
    {"momentum": 0.3, "eps": 1e-3},
    {"track_running_stats": False},
]


@pytest.mark.parametrize(("cls", "twin_cls", "shape", "layout"), BATCHNORMS, ids=lambda v: getattr(v, "__name__", None))
@pytest.mark.parametrize("options", BATCHNORM_OPTIONS, ids=str)
def test_batchnorm_matches_torch_in_train_and_eval(cls, twin_cls, shape, layout, options):
    r = rng()
    layer, twin = cls(shape[1], **options), twin_cls(shape[1], **options)
    for param in layer.parameters():
        param.data[:] = r.uniform(0.5, 1.5, shape[1])
    copy_weights(layer, twin)

    def batch(offset: float) -> np.ndarray:
        x = (3 * r.standard_normal(shape) + offset).astype(np.float32)
        return batch_last(x) if layout == "batch_last" else x

    for offset in (1.0, -2.0, 5.0):  # the running statistics follow several batches
        layer.zero_grad()
        twin.zero_grad()
        compare(layer, twin, batch(offset), r)
    if layer.track_running_stats:
        assert layer.num_batches_tracked.dtype == np.int64
        assert int(layer.num_batches_tracked) == int(twin.num_batches_tracked) == 3
    layer.eval()
    twin.eval()
    layer.zero_grad()
    twin.zero_grad()
    compare(layer, twin, batch(0.5), r)


def test_batchnorm_normalises_large_offsets_as_torch_does():
    r = rng()
    x = (r.standard_normal((256, 2, 14, 14)) + 100).astype(np.float32)
    layer, twin = nn.BatchNorm2d(2), torch.nn.BatchNorm2d(2)
    compare(layer, twin, batch_last(x), r)
    compare(layer, twin, x, r)


def test_batchnorm_refuses_bad_input():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3).forward(np.ones((1, 3), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm2d expects 4-D input with 3 channels, got shape \(2, 3\)"):
        nn.BatchNorm2d(3).forward(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="2-D or 3-D input with 3 channels"):
        nn.BatchNorm1d(3).forward(np.ones((2, 4), np.float32))


FUSED_PAIRS = [
    (nn.BatchNorm2d, (6, 4, 9, 9), "batch_last"),
    (nn.BatchNorm2d, (6, 4, 9, 9), "contiguous"),
    (nn.BatchNorm1d, (6, 40), "contiguous"),
]


@pytest.mark.parametrize(("cls", "shape", "layout"), FUSED_PAIRS)
@pytest.mark.parametrize("mode", ["train", "no_grad"])  # training, and validation in eval mode
def test_a_silu_after_a_batchnorm_runs_in_its_blocks_with_the_same_bits(monkeypatch, cls, shape, layout, mode):
    """The pair in a Sequential against the two layers one after the other: outputs, input and parameter
    gradients and running statistics, bit for bit."""
    r = rng(3)
    x = (3 * r.standard_normal(shape) + 1).astype(np.float32)
    x = batch_last(x) if layout == "batch_last" else x
    grad = r.standard_normal(shape).astype(np.float32)
    weight, running_mean = r.uniform(0.5, 1.5, shape[1]), r.standard_normal(shape[1])
    fused, separate = (nn.Sequential(cls(shape[1]), nn.SiLU()) for _ in range(2))
    for model in (fused, separate):
        model[0].weight.data[:], model[0].running_mean[:] = weight, running_mean
        model.train(mode == "train")
    with nn.no_grad() if mode == "no_grad" else contextlib.nullcontext():
        expected = separate[1].forward(separate[0].forward(x))
        expected_grad = None if mode == "no_grad" else separate[0].backward(separate[1].backward(grad))
        monkeypatch.setattr(nn.SiLU, "forward", lambda *_: pytest.fail("the SiLU ran on its own"))
        monkeypatch.setattr(nn.SiLU, "backward", lambda *_: pytest.fail("the SiLU ran on its own"))
        np.testing.assert_array_equal(fused.forward(x), expected)
        if expected_grad is not None:
            np.testing.assert_array_equal(fused.backward(grad), expected_grad)
            for mine, theirs in zip(fused.parameters(), separate.parameters(), strict=True):
                np.testing.assert_array_equal(mine.grad, theirs.grad)
    np.testing.assert_array_equal(fused[0].running_mean, separate[0].running_mean)
    np.testing.assert_array_equal(fused[0].running_var, separate[0].running_var)


@pytest.mark.parametrize(("cls", "twin_cls"), [(nn.SiLU, torch.nn.SiLU), (nn.ReLU, torch.nn.ReLU)])
@pytest.mark.parametrize("layout", ["contiguous", "batch_last"])
def test_activations_match_torch(cls, twin_cls, layout):
    r = rng()
    x = (r.standard_normal((4, 3, 5, 5)) * 4).astype(np.float32)
    x[0, 0, 0, :5] = [-1e4, 1e4, 0.0, -100.0, 100.0]
    x = batch_last(x) if layout == "batch_last" else x
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        compare(cls(), twin_cls(), x, r)


def test_silu_in_eval_gives_the_training_gradient():
    """Evaluation keeps no sigmoid for backward: a backward after it recomputes one, bit for bit."""
    x = batch_last((rng().standard_normal((4, 3, 5, 5)) * 4).astype(np.float32))
    grad = rng().standard_normal(x.shape).astype(np.float32)
    training, evaluation = nn.SiLU(), nn.SiLU().eval()
    np.testing.assert_array_equal(evaluation.forward(x), training.forward(x))
    np.testing.assert_array_equal(evaluation.backward(grad), training.backward(grad))


def test_flatten_and_dropout_in_eval_match_torch():
    r = rng()
    for args in [(), (2,), (1, 2), (0, -2)]:
        compare(nn.Flatten(*args), torch.nn.Flatten(*args), images(r, (2, 3, 4, 5), "batch_last"), r)
    compare(nn.Dropout(0.3).eval(), torch.nn.Dropout(0.3).eval(), r.standard_normal((4, 6)).astype(np.float32), r)


def test_dropout_scales_kept_units_and_routes_gradient_through_them():
    layer = nn.Dropout(0.25, rng=rng())
    x = np.ones((200, 50), np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), y)
    assert nn.Dropout(0.0).forward(x) is x
    with pytest.raises(ValueError, match="dropout probability"):
        nn.Dropout(1.0)


def test_a_network_of_every_layer_matches_torch():
    """Layers in sequence, as the models use them: each hands the next its own output layout."""
    r = rng(3)

    def build(lib, **kw):
        return lib.Sequential(
            lib.Conv2d(2, 4, 3, 1, 1, **kw),
            lib.BatchNorm2d(4),
            lib.SiLU(),
            lib.MaxPool2d(2),
            lib.Conv2d(4, 6, 3, 2, 1, bias=False, **kw),
            lib.BatchNorm2d(6),
            lib.ReLU(),
            lib.MaxPool2d(3, 1, 1),
            lib.Conv2d(6, 5, 2, 1, 0, **kw),
            lib.Flatten(),
            lib.Linear(5 * 4, 7, **kw),
            lib.BatchNorm1d(7),
            lib.SiLU(),
            lib.Dropout(0.5, **kw),
            lib.Linear(7, 3, **kw),
        )

    layer, twin = build(nn, rng=r), build(torch.nn)
    copy_weights(layer, twin)
    layer[13].eval()  # dropout's own masks are checked above and by finite differences
    twin[13].eval()
    compare(layer, twin, r.standard_normal((5, 2, 13, 13)).astype(np.float32), r)


def test_convolutions_hand_over_batch_last_arrays_that_elementwise_layers_keep():
    """The layout that spares the next convolution a transpose (see ``lablib.nn.functional``)."""
    r = rng()
    layers = [nn.Conv2d(3, 4, 3, 2, 1, rng=r), nn.BatchNorm2d(4), nn.SiLU(), nn.ReLU(), nn.MaxPool2d(3, 1, 1)]
    y = r.standard_normal((5, 3, 9, 9)).astype(np.float32)
    for layer in layers:
        y = layer.forward(y)
        assert y.shape == (5, 4, 5, 5)
        assert y.transpose(1, 2, 3, 0).flags.c_contiguous, type(layer).__name__
    grad = np.ones_like(y)
    for layer in reversed(layers):
        grad = layer.backward(grad)
        assert grad.strides[0] == grad.itemsize, type(layer).__name__  # the batch axis innermost


def test_conv2d_reuses_its_columns_across_shapes():
    r = rng()
    layer, twin = nn.Conv2d(2, 3, 3, 2, 1, rng=r), torch.nn.Conv2d(2, 3, 3, 2, 1)
    copy_weights(layer, twin)
    for batch in (4, 4, 1, 4):
        layer.zero_grad()
        twin.zero_grad()
        compare(layer, twin, r.standard_normal((batch, 2, 7, 7)).astype(np.float32), r)
    with pytest.raises(RuntimeError, match="needs a forward"):
        nn.Conv2d(1, 1, 1).backward(np.ones((1, 1, 1, 1), np.float32))
    layer.forward(np.ones((2, 2, 7, 7), np.float32))
    layer.eval().forward(np.ones((3, 2, 5, 5), np.float32))  # the last forward is the one backward follows
    assert layer.backward(np.ones((3, 3, 3, 3), np.float32)).shape == (3, 2, 5, 5)


SECOND_BACKWARD = [
    (lambda r: nn.Conv2d(2, 3, 3, 2, 1, rng=r), lambda: torch.nn.Conv2d(2, 3, 3, 2, 1), (4, 2, 9, 9)),
    (lambda r: nn.Conv2d(2, 3, 3, 1, 0, rng=r), lambda: torch.nn.Conv2d(2, 3, 3, 1, 0), (3, 2, 6, 6)),
    (lambda r: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), (3, 2, 8, 8)),
    (lambda r: nn.BatchNorm2d(3), lambda: torch.nn.BatchNorm2d(3), (4, 3, 5, 5)),
    (lambda r: nn.BatchNorm1d(4), lambda: torch.nn.BatchNorm1d(4), (6, 4)),
    (lambda r: nn.SiLU(), lambda: torch.nn.SiLU(), (4, 3, 5, 5)),
    (lambda r: nn.ReLU(), lambda: torch.nn.ReLU(), (4, 3, 5, 5)),
    (lambda r: nn.Linear(5, 3, rng=r), lambda: torch.nn.Linear(5, 3), (4, 5)),
    (lambda r: nn.Flatten(), lambda: torch.nn.Flatten(), (4, 3, 2, 2)),
]


@pytest.mark.parametrize(
    ("make", "make_twin", "shape"),
    SECOND_BACKWARD,
    ids=["conv stride 2", "conv", "maxpool", "batchnorm2d", "batchnorm1d", "silu", "relu", "linear", "flatten"],
)
def test_a_second_backward_after_one_forward_is_autograds_with_retain_graph(make, make_twin, shape):
    """A student's gradient check calls backward twice: both input gradients right, parameter ones summed."""
    r = rng(4)
    layer, twin = make(r), make_twin()
    copy_weights(layer, twin)
    x = r.standard_normal(shape).astype(np.float32)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    y, ty = layer.forward(x), twin(tx)
    input_grads = []
    for _ in range(2):
        grad = r.standard_normal(y.shape).astype(np.float32)
        input_grads.append(layer.backward(grad))
        ty.backward(torch.from_numpy(grad), retain_graph=True)
        np.testing.assert_allclose(input_grads[-1], tx.grad.numpy(), rtol=1e-4, atol=1e-5)
        if len(input_grads) == 1:
            first = input_grads[0].copy()
        tx.grad = None
    np.testing.assert_array_equal(input_grads[0], first)  # the second backward left the first one's result alone
    twin_params = dict(twin.named_parameters())
    for name, param in layer.named_parameters():
        np.testing.assert_allclose(param.grad, twin_params[name].grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda: nn.Conv2d(2, 3, 3, 1, 1, rng=rng()), (2, 2, 6, 6)),
        (lambda: nn.Linear(5, 3, rng=rng()), (1, 5)),  # batch 1: the outer-product path
        (lambda: nn.Linear(5, 3, rng=rng()), (4, 5)),
    ],
)
def test_a_first_layer_skips_its_input_gradient_only(make, shape):
    x = rng(1).standard_normal(shape).astype(np.float32)
    full, first = make(), make()
    first.needs_input_grad = False
    grad = rng(2).standard_normal(full.forward(x).shape).astype(np.float32)
    first.forward(x)
    assert full.backward(grad).shape == shape
    assert first.backward(grad) is None
    for (name, ours), (_, theirs) in zip(full.named_parameters(), first.named_parameters(), strict=True):
        np.testing.assert_array_equal(ours.grad, theirs.grad, err_msg=name)


def test_the_classifier_leaves_the_images_without_gradient():
    model = build_numpy(get_spec("lab2023_cnn", 4), seed=0)
    assert not model.features[0].needs_input_grad
    assert all(layer.needs_input_grad for layer in [*model.features[1:], *model.classifier])
    x = rng().standard_normal((2, 1, 28, 28)).astype(np.float32)
    assert model.backward(np.ones_like(model(x))) is None
    assert all(param.grad is not None for param in model.parameters())


def test_gradients_accumulate_like_autograd():
    r = rng()
    pairs = [
        (nn.Linear(4, 3, rng=r), torch.nn.Linear(4, 3), (5, 4)),
        (nn.Conv2d(2, 3, 3, 2, 1, rng=r), torch.nn.Conv2d(2, 3, 3, 2, 1), (2, 2, 7, 7)),
        (nn.BatchNorm2d(2), torch.nn.BatchNorm2d(2), (3, 2, 5, 5)),
        (nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3), (4, 3)),
    ]
    for layer, twin, shape in pairs:
        copy_weights(layer, twin)
        for _ in range(2):
            x = r.standard_normal(shape).astype(np.float32)
            grad = r.standard_normal(layer.forward(x).shape).astype(np.float32)
            layer.backward(grad)
            twin(torch.from_numpy(x)).backward(torch.from_numpy(grad))
        for name, param in twin.named_parameters():
            ours = dict(layer.named_parameters())[name].grad
            np.testing.assert_allclose(ours, param.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
        layer.zero_grad()
        assert all(param.grad is None for param in layer.parameters())


# Finite differences, float64: every layer's input and parameter gradients.

FD_CASES = [
    ("conv k3 s1 p1", lambda r: nn.Conv2d(2, 3, 3, 1, 1, rng=r), (2, 2, 5, 5)),
    ("conv k3 s2 p2 no bias", lambda r: nn.Conv2d(2, 2, 3, 2, 2, bias=False, rng=r), (1, 2, 7, 7)),
    ("conv k2 s2 p0", lambda r: nn.Conv2d(1, 2, 2, 2, 0, rng=r), (3, 1, 7, 7)),
    ("conv k1", lambda r: nn.Conv2d(3, 2, 1, rng=r), (2, 3, 3, 3)),
    ("maxpool k2", lambda r: nn.MaxPool2d(2), (2, 2, 6, 6)),
    ("maxpool k3 s1 p1", lambda r: nn.MaxPool2d(3, 1, 1), (1, 2, 5, 5)),
    ("maxpool k3 s2", lambda r: nn.MaxPool2d(3, 2), (2, 1, 7, 7)),
    ("linear", lambda r: nn.Linear(5, 4, rng=r), (3, 5)),
    ("linear no bias", lambda r: nn.Linear(5, 4, bias=False, rng=r), (1, 5)),
    ("batchnorm1d", lambda r: nn.BatchNorm1d(4), (5, 4)),
    ("batchnorm1d 3-D", lambda r: nn.BatchNorm1d(3), (2, 3, 4)),
    ("batchnorm1d eval", lambda r: nn.BatchNorm1d(4).eval(), (5, 4)),
    ("batchnorm2d", lambda r: nn.BatchNorm2d(3), (2, 3, 4, 4)),
    ("batchnorm2d no affine", lambda r: nn.BatchNorm2d(3, affine=False), (2, 3, 3, 3)),
    ("batchnorm2d eval", lambda r: nn.BatchNorm2d(3).eval(), (2, 3, 4, 4)),
    ("silu", lambda r: nn.SiLU(), (3, 7)),
    ("relu", lambda r: nn.ReLU(), (3, 7)),
    ("flatten", lambda r: nn.Flatten(), (2, 3, 2, 2)),
    ("dropout", lambda r: nn.Dropout(0.4, rng=r), (4, 6)),
]


@pytest.mark.parametrize(("name", "make", "shape"), FD_CASES, ids=[case[0] for case in FD_CASES])
def test_finite_differences(name, make, shape):
    r = rng(1)
    layer = make(r).double()
    for param in layer.parameters():
        param.data[...] = r.standard_normal(param.shape)
    for buffer in ("running_mean", "running_var"):
        if hasattr(layer, buffer):
            getattr(layer, buffer)[...] = r.uniform(0.5, 1.5, layer.num_features)
    x = r.standard_normal(shape)
    if name == "relu":
        x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink

    def forward(v: np.ndarray) -> np.ndarray:
        if isinstance(layer, nn.Dropout):
            layer.rng = rng(2)  # the same mask at every evaluation
        return layer.forward(v)

    y = forward(x)
    assert y.dtype == np.float64
    grad = r.standard_normal(y.shape)
    dx = layer.backward(grad)
    assert dx.dtype == np.float64
    numeric = eval_numerical_gradient_array(forward, x, grad)
    assert rel_error(dx, numeric) < 1e-6, name
    for pname, param in layer.named_parameters():
        numeric = eval_numerical_gradient_array(lambda _: forward(x), param.data, grad)
        assert param.grad.dtype == np.float64
        assert rel_error(param.grad, numeric) < 1e-6, f"{name}: {pname}"


# State, initialisation and representation.

STATEFUL_PAIRS = [
    (lambda: nn.Conv2d(2, 3, 3), lambda: torch.nn.Conv2d(2, 3, 3), (4, 2, 5, 5)),
    (lambda: nn.Conv2d(2, 3, (3, 3), bias=False), lambda: torch.nn.Conv2d(2, 3, 3, bias=False), (4, 2, 5, 5)),
    (lambda: nn.Linear(4, 2), lambda: torch.nn.Linear(4, 2), (3, 4)),
    (lambda: nn.Linear(4, 2, bias=False), lambda: torch.nn.Linear(4, 2, bias=False), (3, 4)),
    (lambda: nn.BatchNorm2d(3), lambda: torch.nn.BatchNorm2d(3), (4, 3, 2, 2)),
    (lambda: nn.BatchNorm1d(3, affine=False), lambda: torch.nn.BatchNorm1d(3, affine=False), (4, 3)),
    (lambda: nn.BatchNorm1d(3, bias=False), lambda: torch.nn.BatchNorm1d(3, bias=False), (4, 3)),
    (
        lambda: nn.BatchNorm2d(3, track_running_stats=False),
        lambda: torch.nn.BatchNorm2d(3, track_running_stats=False),
        (4, 3, 2, 2),
    ),
]


@pytest.mark.parametrize(("make", "make_twin", "input_shape"), STATEFUL_PAIRS)
def test_state_dict_matches_torch_and_loads_from_it(make, make_twin, input_shape):
    layer, twin = make(), make_twin()
    ours = [(key, np.shape(value)) for key, value in layer.state_dict().items()]
    theirs = [(key, tuple(value.shape)) for key, value in twin.state_dict().items()]
    assert ours == theirs
    with torch.no_grad():
        for value in twin.state_dict().values():
            value.copy_(torch.rand(value.shape) + 0.5 if value.is_floating_point() else torch.tensor(7))
    layer.load_state_dict({key: value.numpy() for key, value in twin.state_dict().items()})
    for key, value in twin.state_dict().items():
        assert layer.state_dict()[key].dtype == value.numpy().dtype, key
        np.testing.assert_array_equal(layer.state_dict()[key], value.numpy(), err_msg=key)
    x = rng().standard_normal(input_shape).astype(np.float32)
    layer.eval()
    twin.eval()
    np.testing.assert_allclose(layer.forward(x), twin(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_load_state_dict_names_what_does_not_fit():
    layer = nn.Linear(4, 2)
    with pytest.raises(KeyError, match=r"missing keys \['bias'\]"):
        layer.load_state_dict({"weight": np.zeros((2, 4))})
    with pytest.raises(KeyError, match=r"unexpected keys \['running_mean'\]"):
        layer.load_state_dict({"weight": np.zeros((2, 4)), "bias": np.zeros(2), "running_mean": np.zeros(2)})
    with pytest.raises(ValueError, match=r"state_dict\['weight'\] has shape \(3, 4\), Linear expects \(2, 4\)"):
        layer.load_state_dict({"weight": np.zeros((3, 4)), "bias": np.zeros(2)})
    bn = nn.BatchNorm2d(3)
    with pytest.raises(KeyError, match=r"missing keys \['num_batches_tracked'\]"):
        bn.load_state_dict(
            {key: value for key, value in torch.nn.BatchNorm2d(3).state_dict().items() if key != "num_batches_tracked"}
        )


@pytest.mark.parametrize("shape", [(7, 3), (20, 300), (16, 8, 3, 3), (4, 1, 2, 2), (5, 6, 1, 1), (3, 2, 4)])
def test_fan_in_and_fan_out_are_torchs(shape):
    assert calculate_fan_in_and_fan_out(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        calculate_fan_in_and_fan_out((5,))


@pytest.mark.parametrize(
    ("layer", "twin", "fan_in"),
    [
        (nn.Linear(300, 200, rng=rng()), torch.nn.Linear(300, 200), 300),
        (nn.Conv2d(8, 64, 3, rng=rng()), torch.nn.Conv2d(8, 64, 3), 72),
    ],
)
def test_default_initialisation_is_torchs(layer, twin, fan_in):
    bound = 1 / math.sqrt(fan_in)
    for name, param in layer.named_parameters():
        ours, theirs = param.data, dict(twin.named_parameters())[name].detach().numpy()
        assert ours.dtype == np.float32 and ours.shape == theirs.shape
        for values in (ours, theirs):  # U(-b, b): within the bounds, mean 0, std b / sqrt(3)
            assert np.abs(values).max() <= bound
            assert np.abs(values).max() > 0.9 * bound
            assert abs(values.mean()) < 4 * bound / math.sqrt(3 * values.size)
            assert abs(values.std() - bound / math.sqrt(3)) < 0.1 * bound


def test_initialisation_draws_from_the_given_generator():
    a, b = kaiming_uniform((4, 3, 2, 2), rng(5)), kaiming_uniform((4, 3, 2, 2), rng(5))
    np.testing.assert_array_equal(a, b)
    assert np.abs(kaiming_uniform((50, 40), rng(), a=0.0)).max() <= math.sqrt(6 / 40)  # He's bound with a = 0
    assert kaiming_uniform((2, 2), rng(), dtype=np.float64).dtype == np.float64
    assert np.abs(bias_uniform(1000, 25, rng())).max() <= 0.2
    np.testing.assert_array_equal(nn.Linear(3, 2, rng=rng(1)).weight.data, nn.Linear(3, 2, rng=rng(1)).weight.data)
    assert nn.Conv2d(1, 2, 3, dtype=np.float64).weight.dtype == np.float64


@pytest.mark.parametrize(
    ("layer", "twin"),
    [
        (nn.Conv2d(2, 3, 3), torch.nn.Conv2d(2, 3, 3)),
        (nn.Conv2d(2, 3, (3, 3), 2, 1, bias=False), torch.nn.Conv2d(2, 3, (3, 3), 2, 1, bias=False)),
        (nn.Linear(3, 4, bias=False), torch.nn.Linear(3, 4, bias=False)),
        (nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
        (nn.MaxPool2d(3, 1, 1), torch.nn.MaxPool2d(3, 1, 1)),
        (nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)),
        (nn.BatchNorm1d(4, momentum=None, affine=False), torch.nn.BatchNorm1d(4, momentum=None, affine=False)),
        (nn.SiLU(), torch.nn.SiLU()),
        (nn.ReLU(), torch.nn.ReLU()),
        (nn.Dropout(0.3), torch.nn.Dropout(0.3)),
        (nn.Flatten(2), torch.nn.Flatten(2)),
    ],
    ids=lambda v: type(v).__name__,
)
def test_repr_is_torchs(layer, twin):
    assert repr(layer) == repr(twin)


def test_unsupported_options_are_refused():
    with pytest.raises(ValueError, match=r"only square kernel_size is supported, got \(3, 2\)"):
        nn.Conv2d(1, 1, (3, 2))
    with pytest.raises(ValueError, match="only square stride"):
        nn.MaxPool2d(2, (1, 2))
    with pytest.raises(ValueError, match="at most half the kernel size"):
        nn.MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match=r"Conv2d expects 3 input channels, got input of shape \(1, 2, 5, 5\)"):
        nn.Conv2d(3, 1, 3).forward(np.zeros((1, 2, 5, 5), np.float32))
