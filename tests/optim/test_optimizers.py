"""SGD, Adam and AdamW against torch.optim: 20 steps from the same parameters and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lablib import optim
from lablib.nn import Parameter

CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.3, "eps": 1e-6}),
]


def run_both(name, kwargs, dtype, steps=20, seed=0, split_at=None):
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (5,)]
    start = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    ours = [Parameter(array.copy()) for array in start]
    theirs = [torch.tensor(array.copy(), requires_grad=True) for array in start]
    opt = getattr(optim, name)(ours, **kwargs)
    topt = getattr(torch.optim, name)(theirs, **kwargs)
    for step in range(steps):
        if step == split_at:
            state = opt.state_dict()
            opt = getattr(optim, name)(ours, **kwargs)
            opt.load_state_dict(state)
        for p, t in zip(ours, theirs, strict=True):
            grad = rng.standard_normal(p.shape).astype(dtype)
            p.grad, t.grad = grad.copy(), torch.from_numpy(grad.copy())
        opt.step()
        topt.step()
    return ours, theirs


@pytest.mark.parametrize(("name", "kwargs"), CASES)
@pytest.mark.parametrize(("dtype", "rtol"), [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_twenty_steps_match_torch(name, kwargs, dtype, rtol):
    ours, theirs = run_both(name, kwargs, dtype)
    for p, t in zip(ours, theirs, strict=True):
        assert p.data.dtype == dtype
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=rtol, atol=rtol)


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_state_dict_round_trip_continues_identically(name, kwargs):
    whole, _ = run_both(name, kwargs, np.float64)
    split, _ = run_both(name, kwargs, np.float64, split_at=9)
    for a, b in zip(whole, split, strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_parameters_without_gradient_are_left_alone():
    p, q = Parameter(np.ones(3)), Parameter(np.ones(3))
    p.grad = np.ones(3)
    optim.Adam([p, q], lr=0.1).step()
    np.testing.assert_array_equal(q.data, np.ones(3))
    assert not np.array_equal(p.data, np.ones(3))


def test_zero_grad_clears_gradients():
    p = Parameter(np.ones(2))
    p.grad = np.ones(2)
    optim.SGD([p], lr=0.1).zero_grad()
    assert p.grad is None
