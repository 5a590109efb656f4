"""The class a hand-in names: ``file.py:Name``, ``package.module:Name`` or ``package.module.Name``.

A file is imported as the student ran it, from wherever the command is given. A file of a package (an
``__init__.py`` beside it, or relative imports in it) is a module of that package, named after its
folder, ``model`` (the template's) where the folder has no such name; its ``__init__`` runs as Python
runs it. The course collects files renamed with the student's id, ``network_<id>.py`` beside
``layer_<id>.py``, whose imports still say ``layer``, ``.layer`` or ``model.layer``: the
:class:`HandIn` finder answers those names with the id's files, without touching them. Only what the
file imports is imported, never a sibling script. A module of one of the hand-in's names that another
hand-in left in ``sys.modules`` is forgotten first: two students' ``layer.py`` must not meet in one process.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from lablib.adapter.errors import AdapterError, call
from lablib.adapter.loader import class_in

TEMPLATE_PACKAGE = "model"  # the template's package, which students' imports name
RELATIVE_IMPORT = re.compile(r"^\s*from\s+\.", re.MULTILINE)


def load_class(path: str) -> type:
    """``file.py:Name``, ``package.module:Name`` or ``package.module.Name``; a file may import its neighbours."""
    module_path, sep, attr = path.rpartition(":") if ":" in path else path.rpartition(".")
    if not sep or not module_path or not attr:
        raise AdapterError(f"{path!r} does not name a class: write FILE.py:CLASS or package.module.CLASS")
    if module_path.endswith(".py"):
        module = import_hand_in(path, Path(module_path))
    else:
        try:
            module = importlib.import_module(module_path)
        except ImportError as error:
            raise AdapterError(f"{path!r}: cannot import {module_path}: {error}") from None
    return class_in(module, attr, path, module_path)


class HandIn(importlib.abc.MetaPathFinder):
    """The modules of one hand-in's folder by the names its files import: each file by its stem and, for a
    student's id-suffixed file, by the stem without the id; each also inside the package ``package``."""

    def __init__(self, folder: Path, package: str, files: dict[str, Path]) -> None:
        self.folder, self.package, self.files = folder, package, files

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == self.package:
            init = self.folder / "__init__.py"
            if init.is_file():
                return importlib.util.spec_from_file_location(
                    fullname, init, submodule_search_locations=[str(self.folder)]
                )
            spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
            spec.submodule_search_locations = [str(self.folder)]
            return spec
        name = fullname.removeprefix(f"{self.package}.")
        file = self.files.get(name)
        return importlib.util.spec_from_file_location(fullname, file) if file else None

    def names(self) -> set[str]:
        """The top-level names this finder answers, with everything inside them."""
        return {self.package, *self.files}


def import_hand_in(path: str, file: Path) -> ModuleType:
    """The file imported as the module the student ran: a package's member inside its package, else the module
    of its stem. ``path`` is what the user wrote, for the messages."""
    if not file.is_file():
        raise AdapterError(f"{path!r}: there is no file {file}")
    file = file.resolve()
    folder, in_package = file.parent, belongs_to_package(file)
    package = folder.name if (folder / "__init__.py").is_file() and folder.name.isidentifier() else TEMPLATE_PACKAGE
    name = re.sub(r"\W", "_", file.stem)
    files = {**module_files(file), name: file}
    finder = HandIn(folder, package, files)
    forget(finder.names())
    module_name = package if name == "__init__" else f"{package}.{name}" if in_package else name
    with installed(finder, folder.parent if in_package else folder):
        return call(f"importing {file.name}", importlib.import_module, module_name)


def belongs_to_package(file: Path) -> bool:
    """True for a file with an ``__init__.py`` beside it or a relative import in it."""
    return (file.parent / "__init__.py").is_file() or bool(RELATIVE_IMPORT.search(file.read_text(errors="replace")))


def module_files(file: Path) -> dict[str, Path]:
    """The folder's ``.py`` files by module name: each by its stem, and the files that share ``file``'s
    student id (``layer_<id>.py`` beside ``network_<id>.py``) also by the stem without it."""
    siblings = sorted(p.resolve() for p in file.parent.glob("*.py") if p.stem.isidentifier())
    files = {p.stem: p for p in siblings}
    parts = file.stem.split("_")
    ids = ["_".join(parts[i:]) for i in range(1, len(parts))]  # longest first
    shared = next((i for i in ids if sum(p.stem.endswith(f"_{i}") for p in siblings) > 1), None)
    if shared is not None:
        files |= {p.stem.removesuffix(f"_{shared}"): p for p in siblings if p.stem.endswith(f"_{shared}")}
    return files


@contextmanager
def installed(finder: HandIn, folder: Path) -> Iterator[None]:
    """``finder`` first among the import system's, and ``folder`` (where the student ran the code) first on
    ``sys.path``, while importing."""
    sys.meta_path.insert(0, finder)
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        sys.path.remove(str(folder))


def forget(names: set[str]) -> None:
    """Drop from ``sys.modules`` each student's module of these names (or inside them): another hand-in's, or
    this one's from an earlier load."""
    for name in [n for n in sys.modules if n.partition(".")[0] in names]:
        if is_students(sys.modules[name]):
            del sys.modules[name]


def is_students(module: ModuleType) -> bool:
    """False for a module of Python itself or of an installed package."""
    if module.__name__.partition(".")[0] in sys.stdlib_module_names:
        return False
    file = getattr(module, "__file__", None)
    prefixes = {Path(prefix).resolve() for prefix in (sys.prefix, sys.base_prefix)}
    return file is None or not any(Path(file).resolve().is_relative_to(prefix) for prefix in prefixes)
