"""Training: one loop (``loop.py``) over two backends, NumPy (``numpy_backend.py``) and PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lablib.params import Params
from lablib.train.loop import Outputs, Pool, Trainer
from lablib.train.numpy_backend import NumpyBackend, initial_state


def train(framework: str, params: Params, prepared: Path, split: Path, outputs: Outputs) -> dict[str, Any]:
    """Train ``framework``'s model under ``params`` and write its outputs; returns the final metrics.

    Both frameworks start from the same initial weights, drawn from ``seed`` by the NumPy core.
    """
    train_params = params.train_for(framework)
    if framework == "numpy":
        backend = NumpyBackend
    else:
        from lablib.train.torch_backend import TorchBackend  # torch loads only for the PyTorch stage

        backend = TorchBackend
    pool = Pool.load(prepared, split)
    trainer = Trainer(train_params, pool, backend, initial_state(train_params), outputs, framework)
    return trainer.run()
