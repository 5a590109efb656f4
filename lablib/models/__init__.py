"""The models of both reports: specs (plain data) and their NumPy builds.

The PyTorch builds live in ``lablib.models.torch_model``, imported only where PyTorch is wanted.
"""

from lablib.models.numpy_model import Classifier, build_numpy
from lablib.models.specs import MODELS, get_spec

__all__ = ["MODELS", "Classifier", "build_numpy", "get_spec"]
