"""A NumPy layer written to another contract (the course template's, a tutorial's), as a ``lablib.nn.Module``.

The course's students keep parameters and gradients as plain NumPy attributes under names of their
own (``weights``/``d_weights``, ``W``/``dW``, ``params['W']``/``grads['W']``), in shapes of their
own (biases ``(out, 1)``, ``gamma`` ``(1, C, 1, 1)``, weights ``(in, out)`` or ``(K, K, C_in, C_out)``)
and inputs in layouts of their own (``(N, H, W, C)``, batch-last ``(C, H, W, N)``, features-first
``(in, N)``, a tutorial's ``(H, W)`` images of a batch of 1). :func:`adapt` wraps such a layer, unchanged,
as a :class:`lablib.nn.Module` that presents PyTorch's names, shapes and layout, so that the
gradient checker compares it with PyTorch and the optimisers of ``lablib.optim`` train it:

    from lablib.adapter import adapt, load_class

    Layer = load_class("model/layer.py:FullyConnected")          # or "package.module:Name"
    layer = adapt(Layer(784, 128), shapes={"weight": (128, 784), "bias": (128,)})
    y = layer.forward(x)                   # x in PyTorch's layout; the layer receives its own
    dx = layer.backward(grad_output)       # accumulates layer.weight.grad, layer.bias.grad
    SGD(layer.parameters(), lr=0.1).step() # writes into the layer's own arrays

``adapt(layer, mapping=None, layout=None, shapes=None, choice=0, target=None) -> Adapted``:

* the methods: forward is ``forward``, ``__call__``, ``call`` or ``forward_pass``; backward is
  ``backward``, ``backprop`` or ``backward_pass``. A forward with a training flag (``training``,
  ``train``, ``is_training``) receives ``Module.training``. A backward that takes a learning rate
  (``backprop(d_out, learn_rate)``) updates the weights itself: the gradient is recovered from that
  update at the rate :data:`KNOWN_RATE` and the weights are put back, so only our optimiser moves
  them. A loss layer (``forward(input, target) -> (pred, loss)``, ``backward()``) becomes a loss
  module: ``forward(logits, target) -> float``, ``backward(grad_output=1.0) -> dx``, with ``target``
  class indices, handed over as indices or one-hot (``target="indices"`` or ``"onehot"``; by default
  one-hot, and indices where one-hot raises).
* the tensors: a parameter is an array with a gradient beside it (``d_X``, ``dX``, ``grad_X``,
  ``X_grad``, ``X_grads``, ``delta_X``, or the same key in a ``grads`` dict) or, for a layer that
  updates inside backward, an array named like a weight or a bias. Its PyTorch name comes from its
  own (``weights``, ``W``, ``kernel``, ``filters``, ``gamma`` -> ``weight``; ``biases``, ``b``,
  ``beta`` -> ``bias``), else from its rank; running statistics (``running_mean``, ``moving_var``,
  ...) become the buffers ``running_mean`` and ``running_var``. ``mapping`` overrides any of it:
  ``parse_mapping(["weight=weights:d_weights", "running_var=rv"])``.
* the shapes: with ``shapes`` (PyTorch's shape of each name, e.g. the twin's ``state_dict``), each
  array is presented in that shape: size-1 axes dropped or added, axes permuted (a transposed
  weight, ``(K, K, C_in, C_out)`` kernels). Where several permutations fit (a square weight),
  :func:`candidates` lists every reading and ``choice`` picks one. Each presented array is a view
  of the layer's own, so an update in place is the layer's update.
* the layout: ``Layout("NHWC")``, ``parse_layout("HW->HWC")``, or :func:`infer_layout` from an
  input shape; ``None`` hands arrays over as they come.

``Adapted.bindings`` says which attribute stood for which tensor, ``Adapted.computes_in`` the dtype the
layer's last forward computed in (float32 where its output or any array it keeps is float32: a layer
that casts whatever it is given),
``Adapted.returns_input_grad`` whether its backward returned a gradient (a first layer may not).
:func:`find_layers` and :func:`find_pairs` walk a network (layers as attributes or in lists) and a
layer's arrays. Every failure is an :class:`AdapterError`, one line. NumPy only.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import itertools
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lablib.errors import LabError
from lablib.nn.module import Module
from lablib.nn.parameter import Parameter

FORWARD_NAMES = ("forward", "__call__", "call", "forward_pass")
BACKWARD_NAMES = ("backward", "backprop", "backward_pass", "backpropagation")
TRAINING_FLAGS = ("training", "train", "is_training", "train_mode")
RATE_NAMES = ("lr", "learn_rate", "learning_rate", "eta", "alpha", "step_size", "rate")
KNOWN_RATE = 1.0  # the rate a backward that updates in place is handed: its update is then minus the gradient
WEIGHT_NAMES = ("weight", "weights", "w", "kernel", "kernels", "filter", "filters", "gamma", "scale", "theta")
BIAS_NAMES = ("bias", "biases", "b", "beta", "shift", "offset")
GRAD_PATTERNS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (r"d_?(.+)", r"grad_?(.+)", r"grads?_(.+)", r"(.+?)_?grads?", r"delta_?(.+)", r"(.+?)_?gradients?")
)
ACTIVATION_NAMES = ("x", "input", "inputs", "inp", "xp", "x_pad", "x_padded", "out", "output", "y", "z", "a", "h")
GRAD_DICTS = ("grads", "grad", "gradients", "d_params", "dparams", "param_grads")
RUNNING = re.compile(r"running|moving|global|ema|avg|average|pop", re.IGNORECASE)
TORCH_ORDER = ("weight", "bias", "running_mean", "running_var")
PERMUTATIONS_FIRST = {2: [(0, 1), (1, 0)], 4: [(0, 1, 2, 3), (3, 2, 0, 1), (0, 3, 1, 2), (3, 0, 1, 2)]}
MAX_CANDIDATES = 16

Path_ = tuple[str, ...]  # an attribute, then dict keys: ("weights",) or ("params", "W")


class AdapterError(LabError):
    """The layer cannot be adapted as asked; the message says which attribute or method and what to do."""


def call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, an exception in it turned into one line that names ``what`` failed."""
    try:
        return fn(*args, **kwargs)
    except Exception as error:  # the user's code: any failure becomes one clear line
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise AdapterError(f"{what} failed: {type(error).__name__}: {first_line}") from error


