"""Build a spec with PyTorch, and move weights between the two frameworks.

State dicts cross as plain ``{key: array}`` mappings (what ``np.savez`` writes and ``np.load``
reads), BatchNorm's int64 ``num_batches_tracked`` included, so a checkpoint of either framework
loads in the other.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from lablib.models.spec_file import require_torch_twin
from lablib.models.specs import EVAL_BATCH, Spec


class TorchClassifier(nn.Module):
    """The PyTorch twin of :class:`lablib.models.numpy_model.Classifier`: the same state_dict keys."""

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_torch(spec: Spec) -> TorchClassifier:
    """The spec built from ``torch.nn`` (PyTorch's own initialisation, from torch's global generator);
    a spec with layers of one's own is refused, as PyTorch has no twin of them."""
    require_torch_twin(spec)
    return TorchClassifier(
        nn.Sequential(*(getattr(nn, name)(**kwargs) for name, kwargs in spec["features"])),
        nn.Sequential(*(getattr(nn, name)(**kwargs) for name, kwargs in spec["classifier"])),
    )


def numpy_to_torch_state(state: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Copies of the arrays as CPU tensors, dtypes kept."""
    return {key: torch.from_numpy(np.array(value, copy=True)) for key, value in state.items()}


def torch_to_numpy_state(module: nn.Module) -> dict[str, np.ndarray]:
    """Copies of ``module.state_dict()`` as NumPy arrays, dtypes kept."""
    return {key: value.detach().cpu().numpy().copy() for key, value in module.state_dict().items()}


def load_numpy_state(module: nn.Module, state: Mapping[str, np.ndarray]) -> None:
    """Load a NumPy state dict (as ``Module.state_dict`` or an ``.npz`` gives it); keys must match exactly."""
    module.load_state_dict(numpy_to_torch_state(state), strict=True)


def predict(spec: Spec, state: Mapping[str, np.ndarray], images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The features and logits of ``images`` under the weights ``state``, in eval mode on the CPU,
    ``EVAL_BATCH`` images at a time. Raises RuntimeError when ``state`` is not a state dict of ``spec``."""
    model = build_torch(spec)
    load_numpy_state(model, state)
    model.eval()
    features, logits = [], []
    with torch.no_grad():
        for i in range(0, len(images), EVAL_BATCH):
            embedding = model.features(torch.from_numpy(np.ascontiguousarray(images[i : i + EVAL_BATCH])))
            features.append(embedding.numpy())
            logits.append(model.classifier(embedding).numpy())
    return np.concatenate(features), np.concatenate(logits)
