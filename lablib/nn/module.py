"""Module and Sequential: the containers every layer of the NumPy core is built from.

They mirror ``torch.nn.Module``: attributes that are ``Parameter`` or ``Module`` are registered on
assignment, so ``named_parameters()`` and ``state_dict()`` produce the same dotted keys as PyTorch.
Unlike PyTorch there is no autograd: ``forward`` caches what ``backward`` needs (nothing under
``no_grad``, ``grad_mode.py``), and ``backward`` takes the gradient of the loss with respect to the
output, accumulates parameter gradients into ``Parameter.grad`` and returns the gradient with respect
to the input.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from lablib.nn.parameter import Parameter


class Module:
    """Base class of every NumPy layer and model.

    ``needs_input_grad`` (autograd's name for it) is set to False on a model's first layer: its input,
    the images, needs no gradient, and layers for which it costs work (Conv2d, Linear) then skip
    it and return None from ``backward``, as autograd skips an input that does not require grad.
    """

    needs_input_grad = True

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, (Parameter, Module)) or name in self._parameters or name in self._modules:
            for registry in (self._parameters, self._buffers, self._modules):
                registry.pop(name, None)
            if isinstance(value, Parameter):
                self._parameters[name] = value
            elif isinstance(value, Module):
                self._modules[name] = value
        elif name in self._buffers:
            self._buffers[name] = value  # ``self.running_mean *= m`` rebinds the buffer, as in PyTorch
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """Register state that is saved in ``state_dict`` but not trained (BatchNorm's running stats)."""
        self._buffers[name] = value
        object.__setattr__(self, name, value)

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fuses(self, following: Module) -> bool:
        """Whether ``following``, the next module of a ``Sequential``, runs inside this one: then
        ``forward(x, following)`` and ``backward(grad, following)`` run both (``batchnorm.py``)."""
        return False

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def saved(self, name: str) -> Any:
        """What the last forward kept for backward under ``name``; a clear error when there was no
        forward, or it ran under ``no_grad`` and kept nothing."""
        value = getattr(self, name, None)
        if value is None:
            raise RuntimeError(f"{type(self).__name__}.backward needs a forward before it, outside lablib.nn.no_grad()")
        return value

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for module_name, module in self.named_modules(prefix):
            for name, param in module._parameters.items():
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self) -> Iterator[Parameter]:
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for module_name, module in self.named_modules(prefix):
            for name, buf in module._buffers.items():
                yield (f"{module_name}.{name}" if module_name else name), buf

    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for param in self.parameters():
            param.grad = None

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and buffers by dotted name, in registration order, as PyTorch orders them."""
        state: dict[str, np.ndarray] = {}
        for module_name, module in self.named_modules():
            prefix = f"{module_name}." if module_name else ""
            for name, param in module._parameters.items():
                state[prefix + name] = param.data
            for name, buf in module._buffers.items():
                state[prefix + name] = buf
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Copy arrays into this module; keys and shapes must match exactly (PyTorch's strict mode).

        Values may be NumPy arrays or anything ``np.asarray`` accepts, such as CPU torch tensors.
        """
        own = self.state_dict()
        missing = sorted(own.keys() - state_dict.keys())
        unexpected = sorted(state_dict.keys() - own.keys())
        if missing or unexpected:
            raise KeyError(
                f"state_dict does not match {type(self).__name__}: missing keys {missing}, unexpected keys {unexpected}"
            )
        for key, target in own.items():
            value = np.asarray(state_dict[key])
            if value.shape != target.shape:
                raise ValueError(
                    f"state_dict[{key!r}] has shape {value.shape}, {type(self).__name__} expects {target.shape}"
                )
        for module_name, module in self.named_modules():
            prefix = f"{module_name}." if module_name else ""
            for name, param in module._parameters.items():
                param.data[...] = np.asarray(state_dict[prefix + name])
            for name, buf in module._buffers.items():
                buf[...] = np.asarray(state_dict[prefix + name])

    def to(self, dtype: np.dtype | type) -> Module:
        """Cast floating parameters and buffers to ``dtype`` (``.double()`` and ``.float()`` use it)."""
        for module in self.modules():
            for param in module._parameters.values():
                param.data = param.data.astype(dtype)
                param.grad = None
            for name, buf in list(module._buffers.items()):
                if np.issubdtype(buf.dtype, np.floating):
                    setattr(module, name, buf.astype(dtype))
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        return "\n".join(lines) + (")" if len(lines) == 1 else "\n)")


class Sequential(Module):
    """Modules applied in order; ``backward`` runs them in reverse. A module that :meth:`~Module.fuses`
    with the next one runs both in one call."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for index, module in enumerate(modules):
            setattr(self, str(index), module)

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def forward(self, x: np.ndarray) -> np.ndarray:
        modules, index = list(self._modules.values()), 0
        while index < len(modules):
            module, following = modules[index], modules[index + 1] if index + 1 < len(modules) else None
            if following is not None and module.fuses(following):
                x, index = module.forward(x, following), index + 2
            else:
                x, index = module.forward(x), index + 1
        return x

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        modules, index = list(self._modules.values()), len(self._modules) - 1
        while index >= 0:
            module, previous = modules[index], modules[index - 1] if index > 0 else None
            if previous is not None and previous.fuses(module):
                grad_output, index = previous.backward(grad_output, module), index - 2
            else:
                grad_output, index = module.backward(grad_output), index - 1
        return grad_output
