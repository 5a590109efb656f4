"""The class a ``FILE.py:CLASS`` names, its file imported as a module of its own stem.

Training imports a layer of one's own from ``mylayers/`` this way; the gradient checker's loader
(:mod:`lablib.gradcheck.loader`) builds on it for students' hand-ins.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from lablib.adapter.errors import AdapterError, call


def import_file(path: str, module_path: str) -> ModuleType:
    """The file ``module_path`` imported as the module of its stem (dataclasses and pickling look it up by
    that name); it may import the files beside it. ``path`` is what the user wrote, for the messages."""
    file = Path(module_path)
    if not file.is_file():
        raise AdapterError(f"{path!r}: there is no file {module_path}")
    spec = importlib.util.spec_from_file_location(file.stem, file)
    module = importlib.util.module_from_spec(spec)
    folder = str(file.resolve().parent)
    sys.path.insert(0, folder)
    sys.modules[file.stem] = module
    try:
        call(f"importing {module_path}", spec.loader.exec_module, module)
    except AdapterError:
        sys.modules.pop(file.stem, None)
        raise
    finally:
        sys.path.remove(folder)
    return module


def class_in(module: ModuleType, name: str, path: str, where: str) -> type:
    """The class ``name`` that ``module`` defines; else an error listing those it defines."""
    cls = getattr(module, name, None)
    if not isinstance(cls, type):
        defined = sorted(n for n, v in vars(module).items() if isinstance(v, type) and v.__module__ == module.__name__)
        raise AdapterError(f"{path!r}: {where} has no class {name} (it defines {', '.join(defined) or 'none'})")
    return cls


def load_file_class(path: str) -> type:
    """The class ``FILE.py:CLASS`` names."""
    file, sep, name = path.rpartition(":")
    if not sep or not file.endswith(".py") or not name:
        raise AdapterError(f"{path!r} does not name a class: write FILE.py:CLASS")
    return class_in(import_file(path, file), name, path, file)
