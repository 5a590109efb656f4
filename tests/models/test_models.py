"""Both models: report 000's Table 1, identical state dicts both ways, NumPy equal to PyTorch step for step."""

from __future__ import annotations

import functools
import gzip
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from lablib import nn, optim
from lablib.data.fashion_mnist import DEBIAN_DIR
from lablib.models.numpy_model import Classifier, build_numpy
from lablib.models.specs import get_spec
from lablib.models.summary import format_summary, main, summary, summary_markdown
from lablib.models.torch_model import (
    TorchClassifier,
    build_torch,
    load_numpy_state,
    numpy_to_torch_state,
    torch_to_numpy_state,
)

TABLE_1 = [  # report 000: layer name, parameters, input shape, output shape
    ("Conv2d", 320, (1, 28, 28), (32, 28, 28)),
    ("BatchNorm2d", 64, (32, 28, 28), (32, 28, 28)),
    ("SiLU", 0, (32, 28, 28), (32, 28, 28)),
    ("Conv2d", 18_496, (32, 28, 28), (64, 14, 14)),
    ("BatchNorm2d", 128, (64, 14, 14), (64, 14, 14)),
    ("SiLU", 0, (64, 14, 14), (64, 14, 14)),
    ("Conv2d", 73_856, (64, 14, 14), (128, 7, 7)),
    ("BatchNorm2d", 256, (128, 7, 7), (128, 7, 7)),
    ("SiLU", 0, (128, 7, 7), (128, 7, 7)),
    ("Conv2d", 294_912, (128, 7, 7), (256, 4, 4)),
    ("BatchNorm2d", 512, (256, 4, 4), (256, 4, 4)),
    ("SiLU", 0, (256, 4, 4), (256, 4, 4)),
    ("Flatten", 0, (256, 4, 4), (4096,)),
    ("Linear", 4_195_328, (4096,), (1024,)),
    ("BatchNorm1d", 2_048, (1024,), (1024,)),
    ("SiLU", 0, (1024,), (1024,)),
    ("Linear", 262_400, (1024,), (256,)),
    ("BatchNorm1d", 512, (256,), (256,)),
    ("SiLU", 0, (256,), (256,)),
    ("Linear", 16_448, (256,), (64,)),
    ("BatchNorm1d", 128, (64,), (64,)),
    ("SiLU", 0, (64,), (64,)),
    ("Linear", 650, (64,), (10,)),
]

LR = 1e-3


# --- the specs and the summary -------------------------------------------------------------------


def test_lab2025_cnn_is_report_000_table_1():
    model = build_numpy(get_spec("lab2025_cnn"), seed=0)
    rows = summary(model)
    assert [(r.layer, r.parameters, r.input_shape, r.output_shape) for r in rows] == TABLE_1
    assert sum(r.parameters for r in rows) == sum(p.data.size for p in model.parameters()) == 4_866_058
    assert len(model.features) == 19  # the center loss acts on the 256 features of Table 1's row 19


def test_format_summary_prints_table_1():
    lines = format_summary(summary(build_numpy(get_spec("lab2025_cnn"), seed=0))).splitlines()
    assert lines[0].split() == ["Layer", "Name", "Parameters", "Input", "Shape", "Output", "Shape"]
    assert lines[1].split() == ["Conv2d", "320", "(1,", "28,", "28)", "(32,", "28,", "28)"]
    assert lines[14].split() == ["Linear", "4,195,328", "(4096)", "(1024)"]
    assert lines[-1] == "Total number of parameters: 4,866,058"
    assert len(lines) == len(TABLE_1) + 2


