"""The two networks, each described once as plain data and built in either framework.

A spec is ``{"features": [...], "classifier": [...]}``; every layer is ``(class name, keyword
arguments)`` with ``torch.nn``'s names, so ``getattr(lablib.nn, name)(**kwargs)`` and
``getattr(torch.nn, name)(**kwargs)`` build the same layer. ``features`` ends at the embedding the
center loss acts on (and the t-SNE map shows); ``classifier`` maps it to the 10 logits.
"""

from __future__ import annotations

from typing import Any

Layer = tuple[str, dict[str, Any]]
Spec = dict[str, list[Layer]]

NUM_CLASSES = 10


def _conv_block(cin: int, cout: int, stride: int, bias: bool = True) -> list[Layer]:
    conv = {"in_channels": cin, "out_channels": cout, "kernel_size": 3, "stride": stride, "padding": 1, "bias": bias}
    return [("Conv2d", conv), ("BatchNorm2d", {"num_features": cout}), ("SiLU", {})]


def _linear_block(fin: int, fout: int) -> list[Layer]:
    return [
        ("Linear", {"in_features": fin, "out_features": fout}),
        ("BatchNorm1d", {"num_features": fout}),
        ("SiLU", {}),
    ]


def lab2025_cnn() -> Spec:
    """Report 000, Table 1: four Conv2d+BatchNorm2d+SiLU blocks (28 -> 28 -> 14 -> 7 -> 4), then
    Linear+BatchNorm1d+SiLU to 1024, 256 (the features) and 64, and Linear to 10. 4,866,058 parameters."""
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
    """Report 001: Conv2d(1 -> width, 3x3), MaxPool 2x2, Flatten, Linear(13*13*width -> 10)."""
    return {
        "features": [
            ("Conv2d", {"in_channels": 1, "out_channels": width, "kernel_size": 3, "stride": 1, "padding": 0}),
            ("MaxPool2d", {"kernel_size": 2}),
            ("Flatten", {}),
        ],
        "classifier": [("Linear", {"in_features": 13 * 13 * width, "out_features": NUM_CLASSES})],
    }


MODELS = {"lab2025_cnn": lab2025_cnn, "lab2023_cnn": lab2023_cnn}


def get_spec(name: str, width: int = 20) -> Spec:
    """The spec of model ``name``; ``width`` is the filter count of ``lab2023_cnn``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return lab2023_cnn(width) if name == "lab2023_cnn" else lab2025_cnn()
