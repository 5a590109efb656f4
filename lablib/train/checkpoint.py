"""Checkpoints and model files: flat ``.npz`` archives of NumPy arrays, written atomically.

A state is a flat mapping of names to arrays, as ``state_dict`` returns. Anything structured (the
random generator's state, the history of metrics) travels as a JSON string in a 0-d unicode
array, so no file ever needs pickle to load.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lablib.atomic import staged_file
from lablib.errors import LabError


class ArchiveError(LabError, ValueError):
    """A file that is not a readable ``.npz`` archive: truncated, damaged or another kind of file."""


def save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically: readers see the old file or the new one, never half."""
    with staged_file(path) as tmp, open(tmp, "wb") as file:
        np.savez(file, **{key: np.asarray(value) for key, value in arrays.items()})


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` written by :func:`save_npz` (pickle stays disabled).

    A missing file raises ``FileNotFoundError``; any other file that is not a readable archive raises
    :class:`ArchiveError` saying so, rather than NumPy's advice about pickled data, which a file that
    is simply not an archive would otherwise get.
    """
    with open(path, "rb"):  # a missing or unreadable file raises its own OSError
        pass
    if not zipfile.is_zipfile(path):
        raise ArchiveError(f"{path} is not an .npz archive: it is truncated or another kind of file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
        raise ArchiveError(f"{path} is a damaged .npz archive ({error})") from None


def pack_json(value: Any) -> np.ndarray:
    return np.array(json.dumps(value, sort_keys=True))


def unpack_json(array: np.ndarray) -> Any:
    return json.loads(str(array[()]))


def prefixed(prefix: str, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {f"{prefix}/{key}": value for key, value in arrays.items()}


def unprefixed(prefix: str, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    start = len(prefix) + 1
    return {key[start:]: value for key, value in arrays.items() if key.startswith(prefix + "/")}
