"""The class a hand-in names: ``file.py:Name``, ``package.module:Name`` or ``package.module.Name``.

A file is imported as training imports one (:mod:`lablib.adapter.loader`), after a module of one of its
neighbours' names that another hand-in's file left in ``sys.modules`` is forgotten: two students'
``layer.py`` must not meet in one process.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from lablib.adapter.errors import AdapterError
from lablib.adapter.loader import class_in, import_file


def load_class(path: str) -> type:
    """``file.py:Name``, ``package.module:Name`` or ``package.module.Name``; a file may import its neighbours."""
    module_path, sep, attr = path.rpartition(":") if ":" in path else path.rpartition(".")
    if not sep or not module_path or not attr:
        raise AdapterError(f"{path!r} does not name a class: write FILE.py:CLASS or package.module.CLASS")
    if module_path.endswith(".py"):
        forget_neighbours(Path(module_path))
        module = import_file(path, module_path)
    else:
        try:
            module = importlib.import_module(module_path)
        except ImportError as error:
            raise AdapterError(f"{path!r}: cannot import {module_path}: {error}") from None
    return class_in(module, attr, path, module_path)


def forget_neighbours(file: Path) -> None:
    """Drop from ``sys.modules`` each module named as a file beside ``file`` but imported from elsewhere."""
    for neighbour in file.resolve().parent.glob("*.py"):
        cached = getattr(sys.modules.get(neighbour.stem), "__file__", None)
        if cached and Path(cached).resolve() != neighbour.resolve() and not is_installed(cached):
            del sys.modules[neighbour.stem]


def is_installed(file: str) -> bool:
    """True for a module of Python itself or of an installed package: never one of a student's files."""
    path = Path(file).resolve()
    return any(path.is_relative_to(Path(prefix).resolve()) for prefix in {sys.prefix, sys.base_prefix})
