"""A layer's floating arrays, held as attributes or in dict attributes, and the paths that reach them."""

from __future__ import annotations

from typing import Any

import numpy as np

Path_ = tuple[str, ...]  # an attribute, then dict keys: ("weights",) or ("params", "W")


def label(path: Path_) -> str:
    """``weights`` or ``params['W']``: the path as the student's code writes it."""
    return path[0] + "".join(f"[{key!r}]" for key in path[1:])


def get(obj: Any, path: Path_) -> Any:
    """The value at ``path``, None where an attribute or key is missing."""
    value = getattr(obj, path[0], None)
    for key in path[1:]:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def put(obj: Any, path: Path_, value: Any) -> None:
    """Set the attribute or dict entry at ``path``."""
    if len(path) == 1:
        setattr(obj, path[0], value)
    else:
        get(obj, path[:-1])[path[-1]] = value


def find_arrays(obj: Any) -> dict[Path_, np.ndarray]:
    """Every floating NumPy array ``obj`` holds as an attribute or in a dict attribute."""
    arrays: dict[Path_, np.ndarray] = {}
    for name, value in vars(obj).items() if hasattr(obj, "__dict__") else ():
        if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
            arrays[(name,)] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and isinstance(item, np.ndarray) and np.issubdtype(item.dtype, np.floating):
                    arrays[(name, key)] = item
    return arrays
