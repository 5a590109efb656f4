"""no_grad: a forward that keeps nothing for a backward gives the same output, to the last bit."""

from __future__ import annotations

import numpy as np
import pytest

from lablib import nn
from lablib.models.numpy_model import build_numpy
from lablib.models.specs import get_spec

ARRAY_BYTES = 4096  # larger than any per-channel statistic a layer keeps between steps here


def _kept_arrays(module: nn.Module) -> list[str]:
    """Names of the activation-sized arrays a module holds beside its parameters and buffers."""
    registered = {id(p.data) for p in module.parameters()} | {id(b) for _, b in module.named_buffers()}
    return [
        f"{name}.{attr}"
        for name, layer in module.named_modules()
        for attr, value in vars(layer).items()
        if attr != "_grad_cols"  # the backward's workspace, kept by a training step, not by a forward
        and isinstance(value, np.ndarray)
        and value.nbytes > ARRAY_BYTES
        and id(value) not in registered
    ]


@pytest.mark.parametrize(("name", "width"), [("lab2025_cnn", 20), ("lab2023_cnn", 12)])
@pytest.mark.parametrize("train", [False, True])
def test_no_grad_gives_the_same_bits_and_keeps_nothing(name, width, train):
    model = build_numpy(get_spec(name, width), seed=0).train(train)
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (8, 1, 28, 28)).astype(np.float32)
    state = {key: value.copy() for key, value in model.state_dict().items()}
    expected = model(x)
    assert _kept_arrays(model), "a forward with gradients keeps what its backward needs"
    model.load_state_dict(state)  # the running statistics as before the first forward
    with nn.no_grad():
        assert not nn.is_grad_enabled()
        actual = model(x)
    assert nn.is_grad_enabled()
    np.testing.assert_array_equal(actual, expected)
    assert _kept_arrays(model) == [], "under no_grad a forward keeps nothing"
    with pytest.raises(RuntimeError, match=r"backward needs a forward before it, outside lablib.nn.no_grad\(\)"):
        model.backward(np.ones_like(actual))


def test_losses_under_no_grad_give_the_same_value_and_no_backward():
    rng = np.random.default_rng(0)
    logits, target = rng.standard_normal((6, 10)).astype(np.float32), rng.integers(0, 10, 6)
    ce, center = nn.CrossEntropyLoss(label_smoothing=0.1), nn.CenterLoss(10, 10, rng=np.random.default_rng(2))
    expected = ce(logits, target), center(logits, target)
    with nn.no_grad():
        assert (ce(logits, target), center(logits, target)) == expected
    for loss in (ce.backward, center.backward, center.update_centers):
        with pytest.raises(RuntimeError, match=r"outside lablib\.nn\.no_grad"):
            loss()


def test_no_grad_is_restored_after_an_error_and_nests():
    with pytest.raises(ValueError), nn.no_grad():
        raise ValueError
    assert nn.is_grad_enabled()
    with nn.no_grad():
        with nn.no_grad():
            assert not nn.is_grad_enabled()
        assert not nn.is_grad_enabled()
    assert nn.is_grad_enabled()

    @nn.no_grad()
    def evaluate() -> bool:
        return nn.is_grad_enabled()

    assert evaluate() is False and nn.is_grad_enabled()


def test_a_backward_in_eval_mode_still_works_outside_no_grad():
    """Evaluation with gradients (a gradient check of running statistics) keeps what backward needs."""
    layer = nn.Sequential(nn.BatchNorm1d(4), nn.SiLU(), nn.Linear(4, 3, rng=np.random.default_rng(0))).eval()
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    layer(x)
    assert layer.backward(np.ones((5, 3), np.float32)).shape == (5, 4)