def load_class(path: str) -> type:
    """``file.py:Name``, ``package.module:Name`` or ``package.module.Name``; a file may import its neighbours."""
    module_path, sep, attr = path.rpartition(":") if ":" in path else path.rpartition(".")
    if not sep or not module_path or not attr:
        raise AdapterError(f"{path!r} does not name a class: write FILE.py:CLASS or package.module.CLASS")
    if module_path.endswith(".py"):
        file = Path(module_path)
        if not file.is_file():
            raise AdapterError(f"{path!r}: there is no file {module_path}")
        spec = importlib.util.spec_from_file_location(file.stem, file)
        module = importlib.util.module_from_spec(spec)
        folder = str(file.resolve().parent)
        for neighbour in Path(folder).glob("*.py"):  # a module of that name imported from another hand-in
            cached = getattr(sys.modules.get(neighbour.stem), "__file__", None)
            if cached and Path(cached).resolve() != neighbour.resolve() and not is_installed(cached):
                del sys.modules[neighbour.stem]
        sys.path.insert(0, folder)
        sys.modules[file.stem] = module  # dataclasses and pickling look the module up by name
        try:
            call(f"importing {module_path}", spec.loader.exec_module, module)
        except AdapterError:
            sys.modules.pop(file.stem, None)
            raise
        finally:
            sys.path.remove(folder)
    else:
        try:
            module = importlib.import_module(module_path)
        except ImportError as error:
            raise AdapterError(f"{path!r}: cannot import {module_path}: {error}") from None
    cls = getattr(module, attr, None)
    if not isinstance(cls, type):
        defined = sorted(n for n, v in vars(module).items() if isinstance(v, type) and v.__module__ == module.__name__)
        raise AdapterError(f"{path!r}: {module_path} has no class {attr} (it defines {', '.join(defined) or 'none'})")
    return cls


def is_installed(file: str) -> bool:
    """True for a module of Python itself or of an installed package: never one of a student's files."""
    path = Path(file).resolve()
    return any(path.is_relative_to(Path(prefix).resolve()) for prefix in {sys.prefix, sys.base_prefix})


# ---------------------------------------------------------------- arrays and their names


def label(path: Path_) -> str:
    """``weights`` or ``params['W']``: the path as the student's code writes it."""
    return path[0] + "".join(f"[{key!r}]" for key in path[1:])


