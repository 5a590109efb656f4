"""Learning-rate schedules with ``torch.optim.lr_scheduler``'s names and stepping rules.

Each schedule is a closed form ``lr(step)``, so its whole state is ``last_epoch``: resuming a run
restores it exactly. ``step()`` is called once per epoch, or once per batch for ``OneCycleLR``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

from lablib.optim.optimizer import Optimizer


class LRScheduler:
    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, step: int) -> list[float]:
        """The learning rate of each parameter group at ``step``."""
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        self._apply(self.lr_at(self.last_epoch))

    def _apply(self, lrs: Sequence[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = list(lrs)

    def get_last_lr(self) -> list[float]:
        return self._last_lr

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.last_epoch = int(state_dict["last_epoch"])
        self._apply(self.lr_at(self.last_epoch))


class StepLR(LRScheduler):
    """``lr * gamma ** ((epoch - start_epoch) // step_size)`` from ``start_epoch`` on, ``lr`` before.

    ``start_epoch=0`` is PyTorch's StepLR and report 001 (halve every 4 epochs); report 000 halves
    every 10 epochs after epoch 100: ``StepLR(opt, 10, 0.5, start_epoch=100)``.
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, start_epoch: int = 0, last_epoch: int = -1
    ) -> None:
        self.step_size, self.gamma, self.start_epoch = step_size, gamma, start_epoch
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int) -> list[float]:
        factor = self.gamma ** (max(0, step - self.start_epoch) // self.step_size)
        return [base * factor for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """``lr * gamma ** (number of milestones <= epoch)``."""

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1, last_epoch: int = -1):
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int) -> list[float]:
        factor = self.gamma ** bisect.bisect_right(self.milestones, step)
        return [base * factor for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from ``lr`` down to ``eta_min`` over ``T_max`` epochs."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int) -> list[float]:
        cosine = (1 + math.cos(math.pi * step / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]


class LinearLR(LRScheduler):
    """A linear ramp of the factor from ``start_factor`` to ``end_factor`` over ``total_iters``: warm-up."""

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int) -> list[float]:
        progress = min(step, self.total_iters) / self.total_iters
        factor = self.start_factor + (self.end_factor - self.start_factor) * progress
        return [base * factor for base in self.base_lrs]


class OneCycleLR(LRScheduler):
    """Smith's one-cycle policy, stepped every batch: up from ``max_lr / div_factor`` to ``max_lr``
    over ``pct_start`` of the steps, then down to ``max_lr / div_factor / final_div_factor``.

    Momentum is not cycled: compare with PyTorch's ``OneCycleLR(..., cycle_momentum=False)``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float,
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        cycle_momentum: bool = False,
        last_epoch: int = -1,
    ) -> None:
        if cycle_momentum:
            raise ValueError("OneCycleLR does not cycle momentum here; pass cycle_momentum=False")
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR needs total_steps, or epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.total_steps = total_steps
        self.anneal = _cos_anneal if anneal_strategy == "cos" else _linear_anneal
        initial = max_lr / div_factor
        minimum = initial / final_div_factor
        up = float(pct_start * total_steps) - 1
        if three_phase:
            down = float(2 * pct_start * total_steps) - 2
            self.phases = [(up, initial, max_lr), (down, max_lr, initial), (total_steps - 1, initial, minimum)]
        else:
            self.phases = [(up, initial, max_lr), (total_steps - 1, max_lr, minimum)]
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group["initial_lr"], group["max_lr"], group["min_lr"] = initial, max_lr, minimum
                group["lr"] = initial
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int) -> list[float]:
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR stepped {step} times, beyond total_steps = {self.total_steps}")
        start_step = 0.0
        for index, (end_step, start_lr, end_lr) in enumerate(self.phases):
            if step <= end_step or index == len(self.phases) - 1:
                pct = (step - start_step) / (end_step - start_step)
                return [self.anneal(start_lr, end_lr, pct) for _ in self.base_lrs]
            start_step = end_step
        raise AssertionError("unreachable")


def _cos_anneal(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _linear_anneal(start: float, end: float, pct: float) -> float:
    return (end - start) * pct + start


class SequentialLR(LRScheduler):
    """``schedulers[i]`` from ``milestones[i - 1]`` on, each counting its own epochs from zero."""

    def __init__(
        self, optimizer: Optimizer, schedulers: Sequence[LRScheduler], milestones: Sequence[int], last_epoch: int = -1
    ) -> None:
        if len(milestones) != len(schedulers) - 1:
            raise ValueError("SequentialLR needs one milestone fewer than schedulers")
        self.schedulers, self.milestones = list(schedulers), list(milestones)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int) -> list[float]:
        index = bisect.bisect_right(self.milestones, step)
        offset = self.milestones[index - 1] if index else 0
        return self.schedulers[index].lr_at(step - offset)
