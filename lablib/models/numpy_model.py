"""Build a spec with the NumPy core."""

from __future__ import annotations

import inspect
from functools import cache

import numpy as np

from lablib import nn
from lablib.adapter.errors import call
from lablib.adapter.loader import load_file_class
from lablib.adapter.module import adapt
from lablib.models.spec_file import is_user_layer
from lablib.models.specs import Layer, Spec
from lablib.nn.init import normal_fan_in


class Classifier(nn.Module):
    """``features`` (image -> embedding) then ``classifier`` (embedding -> logits).

    The two halves are separate so that a loss on the embedding (the center loss) can add its
    gradient between ``classifier.backward`` and ``features.backward``. The images need no
    gradient, so ``backward`` returns None, as ``x.grad`` stays None in PyTorch.
    """

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier
        features[0].needs_input_grad = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.classifier(self.features(x))

    def backward(self, grad_output: np.ndarray) -> None:
        self.features.backward(self.classifier.backward(grad_output))


def _build_layer(layer: Layer, rng: np.random.Generator, dtype: type) -> nn.Module:
    """``getattr(nn, name)(**kwargs)``, plus ``rng`` and ``dtype`` where the layer takes them.

    A layer of one's own (``mylayers/FILE.py:CLASS``) in the ``Module`` contract is built the same way;
    one written to another contract (the course's template) is built after seeding NumPy's global
    generator from ``rng`` (such layers draw their weights from ``np.random``), then wrapped by
    :func:`lablib.adapter.module.adapt`.
    """
    name, kwargs = layer
    if not is_user_layer(name):
        return _construct(getattr(nn, name), kwargs, rng, dtype)
    cls = _user_class(name)
    if issubclass(cls, nn.Module):
        return call(f"building {name}", _construct, cls, kwargs, rng, dtype)
    np.random.seed(int(rng.integers(2**32)))  # noqa: NPY002 - the template's layers draw from np.random
    return adapt(call(f"building {name}", cls, **kwargs))


def _construct(cls: type, kwargs: dict, rng: np.random.Generator, dtype: type) -> nn.Module:
    accepted = inspect.signature(cls).parameters
    extra = {key: value for key, value in (("rng", rng), ("dtype", dtype)) if key in accepted}
    return cls(**kwargs, **extra)


@cache
def _user_class(name: str) -> type:
    """The class ``mylayers/FILE.py:CLASS`` names, its file imported once per process."""
    return load_file_class(name)


def build_numpy(
    spec: Spec,
    *,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
    dtype: type = np.float32,
    init: str = "pytorch",
) -> Classifier:
    """A NumPy :class:`Classifier` initialised layer by layer from ``rng`` (or ``seed``).

    ``init="pytorch"`` draws as PyTorch's layers do; ``"normal_fan_in"`` then redraws every
    convolution and linear weight as N(0, 1) / fan_in and zeroes their biases (BatchNorm keeps 1 and 0).
    """
    rng = rng if rng is not None else np.random.default_rng(seed)
    model = Classifier(
        nn.Sequential(*(_build_layer(layer, rng, dtype) for layer in spec["features"])),
        nn.Sequential(*(_build_layer(layer, rng, dtype) for layer in spec["classifier"])),
    )
    if init == "normal_fan_in":
        for module in model.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                module.weight.data = normal_fan_in(module.weight.data.shape, rng, module.weight.data.dtype)
                if module.bias is not None:
                    module.bias.data = np.zeros_like(module.bias.data)
    elif init != "pytorch":
        raise ValueError(f"unknown init {init!r}; choose pytorch or normal_fan_in")
    return model
