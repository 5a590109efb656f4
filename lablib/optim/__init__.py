"""Optimisers and learning-rate schedules for the NumPy core, with ``torch.optim``'s names."""

from lablib.optim import lr_scheduler
from lablib.optim.adam import Adam, AdamW
from lablib.optim.optimizer import Optimizer
from lablib.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "lr_scheduler"]
