"""Preprocessing: images to float32 in [-0.5, 0.5] (report 000, 2.3), written as .npy files."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lablib.atomic import staged_dir

UNKNOWN_LABEL = -1  # a test label that is not known: the course's test file, without the official files


def to_tensor(images: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` to float32 ``(N, 1, 28, 28)``: ``x / 255 - 0.5``, one channel for Conv2d."""
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"to_tensor expects uint8 images of shape (N, H, W); got {images.dtype} {images.shape}")
    x = images.astype(np.float32)[:, None]
    x /= np.float32(255)
    x -= np.float32(0.5)
    return x


def save_arrays(out_dir: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Replace ``out_dir`` by a folder of ``<name>.npy`` files, all or nothing.

    Plain ``np.save`` files (no pickles), so that readers can ``np.load(path, mmap_mode="r")``.
    """
    with staged_dir(out_dir) as staging:
        for name, array in arrays.items():
            np.save(staging / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