def test_summary_markdown_and_command_line():
    rows = summary(build_numpy(get_spec("lab2025_cnn"), seed=0))
    markdown = summary_markdown(rows).splitlines()
    assert markdown[0] == "| Layer Name | Parameters | Input Shape | Output Shape |"
    assert markdown[2] == "| Conv2d | 320 | (1, 28, 28) | (32, 28, 28) |"
    assert markdown[-1] == "| **Total** | **4,866,058** | | |"
    result = CliRunner().invoke(main, ["--model", "lab2023_cnn", "--width", "12"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("Total number of parameters: 20,410")


def test_summary_keeps_the_training_mode():
    model = build_numpy(get_spec("lab2023_cnn"), seed=0, dtype=np.float64)
    summary(model)
    assert all(module.training for module in model.modules())
    model.eval()
    summary(model)
    assert not any(module.training for module in model.modules())


@pytest.mark.parametrize("width", [12, 16, 20])
def test_lab2023_cnn_parameter_count(width):
    rows = summary(build_numpy(get_spec("lab2023_cnn", width), seed=0))
    conv = 3 * 3 * width + width
    linear = 13 * 13 * width * 10 + 10
    assert [(r.layer, r.parameters) for r in rows] == [
        ("Conv2d", conv),
        ("MaxPool2d", 0),
        ("Flatten", 0),
        ("Linear", linear),
    ]
    assert [r.output_shape for r in rows] == [(width, 26, 26), (width, 13, 13), (13 * 13 * width,), (10,)]
    assert sum(r.parameters for r in rows) == 1700 * width + 10


def test_specs_are_plain_data():
    for name, width in [("lab2025_cnn", 20), ("lab2023_cnn", 16)]:
        spec = get_spec(name, width)
        json.dumps(spec)  # raises on anything but plain data
        assert list(spec) == ["features", "classifier"]
        assert all(
            isinstance(layer, str) and isinstance(kwargs, dict) for part in spec.values() for layer, kwargs in part
        )


def test_unknown_model_and_bad_width_are_named():
    with pytest.raises(ValueError, match="unknown model 'resnet'; choose one of lab2025_cnn, lab2023_cnn"):
        get_spec("resnet")
    with pytest.raises(ValueError, match="width=0"):
        get_spec("lab2023_cnn", 0)


def test_numpy_side_never_imports_torch():
    code = "import sys, lablib.models, lablib.models.summary; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- building: seeds, dtypes, state dicts -------------------------------------------------------


def test_build_numpy_is_seeded_and_typed():
    spec = get_spec("lab2023_cnn", 12)
    a, b = build_numpy(spec, seed=3), build_numpy(spec, rng=np.random.default_rng(3))
    c = build_numpy(spec, seed=4, dtype=np.float64)
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(value, b.state_dict()[key])
        assert not np.array_equal(value, c.state_dict()[key])
        assert value.dtype == np.float32
        assert c.state_dict()[key].dtype == np.float64


def test_normal_fan_in_redraws_conv_and_linear_weights_only():
    spec = get_spec("lab2025_cnn")
    pytorch = build_numpy(spec, seed=5)
    assert all(
        np.array_equal(v, build_numpy(spec, seed=5, init="pytorch").state_dict()[k])
        for k, v in pytorch.state_dict().items()
    )
    state = build_numpy(spec, seed=5, init="normal_fan_in").state_dict()
    for module_name, module in pytorch.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            weight = state[f"{module_name}.weight"]
            fan_in = weight[0].size
            assert abs(weight.std() * fan_in - 1) < 0.1, module_name  # N(0, 1) / fan_in
            if module.bias is not None:
                assert not state[f"{module_name}.bias"].any()
        elif isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
            for key, value in module.state_dict().items():
                np.testing.assert_array_equal(state[f"{module_name}.{key}"], value)
    with pytest.raises(ValueError, match="unknown init 'xavier'; choose pytorch or normal_fan_in"):
        build_numpy(spec, seed=5, init="xavier")


@pytest.mark.parametrize(("name", "width"), [("lab2025_cnn", 20), ("lab2023_cnn", 12)])
def test_state_dict_keys_order_and_shapes_match(name, width):
    spec = get_spec(name, width)
    ours, twin = build_numpy(spec, seed=1), build_torch(spec)
    assert isinstance(ours, Classifier)
    assert isinstance(twin, TorchClassifier)
    assert [(k, v.shape, v.dtype.name) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in twin.state_dict().items()
    ]
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in twin.named_parameters()]


def test_lab2025_cnn_keys_are_torch_keys():
    keys = list(build_numpy(get_spec("lab2025_cnn"), seed=0).state_dict())
    assert keys[:7] == [
        "features.0.weight",
        "features.0.bias",
        "features.1.weight",
        "features.1.bias",
        "features.1.running_mean",
        "features.1.running_var",
        "features.1.num_batches_tracked",
    ]
    assert "features.9.bias" not in keys
    assert keys[-2:] == ["classifier.3.weight", "classifier.3.bias"]


@pytest.mark.parametrize(("name", "width"), [("lab2025_cnn", 20), ("lab2023_cnn", 12)])
def test_checkpoints_load_both_ways(name, width, tmp_path):
    """NumPy -> .npz -> PyTorch -> .npz -> NumPy, every array (num_batches_tracked too) unchanged."""
    spec = get_spec(name, width)
    ours = build_numpy(spec, seed=1)
    for module in ours.modules():
        if hasattr(module, "num_batches_tracked"):
            module.num_batches_tracked += 7
            module.running_var *= 2
    np.savez(tmp_path / "numpy.npz", **ours.state_dict())
    twin = build_torch(spec)
    load_numpy_state(twin, dict(np.load(tmp_path / "numpy.npz")))
    np.savez(tmp_path / "torch.npz", **torch_to_numpy_state(twin))
    back = build_numpy(spec, seed=2)
    back.load_state_dict(dict(np.load(tmp_path / "torch.npz")))
    for key, value in ours.state_dict().items():
        assert back.state_dict()[key].dtype == value.dtype, key
        np.testing.assert_array_equal(back.state_dict()[key], value, err_msg=key)
    torch_state = twin.state_dict()
    for key, tensor in numpy_to_torch_state(ours.state_dict()).items():
        assert tensor.dtype == torch_state[key].dtype, key
        assert torch.equal(tensor, torch_state[key]), key


def test_load_numpy_state_is_strict():
    spec = get_spec("lab2023_cnn", 12)
    state = build_numpy(spec, seed=0).state_dict()
    del state["classifier.0.bias"]
    with pytest.raises(RuntimeError, match=r"classifier\.0\.bias"):
        load_numpy_state(build_torch(spec), state)


# --- numerics: the same weights give the same numbers -------------------------------------------


def real_batch(n: int, dtype: type = np.float32) -> np.ndarray:
    """The first ``n`` Fashion-MNIST test images scaled to [-0.5, 0.5] as report 000 does, else noise."""
    path = DEBIAN_DIR / "t10k-images-idx3-ubyte.gz"
    if path.is_file():
        pixels = np.frombuffer(gzip.decompress(path.read_bytes()), np.uint8, offset=16)
        return (pixels[: n * 784].reshape(n, 1, 28, 28) / 255 - 0.5).astype(dtype)
    return np.random.default_rng(0).standard_normal((n, 1, 28, 28)).astype(dtype)


def twins(name: str, width: int = 20, dtype: type = np.float32) -> tuple[Classifier, TorchClassifier]:
    """The NumPy model and its PyTorch twin holding the same weights.

    BatchNorm's weights, biases and running statistics are drawn away from their 1/0 defaults, so that
    in eval mode BatchNorm is no identity and every one of them shows in the logits.
    """
    spec = get_spec(name, width)
    ours, twin = build_numpy(spec, seed=0), build_torch(spec)
    rng = np.random.default_rng(1)
    for module in ours.modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            n = module.num_features
            module.weight.data[...] = rng.uniform(0.5, 1.5, n)
            module.bias.data[...] = rng.normal(0, 0.2, n)
            module.running_mean[...] = rng.normal(0, 0.2, n)
            module.running_var[...] = rng.uniform(0.5, 2, n)
    load_numpy_state(twin, ours.state_dict())
    if dtype == np.float64:
        ours.double()
        twin.double()
    return ours, twin


@pytest.mark.parametrize(("name", "batch"), [("lab2025_cnn", 64), ("lab2023_cnn", 8)])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_features_and_logits_equal_pytorch(name, batch, train):
    """Eval mode uses the running statistics, train mode the batch's (and updates the running ones)."""
    ours, twin = twins(name)
    ours.train(train)
    twin.train(train)
    x = real_batch(batch)
    features = ours.features(x)
    logits = ours.classifier(features)
    with torch.no_grad():
        torch_features = twin.features(torch.from_numpy(x))
        torch_logits = twin.classifier(torch_features)
    assert features.shape == (batch, 256 if name == "lab2025_cnn" else 13 * 13 * 20)
    assert logits.shape == (batch, 10)
    np.testing.assert_allclose(features, torch_features.numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(logits, torch_logits.numpy(), rtol=0, atol=1e-4)
    theirs = torch_to_numpy_state(twin)
    for key, value in ours.state_dict().items():
        np.testing.assert_allclose(value, theirs[key], rtol=0, atol=1e-6, err_msg=key)


@functools.cache
def train_step_both(name: str, batch: int, dtype: type) -> tuple[dict, dict, dict, dict]:
    """One step of cross-entropy and Adam(lr=1e-3) in each framework from the same weights and batch.

    Returns the NumPy and PyTorch state dicts after the step, then their gradients by parameter name.
    """
    ours, twin = twins(name, dtype=dtype)
    x, y = real_batch(batch, dtype), np.arange(batch) % 10

    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(list(ours.parameters()), lr=LR)
    loss = criterion(ours(x), y)
    ours.backward(criterion.backward())
    grads = {key: param.grad.copy() for key, param in ours.named_parameters()}
    optimizer.step()

    torch_optimizer = torch.optim.Adam(twin.parameters(), lr=LR)
    torch_loss = torch.nn.CrossEntropyLoss()(twin(torch.from_numpy(x)), torch.from_numpy(y))
    torch_loss.backward()
    torch_grads = {key: param.grad.numpy().copy() for key, param in twin.named_parameters()}
    torch_optimizer.step()

    assert loss == pytest.approx(torch_loss.item(), rel=1e-6)
    return ours.state_dict(), torch_to_numpy_state(twin), grads, torch_grads


STEP_CASES = [("lab2025_cnn", 64), ("lab2023_cnn", 1), ("lab2023_cnn", 8)]
TOLERANCE = {np.float32: 1e-4, np.float64: 1e-9}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "batch"), STEP_CASES)
def test_one_training_step_gives_the_same_gradients(name, batch, dtype):
    """Gradients agree to ``tol`` of the largest gradient in the model, where rounding errors start.

    This covers the biases of layers feeding a BatchNorm: their true gradient is zero (BatchNorm
    subtracts the batch mean), so both frameworks return rounding noise there.
    """
    *_, grads, torch_grads = train_step_both(name, batch, dtype)
    tol = TOLERANCE[dtype]
    scale = max(np.abs(g).max() for g in torch_grads.values())
    assert list(grads) == list(torch_grads)
    for key, grad in grads.items():
        assert grad.dtype == dtype
        np.testing.assert_allclose(grad, torch_grads[key], rtol=tol, atol=tol * scale, err_msg=key)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "batch"), STEP_CASES)
