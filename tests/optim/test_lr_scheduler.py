"""Learning-rate schedules: 200 epochs against torch.optim.lr_scheduler, and the reports' rules."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from lablib import optim
from lablib.nn import Parameter
from lablib.optim import lr_scheduler


def make_optimizer(framework, name="SGD", lrs=(0.1,), **kwargs):
    """An optimizer with one parameter group per rate in ``lrs``."""
    if framework is torch:
        groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs]
        return getattr(torch.optim, name)(groups, **kwargs)
    groups = [{"params": [Parameter(np.zeros(1))], "lr": lr} for lr in lrs]
    return getattr(optim, name)(groups, **kwargs)


def momentum_of(group):
    return group["betas"][0] if "betas" in group else group["momentum"]


def run(make, framework, steps, optimizer=None, scheduler=None, **opt_kwargs):
    """Rate and momentum of every group at each of ``steps`` steps: shape (steps, groups) each."""
    module = torch.optim.lr_scheduler if framework is torch else lr_scheduler
    optimizer = optimizer or make_optimizer(framework, **opt_kwargs)
    scheduler = scheduler or make(module, optimizer)
    lrs, momenta = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that no optimizer.step() came first
        for _ in range(steps):
            lrs.append([group["lr"] for group in optimizer.param_groups])
            momenta.append([momentum_of(group) for group in optimizer.param_groups])
            scheduler.step()
    return np.array(lrs), np.array(momenta)


SCHEDULES = {
    "step": (lambda m, o: m.StepLR(o, step_size=4, gamma=0.5), 200),
    "step gamma 0.1": (lambda m, o: m.StepLR(o, step_size=30), 200),
    "multistep": (lambda m, o: m.MultiStepLR(o, milestones=[150, 30, 80, 80], gamma=0.2), 200),
    "cosine": (lambda m, o: m.CosineAnnealingLR(o, T_max=200, eta_min=1e-4), 200),
    "cosine past T_max": (lambda m, o: m.CosineAnnealingLR(o, T_max=60), 200),
    "linear warm-up": (lambda m, o: m.LinearLR(o, start_factor=0.1, total_iters=10), 200),
    "linear decay": (lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.05, total_iters=150), 200),
    "warm-up then cosine": (
        lambda m, o: m.SequentialLR(
            o, [m.LinearLR(o, 0.2, 1.0, 5), m.CosineAnnealingLR(o, 195, eta_min=1e-3)], milestones=[5]
        ),
        200,
    ),
    "warm-up then step then cosine": (
        lambda m, o: m.SequentialLR(
            o,
            [m.LinearLR(o, 0.25, total_iters=3), m.StepLR(o, 10, 0.5), m.CosineAnnealingLR(o, 100)],
            milestones=[3, 100],
        ),
        200,
    ),
    "one-cycle": (lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=2000, cycle_momentum=False), 2000),
    "one-cycle linear three-phase": (
        lambda m, o: m.OneCycleLR(
            o,
            max_lr=0.3,
            epochs=200,
            steps_per_epoch=10,
            pct_start=0.25,
            anneal_strategy="linear",
            three_phase=True,
            cycle_momentum=False,
        ),
        2000,
    ),
}


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("lrs", [(0.1,), (0.1, 0.03)], ids=["one group", "two groups"])
def test_matches_torch(name, lrs):
    make, steps = SCHEDULES[name]
    ours, _ = run(make, optim, steps, lrs=lrs)
    theirs, _ = run(make, torch, steps, lrs=lrs)
    assert ours.shape == (steps, len(lrs))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("optimizer", "kwargs"),
    [("SGD", {"momentum": 0.9}), ("Adam", {"betas": (0.9, 0.99)})],
    ids=["SGD", "Adam"],
)
@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_cycles_momentum_as_torch(optimizer, kwargs, three_phase):
    def make(m, o):
        return m.OneCycleLR(o, max_lr=[0.1, 0.2], total_steps=500, three_phase=three_phase, base_momentum=0.8)

    ours_lr, ours_m = run(make, optim, 500, name=optimizer, lrs=(0.1, 0.2), **kwargs)
    theirs_lr, theirs_m = run(make, torch, 500, name=optimizer, lrs=(0.1, 0.2), **kwargs)
    np.testing.assert_allclose(ours_lr, theirs_lr, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ours_m, theirs_m, rtol=1e-12, atol=1e-15)
    assert ours_m.min() == pytest.approx(0.8) and ours_m.max() == pytest.approx(0.95)


def test_report_001_rule_halves_every_four_epochs():
    """Report 001's own code (Fig. 5) builds the list of rates; it halves at epochs 4, 8, 12, ..."""
    Learning_rate, EPOCH, scheduler_step = 0.1, 30, 4  # the report's names, shadowing ours
    lr_scheduler = [Learning_rate] * EPOCH

    exp = 1
    current_lr = Learning_rate
    for idx, lr in enumerate(lr_scheduler):
        if idx != 0:
            if idx % scheduler_step == 0:
                lr_scheduler[idx] = lr * 0.5**exp
                exp += 1
                current_lr = lr_scheduler[idx]
            else:
                lr_scheduler[idx] = current_lr

    ours, _ = run(lambda m, o: m.StepLR(o, step_size=4, gamma=0.5), optim, EPOCH)
    np.testing.assert_array_equal(ours[:, 0], lr_scheduler)
    assert ours[3, 0] == 0.1 and ours[4, 0] == 0.05 and ours[8, 0] == 0.025 and ours[12, 0] == 0.0125


