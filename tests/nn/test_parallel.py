"""The thread pool: blocks that cover each array once, and results bit-identical at any thread count."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import torch

from lablib import nn, optim
from lablib.models.numpy_model import build_numpy
from lablib.models.specs import get_spec
from lablib.models.torch_model import build_torch, load_numpy_state
from lablib.nn import parallel
from tests.nn.twin import compare, copy_weights


@pytest.fixture(autouse=True)
def pool_for_small_arrays(monkeypatch):
    """Every array of more than one block meets the pool, so that test-sized layers exercise it."""
    monkeypatch.setattr(parallel, "POOL_ELEMENTS", parallel.BLOCK_ELEMENTS)


@pytest.fixture
def threads(request):
    """Run the test with ``request.param`` threads, then restore the thread count."""
    before = parallel.get_num_threads()
    parallel.set_num_threads(request.param)
    yield request.param
    parallel.set_num_threads(before)


def with_threads(count, fn):
    before = parallel.get_num_threads()
    parallel.set_num_threads(count)
    try:
        return fn()
    finally:
        parallel.set_num_threads(before)


@pytest.mark.parametrize(
    ("length", "elements"), [(0, 0), (1, 10**7), (5, 10), (7, 7 * 2**16), (64, 64 * 3000), (3, 10**6)]
)
def test_blocks_cover_the_axis_once_in_order(length, elements):
    slices = parallel.blocks(length, elements)
    assert [i for block in slices for i in range(length)[block]] == list(range(length))
    assert all(block.stop > block.start for block in slices) or length == 0
    if elements <= parallel.BLOCK_ELEMENTS:
        assert len(slices) == 1
    else:
        assert len(slices) == min(length, -(-elements // parallel.BLOCK_ELEMENTS))


@pytest.mark.parametrize("threads", [1, 3], indirect=True)
def test_for_blocks_runs_every_block_once_and_raises_what_a_block_raises(threads):
    seen, lock = [], threading.Lock()

    def record(block):
        with lock:
            seen.append(block.start)

    parallel.for_blocks(record, 40, 40 * parallel.BLOCK_ELEMENTS)
    assert sorted(seen) == list(range(40))

    def fail(block):
        if block.start == 17:
            raise ValueError("block 17")

    with pytest.raises(ValueError, match="block 17"):
        parallel.for_blocks(fail, 40, 40 * parallel.BLOCK_ELEMENTS)


def test_the_thread_count_is_blas(monkeypatch):
    for name in parallel.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert parallel.default_num_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "5")
    assert parallel.default_num_threads() == 5
    monkeypatch.setenv("OMP_NUM_THREADS", "3,2")
    assert parallel.default_num_threads() == 3
    with pytest.raises(ValueError, match="at least 1"):
        parallel.set_num_threads(0)


def test_copyto_copies_strided_views():
    src = np.arange(2 * 30 * 40 * 70, dtype=np.float32).reshape(2, 30, 40, 70)[:, ::2, 1:, :].transpose(0, 3, 1, 2)
    dst = np.empty(src.shape, np.float32)
    with_threads(2, lambda: parallel.copyto(dst, src))
    np.testing.assert_array_equal(dst, src)


# Layers large enough to be cut into blocks, at 1 and 2 threads: against PyTorch, and bit-identical.

LAYERS = [
    (lambda r: nn.Conv2d(16, 8, 3, 2, 1, rng=r), lambda: torch.nn.Conv2d(16, 8, 3, 2, 1)),
    (lambda r: nn.Conv2d(16, 8, 3, 1, 1, rng=r), lambda: torch.nn.Conv2d(16, 8, 3, 1, 1)),
    (lambda r: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2)),
    (lambda r: nn.BatchNorm2d(16), lambda: torch.nn.BatchNorm2d(16)),
    (lambda r: nn.SiLU(), lambda: torch.nn.SiLU()),
]
LAYER_IDS = ["conv stride 2", "conv stride 1", "maxpool", "batchnorm", "silu"]


def batch_last_images(r: np.random.Generator) -> np.ndarray:
    """``(12, 16, 30, 30)`` (172,800 values, several blocks) in the layout a convolution hands over."""
    x = (2 * r.standard_normal((12, 16, 30, 30)) + 0.5).astype(np.float32)
    return np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)


def run_layer(make, train: bool) -> dict[str, np.ndarray]:
    r = np.random.default_rng(5)
    layer = make(r).train(train)
    x = batch_last_images(r)
    y = layer.forward(x)
    grad = r.standard_normal(y.shape).astype(np.float32)
    results = {"output": y, "input grad": layer.backward(grad)}
    results |= {f"grad {name}": param.grad for name, param in layer.named_parameters()}
    return results | {f"buffer {name}": buf.copy() for name, buf in layer.named_buffers()}


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(("make", "make_twin"), LAYERS, ids=LAYER_IDS)
def test_layers_are_bit_identical_at_one_and_two_threads(make, make_twin, train):
    one = with_threads(1, lambda: run_layer(make, train))
    two = with_threads(2, lambda: run_layer(make, train))
    assert one.keys() == two.keys()
    for key in one:
        np.testing.assert_array_equal(one[key], two[key], err_msg=key)


@pytest.mark.parametrize("threads", [1, 2], indirect=True)
@pytest.mark.parametrize(("make", "make_twin"), LAYERS, ids=LAYER_IDS)
def test_layers_match_torch_at_each_thread_count(make, make_twin, threads):
    r = np.random.default_rng(6)
    layer, twin = make(r), make_twin()
    copy_weights(layer, twin)
    compare(layer, twin, batch_last_images(r), r, scaled=True)  # weight gradients reach 800


def optimizer_step(name: str, kwargs: dict) -> np.ndarray:
    r = np.random.default_rng(7)
    param = nn.Parameter(r.standard_normal((300, 700)).astype(np.float32))
    optimizer = getattr(optim, name)([param], **kwargs)
    for _ in range(3):
        param.grad = r.standard_normal(param.shape).astype(np.float32)
        optimizer.step()
    return param.data


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("Adam", {"weight_decay": 0.1}), ("AdamW", {}), ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True})],
)
def test_optimizers_are_bit_identical_at_one_and_two_threads_and_match_torch(name, kwargs):
    one = with_threads(1, lambda: optimizer_step(name, kwargs))
    two = with_threads(2, lambda: optimizer_step(name, kwargs))
    np.testing.assert_array_equal(one, two)
    r = np.random.default_rng(7)
    param = torch.nn.Parameter(torch.from_numpy(r.standard_normal((300, 700)).astype(np.float32)))
    optimizer = getattr(torch.optim, name)([param], **kwargs)
    for _ in range(3):
        param.grad = torch.from_numpy(r.standard_normal(param.shape).astype(np.float32))
        optimizer.step()
    np.testing.assert_allclose(one, param.detach().numpy(), rtol=1e-6, atol=1e-6)


# A whole training step of report 000's model.

BATCH = 24


def numpy_step() -> dict[str, np.ndarray]:
    """Forward, cross-entropy, backward and an Adam step of lab2025_cnn; logits, gradients and weights."""
    model = build_numpy(get_spec("lab2025_cnn"), seed=0)
    r = np.random.default_rng(8)
    x, y = r.uniform(-0.5, 0.5, (BATCH, 1, 28, 28)).astype(np.float32), np.arange(BATCH) % 10
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(list(model.parameters()), lr=1e-3)
    logits = model(x)
    criterion(logits, y)
    model.backward(criterion.backward())
    results = {"logits": logits} | {f"grad {k}": p.grad.copy() for k, p in model.named_parameters()}
    optimizer.step()
    return results | {f"after {k}": v.copy() for k, v in model.state_dict().items()}, x, y


def test_a_training_step_is_bit_identical_at_one_and_two_threads():
    one, *_ = with_threads(1, numpy_step)
    two, *_ = with_threads(2, numpy_step)
    for key in one:
        np.testing.assert_array_equal(one[key], two[key], err_msg=key)


@pytest.mark.parametrize("threads", [1, 2], indirect=True)
def test_a_training_step_matches_torch_at_each_thread_count(threads):
    ours, x, y = numpy_step()
    spec = get_spec("lab2025_cnn")
    twin = build_torch(spec)
    load_numpy_state(twin, build_numpy(spec, seed=0).state_dict())
    logits = twin(torch.from_numpy(x))
    torch.nn.functional.cross_entropy(logits, torch.from_numpy(y)).backward()
    np.testing.assert_allclose(ours["logits"], logits.detach().numpy(), rtol=0, atol=1e-4)
    grads = {key: param.grad.numpy() for key, param in twin.named_parameters()}
    scale = max(np.abs(g).max() for g in grads.values())
    for key, grad in grads.items():
        np.testing.assert_allclose(ours[f"grad {key}"], grad, rtol=1e-4, atol=1e-4 * scale, err_msg=key)


def test_small_arrays_stay_in_the_calling_thread(monkeypatch):
    monkeypatch.setattr(parallel, "POOL_ELEMENTS", 2**20)
    callers = set()
    with_threads(2, lambda: parallel.for_blocks(lambda block: callers.add(threading.get_ident()), 16, 2**20 - 1))
    assert callers == {threading.get_ident()}
