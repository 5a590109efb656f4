"""Learning-rate schedules with ``torch.optim.lr_scheduler``'s names, arguments and stepping rules.

Construction applies the rate of epoch 0; each ``step()`` (once per epoch, or once per batch for
``OneCycleLR``) advances ``last_epoch`` and writes the new rate into every parameter group. Each
schedule is the closed form PyTorch uses when it jumps to an epoch (``_get_closed_form_lr``), a
pure function of ``last_epoch``, the constructor's arguments and the groups' ``initial_lr``, so
the whole state is ``last_epoch`` and resuming is exact. PyTorch's step-to-step ("chainable")
forms agree with these to rounding, but two schedulers here do not compose by both stepping one
optimizer: use :class:`SequentialLR` to run one after another.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from lablib.optim.optimizer import Optimizer


class LRScheduler:
    """Base class: subclasses define ``lr_at(epoch)``, the rate of every parameter group."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        self.optimizer = optimizer
        for index, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"param_groups[{index}] has no 'initial_lr' to resume a schedule from")
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, epoch: int) -> list[float]:
        raise NotImplementedError

    def step(self) -> None:
        self._set_epoch(self.last_epoch + 1)

    def _set_epoch(self, epoch: int) -> None:
        """Move the schedule to ``epoch`` and give its rates to the optimizer."""
        lrs = self.lr_at(epoch)
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self.last_epoch, self._last_lr = epoch, lrs

    def get_last_lr(self) -> list[float]:
        """The rates the last ``step()`` (or the constructor) applied."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._set_epoch(int(state_dict["last_epoch"]))


class StepLR(LRScheduler):
    """``lr * gamma ** (max(0, epoch - start_epoch) // step_size)``: decay every ``step_size`` epochs.

    ``start_epoch=0`` is PyTorch's StepLR and report 001's rule (halve every 4 epochs:
    ``StepLR(opt, 4, 0.5)``). A later ``start_epoch`` holds the rate until then and starts the step
    clock there: report 000 halves every 10 epochs after epoch 100, ``StepLR(opt, 10, 0.5,
    start_epoch=100)``, first at epoch 110.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        step_size: int,
        gamma: float = 0.1,
        last_epoch: int = -1,
        *,
        start_epoch: int = 0,
    ) -> None:
        if step_size < 1:
            raise ValueError(f"step_size must be a positive number of epochs, got {step_size}")
        self.step_size, self.gamma, self.start_epoch = step_size, gamma, start_epoch
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        factor = self.gamma ** (max(0, epoch - self.start_epoch) // self.step_size)
        return [base_lr * factor for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """``lr * gamma ** (number of milestones <= epoch)``; a repeated milestone counts twice."""

    def __init__(
        self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        factor = self.gamma ** bisect.bisect_right(self.milestones, epoch)
        return [base_lr * factor for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """``eta_min + (lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``: half a cosine over ``T_max``."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        cosine = (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        return [self.eta_min + (base_lr - self.eta_min) * cosine for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """The factor of ``lr`` goes linearly from ``start_factor`` to ``end_factor`` in ``total_iters``
    epochs and stays there: a linear warm-up with the defaults' ``end_factor=1``."""

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(f"need 0 < start_factor <= 1 and 0 <= end_factor <= 1, got {start_factor}, {end_factor}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        progress = min(self.total_iters, epoch) / self.total_iters
        factor = self.start_factor + (self.end_factor - self.start_factor) * progress
        return [base_lr * factor for base_lr in self.base_lrs]


class SequentialLR(LRScheduler):
    """``schedulers[i]`` from epoch ``milestones[i - 1]`` on, restarted there at its own epoch 0."""

    def __init__(
        self,
        optimizer: Optimizer,
        schedulers: Sequence[LRScheduler],
        milestones: Sequence[int],
        last_epoch: int = -1,
    ) -> None:
        if not schedulers or len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR needs one milestone fewer than schedulers, got {len(milestones)}")
        if any(scheduler.optimizer is not optimizer for scheduler in schedulers):
            raise ValueError("SequentialLR expects all its schedulers to drive the same optimizer")
        self.schedulers, self.milestones = list(schedulers), list(milestones)
        super().__init__(optimizer, last_epoch)

    def _current(self, epoch: int) -> tuple[LRScheduler, int]:
        index = bisect.bisect_right(self.milestones, epoch)
        return self.schedulers[index], epoch - (self.milestones[index - 1] if index else 0)

    def lr_at(self, epoch: int) -> list[float]:
        scheduler, own_epoch = self._current(epoch)
        return scheduler.lr_at(own_epoch)

    def _set_epoch(self, epoch: int) -> None:
        scheduler, own_epoch = self._current(epoch)
        scheduler._set_epoch(own_epoch)
        self.last_epoch, self._last_lr = epoch, scheduler.get_last_lr()


class _Phase(NamedTuple):
    end_step: float
    start_lr: str
    end_lr: str
    start_momentum: str
    end_momentum: str


class OneCycleLR(LRScheduler):
    """Smith's one-cycle policy, stepped after every batch, as ``torch.optim.lr_scheduler.OneCycleLR``.

    The rate anneals from ``max_lr / div_factor`` up to ``max_lr`` over the first ``pct_start`` of
    the ``total_steps`` (or ``epochs * steps_per_epoch``), then down to ``max_lr / div_factor /
    final_div_factor`` (with ``three_phase``: back to the start first, then down). With
    ``cycle_momentum`` the momentum (SGD) or ``beta1`` (Adam) anneals the opposite way between
    ``max_momentum`` and ``base_momentum``. The phases' end points are kept in the parameter
    groups (``initial_lr``, ``max_lr``, ``min_lr``, ``max_momentum``, ``base_momentum``), as
    PyTorch keeps them.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | Sequence[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | Sequence[float] = 0.85,
        max_momentum: float | Sequence[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR needs total_steps, or epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        if total_steps < 1:
            raise ValueError(f"total_steps must be positive, got {total_steps}")
        if not 0 <= pct_start <= 1:
            raise ValueError(f"pct_start must be in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.total_steps = total_steps
        self.anneal = _anneal_cos if anneal_strategy == "cos" else _anneal_linear
        up_end = float(pct_start * total_steps) - 1
        down_end = float(2 * pct_start * total_steps) - 2
        last = total_steps - 1
        if three_phase:
            self.phases = [
                _Phase(up_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _Phase(down_end, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                _Phase(last, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self.phases = [
                _Phase(up_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _Phase(last, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        groups = optimizer.param_groups
        if last_epoch == -1:
            for group, top in zip(groups, _per_group("max_lr", max_lr, groups), strict=True):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError("cycle_momentum needs an optimizer with momentum or betas")
            self.use_beta1 = "betas" in optimizer.defaults
            if last_epoch == -1:
                highs = _per_group("max_momentum", max_momentum, groups)
                lows = _per_group("base_momentum", base_momentum, groups)
                for group, high, low in zip(groups, highs, lows, strict=True):
                    group["max_momentum"], group["base_momentum"] = high, low
        super().__init__(optimizer, last_epoch)

    def _phase_at(self, step: int) -> tuple[_Phase, float]:
        """The phase ``step`` lies in and how far through it, from 0 to 1."""
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR stepped {step} times, beyond total_steps = {self.total_steps}")
        start_step = 0.0
        for phase in self.phases[:-1]:
            if step <= phase.end_step:
                return phase, (step - start_step) / (phase.end_step - start_step)
            start_step = phase.end_step
        last = self.phases[-1]
        return last, (step - start_step) / (last.end_step - start_step)

    def lr_at(self, epoch: int) -> list[float]:
        phase, pct = self._phase_at(epoch)
        return [self.anneal(g[phase.start_lr], g[phase.end_lr], pct) for g in self.optimizer.param_groups]

    def _set_epoch(self, epoch: int) -> None:
        super()._set_epoch(epoch)
        if not self.cycle_momentum:
            return
        phase, pct = self._phase_at(epoch)
        for group in self.optimizer.param_groups:
            momentum = self.anneal(group[phase.start_momentum], group[phase.end_momentum], pct)
            if self.use_beta1:
                group["betas"] = (momentum, *group["betas"][1:])
            else:
                group["momentum"] = momentum


def _per_group(name: str, value: float | Sequence[float], groups: Sequence[Any]) -> list[float]:
    """One value for every parameter group: a sequence as given, else the scalar repeated."""
    if not isinstance(value, Sequence):
        return [value] * len(groups)
    if len(value) != len(groups):
        raise ValueError(f"{name} has {len(value)} values for {len(groups)} parameter groups")
    return list(value)


def _anneal_cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _anneal_linear(start: float, end: float, pct: float) -> float:
    return (end - start) * pct + start