def test_report_000_rule_halves_every_ten_epochs_after_epoch_100():
    ours, _ = run(lambda m, o: m.StepLR(o, 10, 0.5, start_epoch=100), optim, 200)
    epochs = np.arange(200)
    expected = 0.1 * 0.5 ** np.where(epochs < 100, 0, (epochs - 100) // 10)
    np.testing.assert_array_equal(ours[:, 0], expected)
    assert ours[0, 0] == ours[109, 0] == 0.1 and ours[110, 0] == 0.05 and ours[199, 0] == 0.1 * 0.5**9


def test_start_epoch_equals_the_milestones_torch_would_need():
    ours, _ = run(lambda m, o: m.StepLR(o, 10, 0.5, start_epoch=100), optim, 200)
    theirs, _ = run(lambda m, o: m.MultiStepLR(o, list(range(110, 200, 10)), 0.5), torch, 200)
    np.testing.assert_allclose(ours, theirs, rtol=1e-15)


@pytest.mark.parametrize("name", SCHEDULES)
def test_state_dict_resumes_the_sequence_exactly(name):
    make, steps = SCHEDULES[name]
    whole, _ = run(make, optim, steps, lrs=(0.1, 0.03))
    first = steps // 3
    optimizer = make_optimizer(optim, lrs=(0.1, 0.03))
    scheduler = make(lr_scheduler, optimizer)
    run(None, optim, first, optimizer=optimizer, scheduler=scheduler)
    state = {key: np.asarray(value) for key, value in scheduler.state_dict().items()}  # as np.savez keeps it
    resumed_optimizer = make_optimizer(optim, lrs=(0.1, 0.03))
    resumed = make(lr_scheduler, resumed_optimizer)
    resumed.load_state_dict(state)
    assert resumed.last_epoch == first
    assert resumed.get_last_lr() == scheduler.get_last_lr() == [g["lr"] for g in resumed_optimizer.param_groups]
    rest, _ = run(None, optim, steps - first, optimizer=resumed_optimizer, scheduler=resumed)
    np.testing.assert_array_equal(rest, whole[first:])


def test_one_cycle_refuses_to_run_past_its_end():
    scheduler = lr_scheduler.OneCycleLR(make_optimizer(optim), max_lr=0.1, total_steps=3)
    for _ in range(3):
        scheduler.step()
    with pytest.raises(ValueError, match="beyond total_steps"):
        scheduler.step()


def test_bad_arguments_are_refused():
    opt = make_optimizer(optim)
    with pytest.raises(ValueError, match="one milestone fewer"):
        lr_scheduler.SequentialLR(opt, [lr_scheduler.LinearLR(opt), lr_scheduler.StepLR(opt, 2)], milestones=[])
    with pytest.raises(ValueError, match="start_factor"):
        lr_scheduler.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="total_steps, or epochs and steps_per_epoch"):
        lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=3)
    with pytest.raises(ValueError, match="2 values for 1 parameter groups"):
        lr_scheduler.OneCycleLR(opt, max_lr=[0.1, 0.2], total_steps=10)
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(make_optimizer(optim), 3, last_epoch=5)
