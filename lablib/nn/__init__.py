"""The NumPy neural-network core: PyTorch's names and signatures, forward and backward by hand.

It imports NumPy only. Each layer's ``forward`` caches what its ``backward`` needs, and nothing under
``no_grad()`` (``grad_mode.py``); see ``module.py`` for the contract and ``gradient_check.py`` for the
finite-difference checks.
"""

from lablib.nn.activation import ReLU, SiLU
from lablib.nn.batchnorm import BatchNorm1d, BatchNorm2d
from lablib.nn.conv import Conv2d
from lablib.nn.dropout import Dropout
from lablib.nn.flatten import Flatten
from lablib.nn.grad_mode import is_grad_enabled, no_grad
from lablib.nn.linear import Linear
from lablib.nn.loss import CenterLoss, CrossEntropyLoss
from lablib.nn.module import Module, Sequential
from lablib.nn.parameter import Parameter
from lablib.nn.pooling import MaxPool2d

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "CenterLoss",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "Linear",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "SiLU",
    "is_grad_enabled",
    "no_grad",
]