def get(obj: Any, path: Path_) -> Any:
    value = getattr(obj, path[0], None)
    for key in path[1:]:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def put(obj: Any, path: Path_, value: Any) -> None:
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


def _gradient_base(path: Path_) -> list[Path_]:
    """The paths ``path`` may be the gradient of: ``d_weights`` -> ``weights``, ``grads['W']`` -> ``*['W']``."""
    bases = []
    if len(path) == 2 and path[0].lower() in GRAD_DICTS:
        bases.append(("*", path[1]))
    for pattern in GRAD_PATTERNS:
        match = pattern.fullmatch(path[-1])
        if match and match.group(1).strip("_"):
            bases.append((*path[:-1], match.group(1).strip("_")))
    return bases


@dataclass(frozen=True)
class Pair:
    """A trainable array and the array its gradient is kept in (None: the layer updates it inside backward)."""

    value: Path_
    grad: Path_ | None


def find_pairs(obj: Any, among: Sequence[Path_] | None = None) -> list[Pair]:
    """The parameters of a layer: each array with a gradient of its shape beside it, and each array named
    like a weight or a bias (its gradient may appear only once backward has run, or never, for a layer
    that updates inside backward).

    What a forward keeps for its backward is no parameter, though ``x`` may sit beside ``dx``: names of
    inputs and activations are passed over, and ``among`` (the arrays a layer held when it was built)
    narrows the search to those.
    """
    arrays = find_arrays(obj)
    pairs, grads = [], set()
    for path in arrays:
        if (among is not None and path not in among) or plain_name(path[-1]) in ACTIVATION_NAMES:
            continue
        gradient = gradient_path(obj, path, arrays)
        if gradient is not None:
            pairs.append(Pair(path, gradient))
            grads.add(gradient)
    pairs = [p for p in pairs if p.value not in grads]
    paired = {p.value for p in pairs}
    names = WEIGHT_NAMES + BIAS_NAMES
    named = [path for path in arrays if path not in paired | grads and plain_name(path[-1]) in names]
    return pairs + [Pair(path, None) for path in named if among is None or path in among]


def gradient_path(
    obj: Any, value: Path_, arrays: Mapping[Path_, np.ndarray] | None = None, same_shape: bool = True
) -> Path_ | None:
    """The array beside ``value`` that holds its gradient (a gradient's name; of its shape unless not asked)."""
    arrays = find_arrays(obj) if arrays is None else arrays
    for path, array in arrays.items():
        if path == value or (same_shape and array.shape != arrays[value].shape):
            continue
        for base in _gradient_base(path):
            if (base[-1] == value[-1]) if base[0] == "*" else base == value:
                return path
    return None


def plain_name(name: str) -> str:
    """``W1`` -> ``w``, ``_weights`` -> ``weights``: a name without case, underscores and a trailing number."""
    return re.sub(r"\d+$", "", name.lower().strip("_"))


def torch_name(pair: Pair, pairs: Sequence[Pair], arrays: Mapping[Path_, np.ndarray]) -> str:
    """``weight`` or ``bias``: from the array's name, else from its rank among the layer's parameters."""
    plain = plain_name(pair.value[-1])
    if plain in WEIGHT_NAMES:
        return "weight"
    if plain in BIAS_NAMES:
        return "bias"
    ranks = sorted({int(np.squeeze(arrays[p.value]).ndim) for p in pairs})
    return "weight" if int(np.squeeze(arrays[pair.value]).ndim) == ranks[-1] else "bias"


def find_buffers(obj: Any, pairs: Sequence[Pair]) -> dict[str, Path_]:
    """Running statistics: an array whose name says running (moving, ema, ...) and mean or variance."""
    taken = {p.value for p in pairs} | {p.grad for p in pairs}
    buffers: dict[str, Path_] = {}
    for path in find_arrays(obj):
        name = path[-1].lower()
        if path in taken or not RUNNING.search(name):
            continue
        if "mean" in name or "mu" in name:
            buffers.setdefault("running_mean", path)
        elif "var" in name or "sigma" in name:
            buffers.setdefault("running_var", path)
    return buffers


