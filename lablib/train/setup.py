"""Optimiser and learning-rate schedule from the parameters, for either framework.

``lablib.optim`` mirrors ``torch.optim`` name for name, so one function builds both: it takes the
module (``lablib.optim`` or ``torch.optim``) as an argument. The NumPy run and the PyTorch run
therefore follow the same rules, and the core's tests prove the two modules agree.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from lablib.params import TrainParams


def make_optimizer(optim: ModuleType, parameters: Any, params: TrainParams, lr: float | None = None) -> Any:
    """``optim.SGD``/``Adam``/``AdamW`` over ``parameters`` with the settings of ``params``."""
    lr = params.lr if lr is None else lr
    if params.optimizer == "sgd":
        return optim.SGD(parameters, lr=lr, momentum=params.momentum, weight_decay=params.weight_decay)
    cls = optim.Adam if params.optimizer == "adam" else optim.AdamW
    return cls(parameters, lr=lr, betas=params.betas, weight_decay=params.weight_decay)


def make_scheduler(
    lr_scheduler: ModuleType, optimizer: Any, params: TrainParams, steps_per_epoch: int
) -> tuple[Any | None, bool]:
    """The schedule of ``params.schedule`` and whether it steps after every batch (else every epoch).

    ``step`` with a ``start_epoch`` is the rule of report 000 (halve every 10 epochs after epoch
    100) and, with ``start_epoch: 0``, of report 001 (halve every 4 epochs).
    """
    s = params.schedule
    epochs = params.epochs
    if s.name == "constant":
        return None, False
    if s.name == "onecycle":
        scheduler = lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=params.lr,
            total_steps=epochs * steps_per_epoch,
            pct_start=s.pct_start,
            cycle_momentum=False,
        )
        return scheduler, True
    if s.name == "step" and s.start_epoch == 0:
        main = lr_scheduler.StepLR(optimizer, step_size=s.step_size, gamma=s.gamma)
    elif s.name == "step":
        # The step clock starting at start_epoch is a MultiStepLR, which both frameworks have.
        milestones = list(range(s.start_epoch + s.step_size, epochs + 1, s.step_size))
        main = lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=s.gamma)
    elif s.name == "multistep":
        main = lr_scheduler.MultiStepLR(optimizer, milestones=list(s.milestones), gamma=s.gamma)
    else:
        main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs - s.warmup_epochs))
    if s.warmup_epochs == 0:
        return main, False
    warmup = lr_scheduler.LinearLR(
        optimizer, start_factor=1.0 / (s.warmup_epochs + 1), end_factor=1.0, total_iters=s.warmup_epochs
    )
    return lr_scheduler.SequentialLR(optimizer, [warmup, main], milestones=[s.warmup_epochs]), False
