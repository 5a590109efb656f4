"""SGD, Adam and AdamW against torch.optim: 20 steps from the same parameters and gradients."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from lablib import optim
from lablib.nn import Parameter

CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.05}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "betas": (0.3, 0.9)}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.3, "eps": 1e-6}),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kwargs.items())}" for name, kwargs in CASES]
SHAPES = [(3, 4), (5,), (2, 1, 3)]


def save_and_load(state: dict) -> dict:
    """Through ``np.savez`` and ``np.load(allow_pickle=False)``, as a checkpoint stores it."""
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def run_both(name, kwargs, dtype, steps=20, seed=0, split_at=None, skip_odd=False):
    """Drive our optimizer and torch's with the same gradients; at ``split_at`` ours is rebuilt
    from its state_dict. With ``skip_odd`` the second parameter has no gradient on odd steps."""
    rng = np.random.default_rng(seed)
    start = [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]
    ours = [Parameter(array.copy()) for array in start]
    theirs = [torch.tensor(array.copy(), requires_grad=True) for array in start]
    opt = getattr(optim, name)(ours, **kwargs)
    topt = getattr(torch.optim, name)(theirs, foreach=False, **kwargs)
    for step in range(steps):
        if step == split_at:
            state = save_and_load(opt.state_dict())
            opt = getattr(optim, name)(ours, **kwargs)
            opt.load_state_dict(state)
        if step == steps // 2:  # a schedule changes the rate between steps
            opt.param_groups[0]["lr"] *= 0.5
            topt.param_groups[0]["lr"] *= 0.5
        opt.zero_grad()
        topt.zero_grad()
        for index, (p, t) in enumerate(zip(ours, theirs, strict=True)):
            grad = rng.standard_normal(p.shape).astype(dtype)
            if not (skip_odd and index == 1 and step % 2):
                p.grad, t.grad = grad.copy(), torch.from_numpy(grad.copy())
        opt.step()
        topt.step()
    return ours, theirs, opt


def assert_same(ours, theirs, rtol):
    for p, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=rtol, atol=rtol)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
@pytest.mark.parametrize(("dtype", "rtol"), [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_twenty_steps_match_torch(name, kwargs, dtype, rtol):
    ours, theirs, opt = run_both(name, kwargs, dtype)
    assert_same(ours, theirs, rtol)
    for p in ours:
        assert p.data.dtype == dtype
        assert all(value.dtype == dtype for value in opt.state[p].values() if isinstance(value, np.ndarray))


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_parameters_without_gradient_are_skipped_as_torch_skips_them(name, kwargs):
    ours, theirs, _ = run_both(name, kwargs, np.float64, skip_odd=True)
    assert_same(ours, theirs, 1e-12)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_state_dict_round_trip_continues_identically(name, kwargs):
    whole, _, _ = run_both(name, kwargs, np.float32)
    split, _, _ = run_both(name, kwargs, np.float32, split_at=9)
    for a, b in zip(whole, split, strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_state_dict_is_flat_arrays_and_numbers():
    _, _, opt = run_both("Adam", {"lr": 0.01, "weight_decay": 0.1}, np.float32, steps=3)
    state = opt.state_dict()
    assert state["state.2.step"] == 3
    assert state["state.2.exp_avg"].shape == SHAPES[2]
    assert state["param_groups.0.lr"] == 0.005 and state["param_groups.0.weight_decay"] == 0.1
    np.testing.assert_array_equal(state["param_groups.0.betas"], [0.9, 0.999])
    np.testing.assert_array_equal(state["param_groups.0.params"], [0, 1, 2])
    assert state["state.0.exp_avg"] is not opt.state[opt.param_groups[0]["params"][0]]["exp_avg"]


def test_param_groups_match_torch():
    rng = np.random.default_rng(1)
    start = [rng.standard_normal((4, 3)) for _ in range(3)]
    ours = [Parameter(array.copy()) for array in start]
    theirs = [torch.tensor(array.copy(), requires_grad=True) for array in start]
    groups = [{"lr": 0.05, "weight_decay": 0.1}, {"betas": (0.5, 0.9)}]
    opt = optim.AdamW([{"params": ours[:2], **groups[0]}, {"params": ours[2:], **groups[1]}], lr=0.01)
    topt = torch.optim.AdamW(
        [{"params": theirs[:2], **groups[0]}, {"params": theirs[2:], **groups[1]}], lr=0.01, foreach=False
    )
    for _ in range(10):
        for p, t in zip(ours, theirs, strict=True):
            grad = rng.standard_normal(p.shape)
            p.grad, t.grad = grad, torch.from_numpy(grad.copy())
        opt.step()
        topt.step()
    assert_same(ours, theirs, 1e-12)
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["weight_decay"] == 1e-2


def test_load_state_dict_refuses_another_model():
    p = Parameter(np.ones((2, 3)))
    p.grad = np.ones((2, 3))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    opt.step()
    with pytest.raises(ValueError, match="shape"):
        optim.SGD([Parameter(np.ones(4))], lr=0.1, momentum=0.9).load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="parameter group 0"):
        optim.SGD([Parameter(np.ones((2, 3))), Parameter(np.ones(1))], lr=0.1).load_state_dict(opt.state_dict())
    with pytest.raises(KeyError, match="names no parameter"):
        optim.SGD([p], lr=0.1).load_state_dict({**opt.state_dict(), "state.5.momentum_buffer": np.ones(1)})


def test_a_parameter_in_two_groups_is_refused():
    p = Parameter(np.ones(2))
    with pytest.raises(ValueError, match="appears twice"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


def test_zero_grad_clears_gradients():
    p = Parameter(np.ones(2))
    p.grad = np.ones(2)
    optim.SGD([p], lr=0.1).zero_grad()
    assert p.grad is None
