"""The spec format, and a model described outside the library: a spec file in ``mymodels/``, whose
layers come from ``lablib.nn`` or from a Python file of one's own in ``mylayers/``.

A spec is ``{"features": [...], "classifier": [...]}``, every layer ``(class name, keyword arguments)``.
A spec file is plain YAML in that format: two lists, ``features`` and ``classifier``, each layer
``[name, {keyword: value, ...}]`` (or its name alone when it takes no arguments). A name is a class
of ``lablib.nn`` (``Conv2d``) or ``FILE.py:CLASS`` with the file in ``mylayers/``
(``mylayers/my_layers.py:MyConv2d``). DVC lists ``mymodels/`` as a dependency of every stage that
builds a model, and ``mylayers/`` of the stages that build the NumPy model (``train_numpy``,
``evaluate_numpy``, ``compare``, ``predict``, ``report``): editing a layer file reruns those and
leaves ``train_torch`` and ``evaluate_torch``, which never run a layer of one's own, up to date.

Reading a spec imports nothing of the user's: the builders do (:mod:`lablib.models.numpy_model`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from lablib.errors import LabError
from lablib.params import LAYER_DIR, SPEC_SUFFIXES

Layer = tuple[str, dict[str, Any]]
Spec = dict[str, list[Layer]]
PARTS = ("features", "classifier")


class SpecFileError(LabError, ValueError):
    """A spec file that cannot describe a model; the message names the file, the layer and the rule."""


def is_spec_path(model: str) -> bool:
    """Whether ``model`` names a spec file rather than a built-in model."""
    return model.endswith(SPEC_SUFFIXES)


def is_user_layer(name: str) -> bool:
    """Whether a layer name names a class in a file of one's own (``FILE.py:CLASS``)."""
    return ":" in name


def load_spec_file(path: str | Path) -> Spec:
    """The spec that ``path`` describes, every layer checked for form (not yet built)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as error:
        raise SpecFileError(f"{path}: cannot be read ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise SpecFileError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(raw, dict) or set(raw) != set(PARTS):
        found = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise SpecFileError(f"{path}: must hold the two lists features and classifier, and nothing else; got {found}")
    spec: Spec = {}
    for part in PARTS:
        if not isinstance(raw[part], list) or not raw[part]:
            raise SpecFileError(f"{path}: {part} must be a list of at least one layer")
        spec[part] = [_layer(path, f"{part}[{i}]", entry) for i, entry in enumerate(raw[part])]
    return spec


def _layer(path: Path, where: str, entry: Any) -> Layer:
    name, kwargs = None, None
    if isinstance(entry, str):
        name, kwargs = entry, {}
    elif isinstance(entry, list) and 1 <= len(entry) <= 2:
        name, kwargs = entry[0], entry[1] if len(entry) == 2 else {}
    if not isinstance(name, str) or not isinstance(kwargs, dict):
        raise SpecFileError(
            f"{path}: {where} is {entry!r}; write a layer as [Name, {{keyword: value}}] or Name alone, "
            f"Name a class of lablib.nn or {LAYER_DIR}/FILE.py:CLASS"
        )
    if is_user_layer(name):
        file = Path(name.rpartition(":")[0])
        if file.suffix != ".py" or file.parent != Path(LAYER_DIR):
            raise SpecFileError(
                f"{path}: {where} names {name}; a layer of your own is {LAYER_DIR}/FILE.py:CLASS, its file in "
                f"{LAYER_DIR}/ so that DVC reruns training when it changes"
            )
        if not file.is_file():
            raise SpecFileError(f"{path}: {where} names {name}, and there is no file {file}")
    return name, kwargs


def user_layers(spec: Spec) -> list[str]:
    """The layers of ``spec`` that come from files of one's own, in order, each once."""
    return list(dict.fromkeys(name for part in PARTS for name, _ in spec[part] if is_user_layer(name)))


def missing_torch_twin(spec: Spec) -> str | None:
    """Why PyTorch cannot build ``spec`` (it names layers of one's own, which have no PyTorch twin), or
    ``None`` when it can: the one test of whether a model trains in PyTorch too or in NumPy only."""
    if own := user_layers(spec):
        return f"the model uses {', '.join(own)}, which PyTorch has no twin of"
    return None


def require_torch_twin(spec: Spec) -> None:
    """Refuse a PyTorch build of a spec with layers of one's own."""
    if reason := missing_torch_twin(spec):
        raise LabError(f"{reason}: the model trains and evaluates in NumPy only")


def source_digest(model: str) -> str | None:
    """The SHA-256 of a spec file and of every layer file it names, in order (None for a built-in model):
    what a checkpoint of the model must have been trained with to be resumed."""
    if not is_spec_path(model):
        return None
    files = [Path(model), *(Path(name.rpartition(":")[0]) for name in user_layers(load_spec_file(model)))]
    return hashlib.sha256(b"".join(hashlib.sha256(path.read_bytes()).digest() for path in files)).hexdigest()
