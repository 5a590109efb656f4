"""Learning-rate schedules: 200 epochs against torch.optim.lr_scheduler, and the reports' rules."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from lablib import optim
from lablib.nn import Parameter
from lablib.optim import lr_scheduler


def sequence(make, module, optimizer_module, steps):
    if optimizer_module is torch.optim:
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    else:
        opt = optim.SGD([Parameter(np.zeros(1))], lr=0.1)
    scheduler = make(module, opt)
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(steps):
            lrs.append(opt.param_groups[0]["lr"])
            scheduler.step()
    return np.array(lrs)


SCHEDULES = {
    "step": (lambda m, o: m.StepLR(o, step_size=4, gamma=0.5), 200),
    "multistep": (lambda m, o: m.MultiStepLR(o, milestones=[30, 80, 150], gamma=0.2), 200),
    "cosine": (lambda m, o: m.CosineAnnealingLR(o, T_max=200, eta_min=1e-4), 200),
    "linear warm-up": (lambda m, o: m.LinearLR(o, start_factor=0.1, total_iters=10), 200),
    "warm-up then cosine": (
        lambda m, o: m.SequentialLR(o, [m.LinearLR(o, 0.2, 1.0, 5), m.CosineAnnealingLR(o, 195)], milestones=[5]),
        200,
    ),
    "one-cycle": (lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=2000, cycle_momentum=False), 2000),
    "one-cycle linear three-phase": (
        lambda m, o: m.OneCycleLR(
            o, max_lr=0.1, epochs=200, steps_per_epoch=10, anneal_strategy="linear", three_phase=True,
            cycle_momentum=False,
        ),
        2000,
    ),
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_matches_torch(name):
    make, steps = SCHEDULES[name]
    ours = sequence(make, lr_scheduler, optim, steps)
    theirs = sequence(make, torch.optim.lr_scheduler, torch.optim, steps)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def test_report_001_rule_halves_every_four_epochs():
    """Report 001 builds its list by hand: the rate halves at epochs 4, 8, 12, ..."""
    learning_rate, epochs, scheduler_step = 0.1, 30, 4
    expected = [learning_rate] * epochs
    exp, current = 1, learning_rate
    for idx in range(epochs):
        if idx != 0 and idx % scheduler_step == 0:
            expected[idx] = learning_rate * 0.5**exp
            exp += 1
            current = expected[idx]
        else:
            expected[idx] = current
    ours = sequence(lambda m, o: m.StepLR(o, step_size=4, gamma=0.5), lr_scheduler, optim, epochs)
    np.testing.assert_allclose(ours, expected, rtol=1e-12)


def test_report_000_rule_halves_every_ten_epochs_after_epoch_100():
    ours = sequence(lambda m, o: m.StepLR(o, 10, 0.5, start_epoch=100), lr_scheduler, optim, 200)
    epochs = np.arange(200)
    expected = 0.1 * 0.5 ** np.where(epochs < 100, 0, (epochs - 100) // 10)
    np.testing.assert_allclose(ours, expected, rtol=1e-12)
    assert ours[99] == ours[109] == 0.1 and ours[110] == 0.05 and ours[199] == 0.1 * 0.5**9


def test_state_dict_resumes_the_sequence():
    opt = optim.SGD([Parameter(np.zeros(1))], lr=0.1)
    scheduler = lr_scheduler.CosineAnnealingLR(opt, T_max=50)
    for _ in range(17):
        scheduler.step()
    state = scheduler.state_dict()
    opt2 = optim.SGD([Parameter(np.zeros(1))], lr=0.1)
    resumed = lr_scheduler.CosineAnnealingLR(opt2, T_max=50)
    resumed.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    scheduler.step()
    resumed.step()
    assert resumed.get_last_lr() == scheduler.get_last_lr()


def test_one_cycle_refuses_to_run_past_its_end():
    opt = optim.SGD([Parameter(np.zeros(1))], lr=0.1)
    scheduler = lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        scheduler.step()
    with pytest.raises(ValueError, match="beyond total_steps"):
        scheduler.step()
