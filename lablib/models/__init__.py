"""The models of both reports: specs (plain data) and their NumPy builds.

The PyTorch builds live in ``lablib.models.torch_model``, imported only where PyTorch is wanted;
the layer table in ``lablib.models.summary``.
"""

from lablib.models.numpy_model import Classifier, build_numpy
from lablib.models.specs import MODELS, Spec, get_spec, lab2023_cnn, lab2025_cnn

__all__ = ["MODELS", "Classifier", "Spec", "build_numpy", "get_spec", "lab2023_cnn", "lab2025_cnn"]