def parse_mapping(items: Sequence[str]) -> dict[str, tuple[Path_, Path_ | None]]:
    """``["weight=weights:d_weights", "running_var=rv", "bias=params['b']:grads['b']"]`` as paths by torch name."""
    mapping: dict[str, tuple[Path_, Path_ | None]] = {}
    for item in items:
        name, sep, rest = item.partition("=")
        value, _, grad = rest.partition(":")
        if not sep or not name.strip() or not value.strip():
            raise AdapterError(
                f"--param {item!r}: write TORCH_NAME=ATTRIBUTE[:GRADIENT], e.g. weight=weights:d_weights"
            )
        mapping[name.strip()] = (_parse_path(value), _parse_path(grad) if grad.strip() else None)
    return mapping


def _parse_path(text: str) -> Path_:
    match = re.fullmatch(r"\s*(\w+)((?:\[['\"]?\w+['\"]?\])*)\s*", text)
    if not match:
        raise AdapterError(f"{text!r} is not an attribute: write NAME or NAME['KEY']")
    return (match.group(1), *re.findall(r"\[['\"]?(\w+)['\"]?\]", match.group(2)))


# ---------------------------------------------------------------- shapes


def _squeezed(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(size for size in shape if size != 1)


def _permutations(stored: tuple[int, ...], target: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every order of ``stored``'s non-unit axes that gives ``target``'s non-unit axes, the usual ones first."""
    source, goal = _squeezed(stored), _squeezed(target)
    if sorted(source) != sorted(goal):
        return []
    usual = PERMUTATIONS_FIRST.get(len(source), [tuple(range(len(source)))])
    every = [*usual, *(p for p in itertools.permutations(range(len(source))) if p not in usual)]
    return [p for p in every if tuple(source[i] for i in p) == goal]


@dataclass(frozen=True)
class Binding:
    """Which array of the layer stands for which of PyTorch's tensors, and how it is reshaped."""

    name: str  # PyTorch's name: weight, bias, running_mean, running_var
    value: Path_
    grad: Path_ | None  # None: a buffer, or a parameter the layer updates inside backward
    kind: str  # "parameter" or "buffer"
    stored: tuple[int, ...]
    shape: tuple[int, ...]  # as PyTorch has it
    perm: tuple[int, ...]  # the stored non-unit axes, in PyTorch's order

    def to_torch(self, array: np.ndarray) -> np.ndarray:
        """The layer's array in PyTorch's shape: a view where NumPy allows one."""
        return array.reshape(_squeezed(self.stored)).transpose(self.perm).reshape(self.shape)

    def to_layer(self, array: np.ndarray) -> np.ndarray:
        source = _squeezed(self.stored)
        return array.reshape(tuple(source[i] for i in self.perm)).transpose(np.argsort(self.perm)).reshape(self.stored)

    def describe(self, grad: str = "") -> str:
        """``weight = weights (gradient d_weights), stored (5, 3) read with axes (1, 0) as (3, 5)``."""
        grad = f"gradient {label(self.grad)}" if self.grad else grad
        how = f"stored {self.stored}" if self.stored != self.shape else f"{self.shape}"
        if self.perm != tuple(range(len(self.perm))):
            how += f" read with axes {self.perm}"
        if self.stored != self.shape:
            how += f" as {self.shape}"
        return f"{self.name} = {label(self.value)}" + (f" ({grad})" if grad else "") + f", {how}"


def candidates(
    layer: Any,
    mapping: Mapping[str, tuple[Path_, Path_ | None]] | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    among: Sequence[Path_] | None = None,
) -> list[list[Binding]]:
    """Every reading of the layer's arrays as PyTorch's tensors, the likeliest first (several for square shapes)."""
    arrays = find_arrays(layer)
    pairs = find_pairs(layer, among)
    named: dict[str, tuple[Path_, Path_ | None, str]] = {}
    for pair in pairs:
        name = torch_name(pair, pairs, arrays)
        if name in named:
            raise AdapterError(
                f"{type(layer).__name__}: both {label(named[name][0])} and {label(pair.value)} look like its {name}: "
                f"say which with --param {name}=ATTRIBUTE:GRADIENT"
            )
        named[name] = (pair.value, pair.grad, "parameter")
    for name, path in find_buffers(layer, pairs).items():
        named[name] = (path, None, "buffer")
    for name, (value, grad) in (mapping or {}).items():
        for other in [n for n, (v, _, _) in named.items() if v == value and n != name]:
            del named[other]
        kind = "buffer" if name.startswith("running_") else "parameter"
        named[name] = (value, grad, kind)
    shapes = {name: tuple(shape) for name, shape in (shapes or {}).items()}
    if shapes:
        named = {name: item for name, item in named.items() if name in shapes}
    options: list[list[Binding]] = []
    for name in sorted(named, key=lambda n: (TORCH_ORDER.index(n) if n in TORCH_ORDER else len(TORCH_ORDER), n)):
        value, grad, kind = named[name]
        array = get(layer, value)
        if not isinstance(array, np.ndarray):
            raise AdapterError(f"{type(layer).__name__} has no array {label(value)} (given for {name})")
        if grad is not None and not isinstance(get(layer, grad), np.ndarray | type(None)):
            raise AdapterError(f"{type(layer).__name__}.{label(grad)} is not an array (given as {name}'s gradient)")
        target = shapes.get(name, _squeezed(array.shape) or (1,))
        perms = _permutations(array.shape, target)
        if not perms:
            raise AdapterError(
                f"{type(layer).__name__}.{label(value)} has shape {array.shape}, which no reordering makes "
                f"{name}'s shape {target}: check the constructor's arguments, or map it with --param"
            )
        options.append([Binding(name, value, grad, kind, array.shape, target, p) for p in perms])
    return [list(choice) for choice in itertools.islice(itertools.product(*options), MAX_CANDIDATES)]


# ---------------------------------------------------------------- layouts


def torch_letters(letters: str) -> str:
    """PyTorch's layout of the tensor a layout describes: ``NCHW`` for images, ``NC`` for features."""
    return "NCHW" if set(letters) & set("HW") else "NC"


@dataclass(frozen=True)
class Layout:
    """The letters of the layer's input and output axes (``N`` batch, ``C`` channels, ``H``, ``W``).

    A letter that is absent is an axis of size 1 the layer does not have: ``HW`` is one image of one
    channel, ``HWC`` one image.
    """

    input: str
    output: str = ""

    def __post_init__(self) -> None:
        if not self.output:
            out = self.input if "C" in self.input else self.input + "C"
            object.__setattr__(self, "output", out)
        for letters in (self.input, self.output):
            if len(set(letters)) != len(letters) or not set(letters) <= set("NCHW") or "C" not in letters + "C":
                raise AdapterError(f"layout {letters!r}: use each of the letters N, C, H, W at most once, e.g. NHWC")

    def __str__(self) -> str:
        return self.input if self.output == self.input else f"{self.input}->{self.output}"

    @property
    def is_torch(self) -> bool:
        return self.input == torch_letters(self.input) and self.output == torch_letters(self.output)

    def layer_shape(self, shape: Sequence[int]) -> tuple[int, ...] | None:
        """An input shape in PyTorch's layout as the layer's layout has it; None if it has no such axis."""
        return _shape_to(tuple(shape), torch_letters(self.input), self.input)

    def torch_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        return _shape_to(tuple(shape), self.input, torch_letters(self.input))


def _shape_to(shape: tuple[int, ...], source: str, target: str) -> tuple[int, ...] | None:
    sizes = dict(zip(source, shape, strict=True))
    if any(sizes[letter] != 1 for letter in source if letter not in target):
        return None
    return tuple(sizes.get(letter, 1) for letter in target)


def to_layer(x: np.ndarray, letters: str) -> np.ndarray:
    """A PyTorch-layout array in the layout ``letters``."""
    source = torch_letters(letters)
    if x.ndim != len(source):
        raise AdapterError(f"an array of shape {x.shape} is not {source}, so it cannot be laid out as {letters}")
    if any(x.shape[i] != 1 for i, letter in enumerate(source) if letter not in letters):
        lost = [letter for letter in source if letter not in letters]
        raise AdapterError(f"layout {letters} has no axis {', '.join(lost)}: it takes a size of 1 there, not {x.shape}")
    kept = [letter for letter in source if letter in letters]
    squeezed = x.reshape([size for size, letter in zip(x.shape, source, strict=True) if letter in letters])
    return squeezed.transpose([kept.index(letter) for letter in letters])


def to_torch(y: np.ndarray, letters: str) -> np.ndarray:
    """An array in the layout ``letters`` in PyTorch's layout."""
    if y.ndim != len(letters):
        raise AdapterError(f"the layer returned shape {y.shape}, which is not the layout {letters}")
    target = torch_letters(letters)
    ordered = y.transpose([letters.index(letter) for letter in target if letter in letters])
    sizes = dict(zip([letter for letter in target if letter in letters], ordered.shape, strict=True))
    return ordered.reshape([sizes.get(letter, 1) for letter in target])


def infer_layout(shape: Sequence[int], channels: int | None = None) -> tuple[Layout | None, str]:
    """The layout an input of ``shape`` is in, and how it was decided; None where the shape allows several.

    ``channels`` (the layer's input channels or features) decides between ``NCHW``, ``NHWC`` and
    batch-last ``CHWN``, or ``NC`` and features-first ``CN``; square images decide where it is unknown.
    """
    options = {1: ["C"], 2: ["NC", "CN", "HW"], 3: ["HWC", "CHW"], 4: ["NCHW", "NHWC", "CHWN"]}.get(len(shape), [])
    fits = []
    for letters in options:
        sizes = dict(zip(letters, shape, strict=True))
        square = "H" not in sizes or sizes["H"] == sizes["W"]
        if (sizes.get("C", 1) == channels) if channels is not None else square:
            fits.append(letters)
    if channels is None and len(shape) == 2:
        fits = ["NC"]
    square = [
        letters for letters in fits if "H" not in letters or shape[letters.index("H")] == shape[letters.index("W")]
    ]
    if len(fits) > 1 and len(square) == 1:
        return Layout(square[0]), f"inferred from the input shape, {channels} input channels and square images"
    if len(fits) == 1:
        why = f"{channels} input channels" if channels is not None else "square images"
        return Layout(fits[0]), f"inferred from the input shape and {why}"
    if not fits:
        return None, f"no layout of {options} fits input shape {tuple(shape)} with {channels} input channels"
    return None, f"input shape {tuple(shape)} fits layouts {', '.join(fits)}: give one with --layout"


def parse_layout(text: str) -> Layout:
    """``NHWC``, or ``HW->HWC`` where the output's layout differs from the input's."""
    source, _, target = text.upper().partition("->")
    return Layout(source.strip(), target.strip())


# ---------------------------------------------------------------- methods


def find_method(obj: Any, names: Sequence[str]) -> tuple[str, Callable[..., Any]] | None:
    """The first of ``names`` that ``obj``'s class defines (``__call__`` only where a class of Python code does)."""
    for name in names:
        attr = getattr(type(obj), name, None)
        if callable(attr) and (name != "__call__" or inspect.isfunction(attr)):
            return name, getattr(obj, name)
    return None


def _parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return []


def _positional(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p for p in _parameters(fn) if p.kind in kinds]


def training_flag(fn: Callable[..., Any]) -> str | None:
    """The name of ``fn``'s training flag, if it has one."""
    return next((p.name for p in _parameters(fn) if p.name in TRAINING_FLAGS), None)


def takes_rate(fn: Callable[..., Any]) -> bool:
    """True for a backward that updates the weights itself: ``backprop(d_out, learn_rate)``."""
    positional = _positional(fn)
    return len(positional) >= 2 and (
        positional[1].name.lower() in RATE_NAMES or positional[1].default is inspect.Parameter.empty
    )


def is_loss(forward: Callable[..., Any], backward: Callable[..., Any]) -> bool:
    """True for ``forward(input, target)`` with ``backward()``: a loss layer."""
    required = [p for p in _positional(forward) if p.default is inspect.Parameter.empty]
    backward_params = [p for p in _parameters(backward) if p.kind is not inspect.Parameter.VAR_KEYWORD]
    return len(required) >= 2 and not [p for p in backward_params if p.default is inspect.Parameter.empty]


def is_layer(obj: Any) -> bool:
    """True for an object with a forward and a backward method, whatever they are called."""
    if isinstance(obj, (type, np.ndarray, str, bytes, int, float)):
        return False
    return find_method(obj, FORWARD_NAMES) is not None and find_method(obj, BACKWARD_NAMES) is not None


def find_layers(obj: Any, prefix: str = "", seen: set[int] | None = None) -> Iterator[tuple[str, Any]]:
    """A network's layers by path (``fc1``, ``layers[2]``), held as attributes, in lists or dicts, nested.

    A layer held twice (as ``self.fc1`` and in ``self.layers``) is found once, under its first path.
    """
    seen = set() if seen is None else seen
    for name, value in vars(obj).items() if hasattr(obj, "__dict__") else ():
        path = f"{prefix}.{name}" if prefix else name
        items = (
            [(f"{path}[{i}]", v) for i, v in enumerate(value)]
            if isinstance(value, list | tuple)
            else [(f"{path}[{k!r}]", v) for k, v in value.items()]
            if isinstance(value, dict)
            else [(path, value)]
        )
        for item_path, item in items:
            if is_layer(item) and id(item) not in seen:
                seen.add(id(item))
                yield item_path, item
                yield from find_layers(item, item_path, seen)


def one_hot(target: np.ndarray, classes: int, dtype: np.dtype) -> np.ndarray:
    encoded = np.zeros((len(target), classes), dtype)
    encoded[np.arange(len(target)), target] = 1
    return encoded


# ---------------------------------------------------------------- the module


class Adapted(Module):
    """A foreign layer as a ``lablib.nn.Module``: PyTorch's names, shapes and layout, the layer's own arrays."""

    def __init__(
        self,
        layer: Any,
        bindings: Sequence[Binding],
        layout: Layout | None = None,
        *,
        target: str | None = None,
    ) -> None:
        super().__init__()
        forward, backward = find_method(layer, FORWARD_NAMES), find_method(layer, BACKWARD_NAMES)
        if forward is None or backward is None:
            missing = "forward" if forward is None else "backward"
            names = FORWARD_NAMES if forward is None else BACKWARD_NAMES
            raise AdapterError(f"{type(layer).__name__} has no {missing} method (one of {', '.join(names)})")
        object.__setattr__(self, "layer", layer)
        self.name = type(layer).__name__
        self.forward_name, self._forward = forward
        self.backward_name, self._backward = backward
        self.flag = training_flag(self._forward)
        self.updates_inside = takes_rate(self._backward)
        self.is_loss = is_loss(self._forward, self._backward)
        self.bindings = list(bindings)
        self.layout = None if layout is None or layout.is_torch else layout
        self.target = target
        self.computes_in: np.dtype | None = None
        self.grad_paths: dict[str, Path_] = {}  # gradients found beside their parameter once backward has run
        self.returns_input_grad: bool | None = None
        for binding in self.bindings:
            data = binding.to_torch(get(layer, binding.value))
            if binding.kind == "parameter":
                setattr(self, binding.name, Parameter(data))
            else:
                self.register_buffer(binding.name, data)

    def sync(self) -> None:
        """Present the layer's current arrays again: a layer may have replaced one (``self.W = self.W - ...``)."""
        for binding in self.bindings:
            array = get(self.layer, binding.value)
            if not isinstance(array, np.ndarray) or array.shape != binding.stored:
                got = array.shape if isinstance(array, np.ndarray) else type(array).__name__
                raise AdapterError(f"{self.name}.{label(binding.value)} became {got}, not {binding.stored}")
            data = binding.to_torch(array)
            if binding.kind == "parameter":
                self._parameters[binding.name].data = data
            else:
                self.register_buffer(binding.name, data)

    def forward(self, x: np.ndarray, target: np.ndarray | None = None) -> Any:
        self.sync()
        kwargs = {self.flag: self.training} if self.flag else {}
        if self.is_loss:
            return self._loss_forward(x, target, kwargs)
        raw = call(f"{self.name}.{self.forward_name}", self._forward, self._in(x), **kwargs)
        if not isinstance(raw, np.ndarray):
            raise AdapterError(f"{self.name}.{self.forward_name} returned {type(raw).__name__}, not a NumPy array")
        kept = [array.dtype for array in find_arrays(self.layer).values()]
        self.computes_in = np.dtype(np.float32) if np.dtype(np.float32) in [raw.dtype, *kept] else raw.dtype
        y = to_torch(raw, self.layout.output) if self.layout else raw
        self.sync()  # a forward that replaced an array (a cast to float32) is read again
        return y.astype(x.dtype, copy=False)

    def _in(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(to_layer(x, self.layout.input)) if self.layout else x

    def _loss_forward(self, x: np.ndarray, target: np.ndarray | None, kwargs: dict[str, Any]) -> float:
        if target is None:
            raise AdapterError(f"{self.name} is a loss layer: call forward(input, target)")
        encodings = [self.target] if self.target else ["onehot", "indices"]
        for number, encoding in enumerate(encodings):
            given = one_hot(target, x.shape[1], x.dtype) if encoding == "onehot" else target
            try:
                out = self._forward(self._in(x), given, **kwargs)
            except Exception:
                if number + 1 < len(encodings):
                    continue
                raise
            self.target = encoding
            break
        loss = out[-1] if isinstance(out, tuple | list) else out
        self.prediction = out[0] if isinstance(out, tuple | list) else None
        self.computes_in = np.asarray(loss).dtype
        return float(np.asarray(loss).sum())

    def backward(self, grad_output: Any = 1.0) -> np.ndarray | None:
        layer = self.layer
        for binding in self.bindings:
            path = binding.grad or self.grad_paths.get(binding.name)
            grad = get(layer, path) if path else None
            if isinstance(grad, np.ndarray):
                grad[...] = 0  # a backward that accumulates with += counts this pass alone
        params = [b for b in self.bindings if b.kind == "parameter"]
        before = {b.name: (get(layer, b.value), get(layer, b.value).copy()) for b in params if self.updates_inside}
        name = f"{self.name}.{self.backward_name}"
        if self.is_loss:
            dx = call(name, self._backward)
        else:
            g = np.ascontiguousarray(to_layer(grad_output, self.layout.output)) if self.layout else grad_output
            dx = call(name, self._backward, g, KNOWN_RATE) if self.updates_inside else call(name, self._backward, g)
        for binding in params:
            if self.updates_inside:
                original, copy = before[binding.name]
                grad = (copy - get(layer, binding.value)) / KNOWN_RATE
                original[...] = copy
                put(layer, binding.value, original)
            else:
                path = binding.grad or self.grad_paths.get(binding.name) or gradient_path(layer, binding.value)
                path = path or gradient_path(layer, binding.value, same_shape=False)
                grad = get(layer, path) if path else None
                if isinstance(grad, np.ndarray) and grad.shape != binding.stored:
                    self._parameters[binding.name].grad = np.array(grad)  # the wrong shape, for a check to report
                    continue
                if not isinstance(grad, np.ndarray):
                    raise AdapterError(
                        f"{name} left no gradient of {label(binding.value)} (shape {binding.stored}) beside it: "
                        f"name it d_{binding.value[-1]} or say where it is with --param {binding.name}=VALUE:GRADIENT"
                    )
                self.grad_paths[binding.name] = path
            param = self._parameters[binding.name]
            param.accumulate_grad(np.array(binding.to_torch(grad), dtype=param.dtype))
        self.returns_input_grad = isinstance(dx, np.ndarray)
        if not self.returns_input_grad:
            return None
        if self.is_loss:
            return dx * float(grad_output)
        dx = to_torch(dx, self.layout.input) if self.layout else dx
        return dx.astype(grad_output.dtype, copy=False)

    def to(self, dtype: np.dtype | type) -> Module:
        """Cast the layer's own arrays (parameters, their gradients, buffers) and present them again."""
        for binding in self.bindings:
            for path in (binding.value, binding.grad or self.grad_paths.get(binding.name)):
                array = get(self.layer, path) if path else None
                if isinstance(array, np.ndarray):
                    put(self.layer, path, array.astype(dtype))
        self.sync()
        for param in self.parameters():
            param.grad = None
        return self

    def describe(self) -> list[str]:
        """One line per tensor: which of the layer's attributes stood for it."""
        lines = []
        for binding in self.bindings:
            grad = ""
            if binding.kind == "parameter":
                found = self.grad_paths.get(binding.name)
                grad = "recovered from its update inside backward" if self.updates_inside else ""
                grad = f"gradient {label(found)}" if found else grad
            lines.append(binding.describe(grad))
        return lines

    def extra_repr(self) -> str:
        return f"{self.name}, layout={self.layout or 'PyTorch'}; " + "; ".join(self.describe())


def adapt(
    layer: Any,
    mapping: Mapping[str, tuple[Path_, Path_ | None]] | None = None,
    layout: Layout | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    *,
    choice: int = 0,
    target: str | None = None,
) -> Module:
    """``layer`` as a ``lablib.nn.Module`` (a ``Module`` already is one and comes back as it is)."""
    if isinstance(layer, Module):
        return layer
    readings = candidates(layer, mapping, shapes)
    return Adapted(layer, readings[min(choice, len(readings) - 1)], layout, target=target)
