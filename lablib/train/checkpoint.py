"""Checkpoints and model files: flat ``.npz`` archives of NumPy arrays, written atomically.

A state is a flat mapping of names to arrays, as ``state_dict`` returns. Anything structured (the
random generator's state, the history of metrics) travels as a JSON string in a 0-d unicode
array, so no file ever needs pickle to load.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lablib.atomic import staged_file


def save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically: readers see the old file or the new one, never half."""
    with staged_file(path) as tmp, open(tmp, "wb") as file:
        np.savez(file, **{key: np.asarray(value) for key, value in arrays.items()})


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` written by :func:`save_npz` (pickle stays disabled)."""
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def pack_json(value: Any) -> np.ndarray:
    return np.array(json.dumps(value, sort_keys=True))


def unpack_json(array: np.ndarray) -> Any:
    return json.loads(str(array[()]))


def prefixed(prefix: str, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {f"{prefix}/{key}": value for key, value in arrays.items()}


def unprefixed(prefix: str, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    start = len(prefix) + 1
    return {key[start:]: value for key, value in arrays.items() if key.startswith(prefix + "/")}