def test_one_training_step_leaves_the_same_weights(name, batch, dtype):
    """Weights within 1e-4 after one Adam step (1e-8 in float64), BatchNorm running stats too.

    Adam's first step is ``lr * g / (|g| + eps)``, about ``lr * sign(g)``: where the two frameworks'
    gradients differ by a tenth of their size or more (gradients at the rounding floor, such as the
    biases feeding a BatchNorm), the sign is rounding's choice and the weights may differ by up to
    ``2 * lr``. The gradient test bounds such entries by about ``1e-3`` of the model's largest gradient.
    """
    ours, theirs, grads, torch_grads = train_step_both(name, batch, dtype)
    atol = 1e-4 if dtype == np.float32 else 1e-8
    for key, value in ours.items():
        assert value.dtype == theirs[key].dtype, key
        if key.endswith("num_batches_tracked"):
            assert value == theirs[key] == 1, key
            continue
        diff = np.abs(value - theirs[key])
        undetermined = np.zeros(value.shape, bool)
        if key in grads:
            undetermined = np.abs(grads[key] - torch_grads[key]) >= 0.1 * np.abs(torch_grads[key])
        assert np.all(diff[undetermined] <= 2 * LR * (1 + 1e-4)), key
        assert np.all(diff[~undetermined] <= atol), f"{key}: max diff {diff[~undetermined].max():.3g}"
