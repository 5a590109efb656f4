"""The plain reference layers: equal to the fast core and to PyTorch, and literally the reports' algorithms."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lablib import nn
from lablib.models.numpy_model import build_numpy
from lablib.models.specs import get_spec
from lablib.nn import reference as ref
from lablib.nn.gradient_check import eval_numerical_gradient_array, rel_error
from lablib.torch_twin import CenterLoss as TorchCenterLoss
from tests.nn.twin import copy_weights

SETTINGS = settings(max_examples=25, deadline=None)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def agree(plain: nn.Module, fast: nn.Module, twin: torch.nn.Module, x: np.ndarray, r: np.random.Generator) -> None:
    """One forward and one backward through each: the reference agrees with the fast layer and with PyTorch's.

    Output, input gradient, parameter gradients and buffers (BatchNorm's running statistics).
    """
    y = plain.forward(x)
    assert y.dtype == x.dtype
    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty = twin(tx)
    grad = r.standard_normal(y.shape).astype(x.dtype)
    ty.backward(torch.from_numpy(grad))
    fast_params, twin_params = dict(fast.named_parameters()), dict(twin.named_parameters())
    assert [name for name, _ in plain.named_parameters()] == list(fast_params) == list(twin_params)
    pairs = [
        ("forward", y, fast.forward(x), ty.detach().numpy()),
        ("input gradient", plain.backward(grad), fast.backward(grad), tx.grad.numpy()),
        *(
            (f"{name}.grad", p.grad, fast_params[name].grad, twin_params[name].grad.numpy())
            for name, p in plain.named_parameters()
        ),
        *((name, plain.state_dict()[name], fast.state_dict()[name], buf.numpy()) for name, buf in twin.named_buffers()),
    ]
    for name, ours, fast_value, torch_value in pairs:
        np.testing.assert_allclose(ours, fast_value, rtol=1e-5, atol=1e-5, err_msg=f"{name}: reference vs fast")
        np.testing.assert_allclose(ours, torch_value, rtol=1e-4, atol=1e-5, err_msg=f"{name}: reference vs torch")


def same_state(plain: nn.Module, fast: nn.Module) -> None:
    """The same names, shapes, dtypes and values: the same draws from the same generator."""
    ours, theirs = plain.state_dict(), fast.state_dict()
    assert list(ours) == list(theirs)
    for key, value in ours.items():
        assert value.dtype == theirs[key].dtype, key
        np.testing.assert_array_equal(value, theirs[key], err_msg=key)


# Equal to the fast core and to PyTorch.


@SETTINGS
@given(
    cls=st.sampled_from([ref.Conv2d, ref.Conv2dIm2col]),
    batch=st.sampled_from([1, 3]),
    cin=st.integers(1, 3),
    cout=st.integers(1, 4),
    kernel=st.sampled_from([1, 2, 3]),
    stride=st.sampled_from([1, 2, 3]),
    padding=st.sampled_from([0, 1, 2]),
    size=st.sampled_from([5, 8, 9]),
    bias=st.booleans(),
)
def test_conv2d_equals_the_fast_core_and_torch(cls, batch, cin, cout, kernel, stride, padding, size, bias):
    args = (cin, cout, kernel, stride, padding, bias)
    plain, fast = cls(*args, rng=rng(size)), nn.Conv2d(*args, rng=rng(size))
    same_state(plain, fast)
    r = rng(size + 1)
    x = r.standard_normal((batch, cin, size, size)).astype(np.float32)
    twin = torch.nn.Conv2d(cin, cout, kernel, stride, padding, bias=bias)
    copy_weights(plain, twin)
    agree(plain, fast, twin, x, r)


@SETTINGS
@given(
    batch=st.sampled_from([1, 2]),
    channels=st.integers(1, 3),
    kernel=st.sampled_from([1, 2, 3]),
    stride=st.sampled_from([None, 1, 2, 3]),
    padding=st.sampled_from([0, 1]),
    size=st.sampled_from([5, 8, 9]),
    ties=st.booleans(),
)
def test_maxpool2d_equals_the_fast_core_and_torch(batch, channels, kernel, stride, padding, size, ties):
    padding = min(padding, kernel // 2)
    r = rng(size + kernel)
    x = r.standard_normal((batch, channels, size, size)).astype(np.float32)
    if ties:  # windows with several maxima: the first one gets the gradient
        x = np.round(x)
    layers = (ref.MaxPool2d(kernel, stride, padding), nn.MaxPool2d(kernel, stride, padding))
    agree(*layers, torch.nn.MaxPool2d(kernel, stride, padding), x, r)


LAYERS = [
    ("Linear", (5, 4), {}, (3, 5)),
    ("Linear", (5, 4), {"bias": False}, (1, 5)),
    ("BatchNorm1d", (4,), {}, (6, 4)),
    ("BatchNorm1d", (3,), {"momentum": 0.3, "eps": 1e-3}, (4, 3, 5)),
    ("BatchNorm2d", (3,), {}, (4, 3, 5, 5)),
    ("SiLU", (), {}, (4, 3, 5, 5)),
    ("ReLU", (), {}, (4, 3, 5, 5)),
    ("Flatten", (), {}, (2, 3, 4, 5)),
    ("Flatten", (2,), {}, (2, 3, 4, 5)),
]


@pytest.mark.parametrize(("name", "args", "kwargs", "shape"), LAYERS, ids=[f"{c[0]}{c[1]}{c[2]}" for c in LAYERS])
def test_layer_equals_the_fast_core_and_torch(name, args, kwargs, shape):
    """Three training batches (BatchNorm's running statistics follow them), then one in evaluation."""

    def build(module):
        cls = getattr(module, name)
        extra = {"rng": rng(1)} if "rng" in inspect.signature(cls).parameters else {}
        return cls(*args, **kwargs, **extra)

    plain, fast, twin = build(ref), build(nn), getattr(torch.nn, name)(*args, **kwargs)
    same_state(plain, fast)
    r = rng(2)
    for param in [*plain.parameters(), *fast.parameters()]:  # off the defaults of 1 and 0
        param.data[...] = rng(3).uniform(0.5, 1.5, param.shape)
    copy_weights(plain, twin)
    for mode, offset in [("train", 1.0), ("train", -2.0), ("train", 5.0), ("eval", 0.5)]:
        for layer in (plain, fast, twin):
            layer.train(mode == "train")
            layer.zero_grad()
        x = (3 * r.standard_normal(shape) + offset).astype(np.float32)
        agree(plain, fast, twin, x, r)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_equals_the_fast_core_and_torch(label_smoothing):
    r = rng()
    logits = (4 * r.standard_normal((6, 10))).astype(np.float32)
    logits[0, 0] = 1e4  # the shift keeps exp finite
    target = r.integers(0, 10, 6)
    plain, fast = ref.CrossEntropyLoss(label_smoothing), nn.CrossEntropyLoss(label_smoothing)
    tz = torch.from_numpy(logits).requires_grad_()
    loss = torch.nn.CrossEntropyLoss(label_smoothing=label_smoothing)(tz, torch.from_numpy(target))
    loss.backward(torch.tensor(0.5))
    assert plain(logits, target) == pytest.approx(fast(logits, target), rel=1e-6)
    assert plain(logits, target) == pytest.approx(loss.item(), rel=1e-5)
    grad = plain.backward(0.5)
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, fast.backward(0.5), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_center_loss_equals_the_fast_core_and_torch():
    r = rng()
    plain, fast = ref.CenterLoss(4, 3, alpha=0.3, rng=rng(5)), nn.CenterLoss(4, 3, alpha=0.3, rng=rng(5))
    same_state(plain, fast)
    twin = TorchCenterLoss(4, 3, alpha=0.3)
    twin.load_state_dict({"centers": torch.from_numpy(plain.centers.copy())})
    for _ in range(3):
        x = r.standard_normal((7, 3)).astype(np.float32)
        target = np.array([0, 0, 1, 1, 1, 3, 0])  # class 2 absent: its centre stays
        tx = torch.from_numpy(x).requires_grad_()
        loss = twin(tx, torch.from_numpy(target))
        loss.backward(torch.tensor(2.0))
        assert plain(x, target) == pytest.approx(fast(x, target), rel=1e-6)
        assert plain(x, target) == pytest.approx(loss.item(), rel=1e-5)
        np.testing.assert_allclose(plain.backward(2.0), fast.backward(2.0), rtol=1e-6)
        np.testing.assert_allclose(plain.backward(2.0), tx.grad.numpy(), rtol=1e-5)
        for loss_fn in (plain, fast):
            loss_fn.update_centers()
        twin.update_centers(torch.from_numpy(x), torch.from_numpy(target))
        np.testing.assert_allclose(plain.centers, fast.centers, rtol=1e-6)
        np.testing.assert_allclose(plain.centers, twin.centers.numpy(), rtol=1e-5)


FD_CASES = [
    ("conv regions", lambda r: ref.Conv2d(2, 3, 3, 2, 1, rng=r), (2, 2, 6, 6)),
    ("conv im2col", lambda r: ref.Conv2dIm2col(2, 3, 2, 1, 1, rng=r), (1, 2, 5, 5)),
    ("maxpool", lambda r: ref.MaxPool2d(3, 2, 1), (2, 2, 6, 6)),
    ("linear", lambda r: ref.Linear(5, 4, rng=r), (3, 5)),
    ("batchnorm1d", lambda r: ref.BatchNorm1d(4), (5, 4)),
    ("batchnorm2d", lambda r: ref.BatchNorm2d(3), (2, 3, 4, 4)),
    ("batchnorm2d eval", lambda r: ref.BatchNorm2d(3).eval(), (2, 3, 4, 4)),
    ("silu", lambda r: ref.SiLU(), (3, 7)),
]


@pytest.mark.parametrize(("name", "make", "shape"), FD_CASES, ids=[case[0] for case in FD_CASES])
def test_finite_differences(name, make, shape):
    r = rng(1)
    layer = make(r).double()
    for param in layer.parameters():
        param.data[...] = r.standard_normal(param.shape)
    x = r.standard_normal(shape)
    y = layer.forward(x)
    grad = r.standard_normal(y.shape)
    dx = layer.backward(grad)
    assert rel_error(dx, eval_numerical_gradient_array(layer.forward, x, grad)) < 1e-6, name
    for pname, param in layer.named_parameters():
        numeric = eval_numerical_gradient_array(lambda _: layer.forward(x), param.data, grad)
        assert rel_error(param.grad, numeric) < 1e-6, f"{name}: {pname}"


@pytest.mark.parametrize("model", ["lab2023_cnn", "lab2025_cnn"])
def test_reference_layers_stand_in_for_the_fast_ones_in_both_models(model):
    """A model built from the reference layers has the fast model's state_dict and computes the same.

    In float64, so that the comparison sees the algorithms and not float32's rounding, which BatchNorm amplifies.
    """
    spec = get_spec(model, 4)
    fast = build_numpy(spec, seed=7, dtype=np.float64)
    fast_layers = [*fast.features, *fast.classifier]
    r = rng(7)
    plain = []
    for name, kwargs in [*spec["features"], *spec["classifier"]]:
        cls = getattr(ref, name)
        accepted = inspect.signature(cls).parameters
        extra = {key: value for key, value in (("rng", r), ("dtype", np.float64)) if key in accepted}
        plain.append(cls(**kwargs, **extra))
    plain_model = nn.Sequential(*plain)
    same_state(plain_model, nn.Sequential(*fast_layers))
    x = rng(8).standard_normal((3, 1, 28, 28))
    y = plain_model.forward(x)
    np.testing.assert_allclose(y, fast.forward(x), rtol=1e-10, atol=1e-10)
    grad = rng(9).standard_normal(y.shape)
    plain_model.backward(grad)
    fast.backward(grad)
    for (name, ours), (_, theirs) in zip(plain_model.named_parameters(), fast.named_parameters(), strict=True):
        np.testing.assert_allclose(ours.grad, theirs.grad, rtol=1e-9, atol=1e-9, err_msg=name)


# The reports' own algorithms, transcribed.


def appendix_a_im2col(input, k_size, stride, padding):
    """Report 000, Appendix A, Algorithm 1, ``im2col``: transcribed line by line."""
    batch_size, in_c, in_h, in_w = input.shape
    out_h = (in_h + 2 * padding - k_size) // stride + 1
    out_w = (in_w + 2 * padding - k_size) // stride + 1

    # Padding
    input_padded = (
        np.pad(input, ((0, 0), (0, 0), (padding, padding), (padding, padding)), mode="constant")
        if padding > 0
        else input
    )

    col_idx = 0

    cols = np.zeros((batch_size, in_c * k_size * k_size, out_h * out_w))
    for r in range(0, in_h + 2 * padding - k_size + 1, stride):
        for c in range(0, in_w + 2 * padding - k_size + 1, stride):
            patch = input_padded[:, :, r : r + k_size, c : c + k_size]
            cols[:, :, col_idx] = patch.reshape(batch_size, -1)
            col_idx += 1

    return cols, out_h, out_w


def appendix_a_col2im(cols, input_shape, k_size, stride, padding):
    """Report 000, Appendix A, Algorithm 1, ``col2im``: transcribed line by line."""
    batch_size, in_c, in_h, in_w = input_shape
    out_h = (in_h + 2 * padding - k_size) // stride + 1
    out_w = (in_w + 2 * padding - k_size) // stride + 1

    cols_reshaped = cols.reshape(batch_size, out_h, out_w, in_c, k_size, k_size)

    # Initialize padded image
    h_padded, w_padded = in_h + 2 * padding, in_w + 2 * padding
    img_padded = np.zeros((batch_size, in_c, h_padded, w_padded), dtype=cols.dtype)

    # Reconstruct image
    for y in range(out_h):
        for x in range(out_w):
            h_start, w_start = y * stride, x * stride
            img_padded[:, :, h_start : h_start + k_size, w_start : w_start + k_size] += cols_reshaped[:, y, x, :, :, :]

    return img_padded if padding == 0 else img_padded[:, :, padding:-padding, padding:-padding]


CONV_SHAPES = dict(
    batch=st.sampled_from([1, 2]),
    channels=st.integers(1, 3),
    kernel=st.sampled_from([1, 2, 3]),
    stride=st.sampled_from([1, 2, 3]),
    padding=st.sampled_from([0, 1, 2]),
    size=st.sampled_from([4, 7, 8]),
)


@SETTINGS
@given(**CONV_SHAPES)
def test_im2col_and_col2im_are_appendix_a(batch, channels, kernel, stride, padding, size):
    r = rng(size)
    x = r.standard_normal((batch, channels, size, size))
    cols, out_h, out_w = ref.im2col(x, kernel, stride, padding)
    expected, expected_h, expected_w = appendix_a_im2col(x, kernel, stride, padding)
    np.testing.assert_array_equal(cols, expected)
    assert (out_h, out_w) == (expected_h, expected_w)
    assert ref.im2col(x.astype(np.float32), kernel, stride, padding)[0].dtype == np.float32
    d_cols = r.standard_normal((batch, out_h * out_w, channels * kernel * kernel))
    np.testing.assert_array_equal(
        ref.col2im(d_cols, x.shape, kernel, stride, padding),
        appendix_a_col2im(d_cols, x.shape, kernel, stride, padding),
    )
    # col2im is the adjoint of im2col: <im2col(x), C> = <x, col2im(Cᵀ)>
    inner = np.sum(cols * d_cols.transpose(0, 2, 1))
    assert inner == pytest.approx(np.sum(x * ref.col2im(d_cols, x.shape, kernel, stride, padding)), rel=1e-12)


@SETTINGS
@given(**CONV_SHAPES)
def test_appendix_a_columns_hold_the_regions_in_report_001s_order(batch, channels, kernel, stride, padding, size):
    """im2col's column ``k`` is the ``k``-th region the region generator yields: one algorithm, stored."""
    x = rng(size).standard_normal((batch, channels, size, size))
    cols, _, out_w = appendix_a_im2col(x, kernel, stride, padding)
    regions = list(ref.iter_regions(ref.pad(x, padding), kernel, stride))
    assert len(regions) == cols.shape[2]
    for col_idx, (region, i, j) in enumerate(regions):
        assert col_idx == i * out_w + j
        np.testing.assert_array_equal(cols[:, :, col_idx], region.reshape(batch, -1))


def report_001_regions(image, size, step):
    """Report 001's region iteration at batch 1, as its text describes it: every ``size x size``
    receptive field, row by row (the convolution: 3x3 at stride 1; max pooling: 2x2 regions)."""
    h, w = image.shape
    for i in range((h - size) // step + 1):
        for j in range((w - size) // step + 1):
            yield image[i * step : i * step + size, j * step : j * step + size], i, j


def test_the_region_generator_visits_report_001s_regions_in_its_order():
    image = rng().standard_normal((28, 28))
    for size, step, count in [(3, 1, 26 * 26), (2, 2, 14 * 14)]:
        ours = list(ref.iter_regions(image[None, None], size, step))
        theirs = list(report_001_regions(image, size, step))
        assert len(ours) == len(theirs) == count
        for (region, i, j), (expected, ei, ej) in zip(ours, theirs, strict=True):
            assert (i, j) == (ei, ej)
            np.testing.assert_array_equal(region[0, 0], expected)


def test_the_reference_network_is_report_001s_at_batch_1():
    """Report 001's convolution (each region's dot product with each filter, no bias), its 2x2 max pooling and
    their backward passes, transcribed at batch 1 over a 28x28 image: 20 filters of 3x3 give 26x26, the pooling
    13x13, so the fully-connected layer sees 13x13x20 values, as the report says."""
    r = rng()
    image = r.standard_normal((28, 28))
    conv = ref.Conv2d(1, 20, 3, bias=False, dtype=np.float64, rng=r)
    pool = ref.MaxPool2d(2)
    filters = conv.weight.data[:, 0]  # (20, 3, 3)

    conv_out = np.zeros((26, 26, 20))
    for region, i, j in report_001_regions(image, 3, 1):
        for f in range(20):
            conv_out[i, j, f] = np.sum(region * filters[f])
    ours = conv.forward(image[None, None])
    np.testing.assert_allclose(ours[0].transpose(1, 2, 0), conv_out, rtol=1e-12, atol=1e-12)

    pool_out = np.zeros((13, 13, 20))
    for f in range(20):
        for region, i, j in report_001_regions(conv_out[:, :, f], 2, 2):
            pool_out[i, j, f] = np.max(region)
    pooled = pool.forward(ours)
    assert pooled.shape == (1, 20, 13, 13)
    np.testing.assert_allclose(pooled[0].transpose(1, 2, 0), pool_out, rtol=1e-12, atol=1e-12)

    # Max pooling backward: through the visited 2x2 regions, the output gradient times 1 at each maximum.
    output_grad = r.standard_normal((13, 13, 20))
    dL_dinput = np.zeros((26, 26, 20))
    for f in range(20):
        for region, i, j in report_001_regions(conv_out[:, :, f], 2, 2):
            for i2 in range(2):
                for j2 in range(2):
                    if region[i2, j2] == np.max(region):
                        dL_dinput[i * 2 + i2, j * 2 + j2, f] = output_grad[i, j, f] * 1
    d_conv_out = pool.backward(output_grad.transpose(2, 0, 1)[None])
    np.testing.assert_array_equal(d_conv_out[0].transpose(1, 2, 0), dL_dinput)

    # Convolution backward, as a fully-connected layer's: each filter's gradient adds up output gradient x region.
    dL_dfilters = np.zeros((20, 3, 3))
    for region, i, j in report_001_regions(image, 3, 1):
        for f in range(20):
            dL_dfilters[f] += dL_dinput[i, j, f] * region
    conv.backward(d_conv_out)
    np.testing.assert_allclose(conv.weight.grad[:, 0], dL_dfilters, rtol=1e-12, atol=1e-12)
