"""Both models: Table 1 of report 000, identical state dicts, and NumPy equal to PyTorch step for step."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from lablib import optim
from lablib.data.fashion_mnist import DEBIAN_DIR
from lablib.models import build_numpy, get_spec
from lablib.models.summary import format_summary, summary
from lablib.models.torch_model import build_torch, load_numpy_state, torch_to_numpy_state
from lablib.nn import CrossEntropyLoss

TABLE_1 = [  # report 000: layer, parameters, output shape
    ("Conv2d", 320, (32, 28, 28)),
    ("BatchNorm2d", 64, (32, 28, 28)),
    ("SiLU", 0, (32, 28, 28)),
    ("Conv2d", 18496, (64, 14, 14)),
    ("BatchNorm2d", 128, (64, 14, 14)),
    ("SiLU", 0, (64, 14, 14)),
    ("Conv2d", 73856, (128, 7, 7)),
    ("BatchNorm2d", 256, (128, 7, 7)),
    ("SiLU", 0, (128, 7, 7)),
    ("Conv2d", 294912, (256, 4, 4)),
    ("BatchNorm2d", 512, (256, 4, 4)),
    ("SiLU", 0, (256, 4, 4)),
    ("Flatten", 0, (4096,)),
    ("Linear", 4195328, (1024,)),
    ("BatchNorm1d", 2048, (1024,)),
    ("SiLU", 0, (1024,)),
    ("Linear", 262400, (256,)),
    ("BatchNorm1d", 512, (256,)),
    ("SiLU", 0, (256,)),
    ("Linear", 16448, (64,)),
    ("BatchNorm1d", 128, (64,)),
    ("SiLU", 0, (64,)),
    ("Linear", 650, (10,)),
]


def test_lab2025_cnn_is_report_000_table_1():
    rows = summary(build_numpy(get_spec("lab2025_cnn"), seed=0))
    assert [(r.layer, r.parameters, r.output_shape) for r in rows] == TABLE_1
    assert sum(r.parameters for r in rows) == 4_866_058
    assert format_summary(rows).endswith("Total number of parameters: 4,866,058")


@pytest.mark.parametrize("width", [12, 16, 20])
def test_lab2023_cnn_parameter_count(width):
    rows = summary(build_numpy(get_spec("lab2023_cnn", width), seed=0))
    conv = width * 9 + width
    linear = 13 * 13 * width * 10 + 10
    assert [r.parameters for r in rows] == [conv, 0, 0, linear]
    assert rows[2].output_shape == (13 * 13 * width,)


@pytest.mark.parametrize(("name", "width"), [("lab2025_cnn", 20), ("lab2023_cnn", 12)])
def test_state_dicts_match_and_load_both_ways(name, width, tmp_path):
    spec = get_spec(name, width)
    ours, twin = build_numpy(spec, seed=1), build_torch(spec)
    assert [(k, np.shape(v)) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in twin.state_dict().items()
    ]
    np.savez(tmp_path / "numpy.npz", **ours.state_dict())
    load_numpy_state(twin, dict(np.load(tmp_path / "numpy.npz")))
    back = build_numpy(spec, seed=2)
    back.load_state_dict(torch_to_numpy_state(twin))
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[key], value)


def real_batch(n: int) -> np.ndarray:
    path = DEBIAN_DIR / "t10k-images-idx3-ubyte.gz"
    if path.is_file():
        raw = np.frombuffer(gzip.decompress(Path(path).read_bytes()), np.uint8, offset=16)
        return (raw[: n * 784].reshape(n, 1, 28, 28) / np.float32(255) - np.float32(0.5)).astype(np.float32)
    return np.random.default_rng(0).uniform(-0.5, 0.5, (n, 1, 28, 28)).astype(np.float32)


def twins(name: str, width: int = 20):
    spec = get_spec(name, width)
    ours, twin = build_numpy(spec, seed=0), build_torch(spec)
    load_numpy_state(twin, ours.state_dict())
    return ours, twin


@pytest.mark.parametrize("train", [False, True])
def test_lab2025_cnn_logits_and_features_equal_pytorch(train):
    ours, twin = twins("lab2025_cnn")
    ours.train(train)
    twin.train(train)
    x = real_batch(64)
    features = ours.features(x)
    logits = ours.classifier(features)
    with torch.no_grad():
        tfeatures = twin.features(torch.from_numpy(x))
        tlogits = twin.classifier(tfeatures)
    assert features.shape == (64, 256)
    np.testing.assert_allclose(features, tfeatures.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(logits, tlogits.numpy(), rtol=1e-4, atol=1e-4)


def bias_before_batchnorm(model) -> set[str]:
    """Biases of convolutions that feed a BatchNorm: BatchNorm subtracts the batch mean, so their
    true gradient is zero and what autograd returns is rounding noise (around 1e-9). Adam divides
    by the root of that noise, so after one step such a bias has moved by up to ``lr`` either way
    in both frameworks, in no particular direction."""
    names = set()
    for part in ("features", "classifier"):
        layers = list(getattr(model, part))
        for index, (layer, after) in enumerate(itertools.pairwise(layers)):
            if type(layer).__name__ in ("Conv2d", "Linear") and "BatchNorm" in type(after).__name__:
                names.add(f"{part}.{index}.bias")
    return names


@pytest.mark.parametrize(("name", "batch"), [("lab2025_cnn", 32), ("lab2023_cnn", 1), ("lab2023_cnn", 8)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_training_step_leaves_the_same_weights(name, batch, dtype):
    ours, twin = twins(name)
    if dtype == np.float64:
        ours.double()
        twin.double()
    x = real_batch(batch).astype(dtype)
    y = np.arange(batch) % 10
    lr = 1e-3
    opt = optim.Adam(list(ours.parameters()), lr=lr)
    topt = torch.optim.Adam(twin.parameters(), lr=lr)
    loss = CrossEntropyLoss()
    loss(ours(x), y)
    ours.backward(loss.backward())
    opt.step()
    torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    topt.step()
    theirs = torch_to_numpy_state(twin)
    grads = {key: param.grad.numpy() for key, param in twin.named_parameters()}
    noisy = bias_before_batchnorm(ours) if dtype == np.float32 else set()
    for key, value in ours.state_dict().items():
        # In float32, Adam's first step is lr * g / (|g| + eps): for a gradient at the rounding
        # floor (|g| < 1e-6) that is the sign of the noise, so only |step| <= lr can be asserted.
        floor = np.abs(grads[key]) < 1e-6 if key in grads and dtype == np.float32 else np.zeros(value.shape, bool)
        if key in noisy:
            floor[...] = True
        assert np.all(np.abs(value - theirs[key])[floor] <= 2 * lr * 1.0001), key
        np.testing.assert_allclose(value[~floor], theirs[key][~floor], rtol=1e-4, atol=1e-4, err_msg=key)


def test_unknown_model_is_named():
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        get_spec("resnet")
