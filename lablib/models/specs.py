"""The two networks, each described once as plain data and built in either framework.

A spec is ``{"features": [...], "classifier": [...]}``; every layer is ``(class name, keyword
arguments)`` with ``torch.nn``'s names, so ``getattr(lablib.nn, name)(**kwargs)`` and
``getattr(torch.nn, name)(**kwargs)`` build the same layer. ``features`` ends at the embedding the
center loss acts on (and the t-SNE map shows); ``classifier`` maps it to the 10 logits. The softmax
of both reports lives in the loss.
"""

from __future__ import annotations

from collections.abc import Callable

from lablib.data.fashion_mnist import NUM_CLASSES
from lablib.models.spec_file import Layer, Spec, is_spec_path, load_spec_file, missing_torch_twin
from lablib.params import MODELS

IMAGE_SIZE = 28
# Images per forward pass in evaluation and validation. The training batch: a pass's activations
# then stay small enough for the allocator to reuse their memory, and both frameworks run faster
# than with larger passes. Only the last digits of a summed loss depend on it.
EVAL_BATCH = 250


def _conv_block(in_channels: int, out_channels: int, stride: int, bias: bool = True) -> list[Layer]:
    conv = {
        "in_channels": in_channels,
        "out_channels": out_channels,
        "kernel_size": 3,
        "stride": stride,
        "padding": 1,
        "bias": bias,
    }
    return [("Conv2d", conv), ("BatchNorm2d", {"num_features": out_channels}), ("SiLU", {})]


def _linear_block(in_features: int, out_features: int) -> list[Layer]:
    return [
        ("Linear", {"in_features": in_features, "out_features": out_features}),
        ("BatchNorm1d", {"num_features": out_features}),
        ("SiLU", {}),
    ]


def lab2025_cnn() -> Spec:
    """Report 000, Table 1: 4,866,058 parameters.

    Four Conv2d(3x3, padding 1)+BatchNorm2d+SiLU blocks, 32/64/128/256 channels, strides 1/2/2/2
    (28 -> 28 -> 14 -> 7 -> 4; the last convolution has no bias), then Linear+BatchNorm1d+SiLU to
    1024 and to 256: the features. The classifier is Linear+BatchNorm1d+SiLU to 64 and Linear to 10.
    """
    return {
        "features": [
            *_conv_block(1, 32, stride=1),
            *_conv_block(32, 64, stride=2),
            *_conv_block(64, 128, stride=2),
            *_conv_block(128, 256, stride=2, bias=False),
            ("Flatten", {}),
            *_linear_block(256 * 4 * 4, 1024),
            *_linear_block(1024, 256),
        ],
        "classifier": [
            *_linear_block(256, 64),
            ("Linear", {"in_features": 64, "out_features": NUM_CLASSES}),
        ],
    }


def lab2023_cnn(width: int = 20) -> Spec:
    """Report 001: Conv2d(1 -> width, 3x3, no padding), MaxPool2d(2), Flatten, Linear(13*13*width -> 10).

    The report tried 12, 16 and 20 filters; 20 gave its best accuracy.
    """
    if width < 1:
        raise ValueError(f"lab2023_cnn needs at least one filter, got width={width}")
    side = (IMAGE_SIZE - 3 + 1) // 2
    return {
        "features": [
            ("Conv2d", {"in_channels": 1, "out_channels": width, "kernel_size": 3, "stride": 1, "padding": 0}),
            ("MaxPool2d", {"kernel_size": 2}),
            ("Flatten", {}),
        ],
        "classifier": [("Linear", {"in_features": side * side * width, "out_features": NUM_CLASSES})],
    }


# The builder of each built-in model, in the order of ``params.MODELS``, the one list of their names.
BUILDERS: dict[str, Callable[..., Spec]] = dict(zip(MODELS, (lab2025_cnn, lab2023_cnn), strict=True))


def get_spec(name: str, width: int = 20) -> Spec:
    """The spec of model ``name``, a built-in one or a spec file (``mymodels/NAME.yaml``, see
    :mod:`lablib.models.spec_file`); ``width`` is the filter count of ``lab2023_cnn`` (others ignore it)."""
    if is_spec_path(name):
        return load_spec_file(name)
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(BUILDERS)}")
    builder = BUILDERS[name]
    return builder(width) if builder is lab2023_cnn else builder()  # the one model with a width


def missing_framework(framework: str, model: str, width: int) -> str | None:
    """Why ``framework`` cannot build model ``model`` (PyTorch has no twin of a layer of one's own), or
    None when it can: what train, evaluate and compare ask before running a framework."""
    return missing_torch_twin(get_spec(model, width)) if framework == "torch" else None
