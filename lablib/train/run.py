"""Train one framework's model: its backend, the data, the shared loop."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from lablib.atomic import staged_dir
from lablib.not_run import not_run_arrays, write_not_run
from lablib.params import Params
from lablib.train.checkpoint import save_npz
from lablib.train.loop import Outputs, Pool, Trainer
from lablib.train.numpy_backend import initial_state

# Each framework's backend, imported by name so that train_numpy neither imports PyTorch nor depends
# on its files (tests/test_dvc_deps.py follows the entry of the stage's framework only).
BACKENDS = {"numpy": "lablib.train.numpy_backend:NumpyBackend", "torch": "lablib.train.torch_backend:TorchBackend"}


def train(framework: str, params: Params, prepared: Path, split: Path, outputs: Outputs) -> dict[str, Any]:
    """Train ``framework``'s model under ``params`` and write its outputs; returns the final metrics.

    Both frameworks start from the same initial weights, drawn from ``seed`` by the NumPy core. A model
    PyTorch has no twin of is refused when the torch backend builds it (:func:`lablib.models.torch_model.build_torch`).
    """
    module, name = BACKENDS[framework].split(":")
    backend = getattr(importlib.import_module(module), name)
    train_params = params.train_for(framework)
    backend.check(train_params)
    pool = Pool.load(prepared, split)
    trainer = Trainer(train_params, pool, backend, initial_state(train_params), outputs, framework)
    return trainer.run()


def record_not_run(outputs: Outputs, reason: str) -> None:
    """The outputs of a training that did not run: the not-run record as the model file and as the
    metrics, and an empty plots folder (no epoch was logged); no weights, no number."""
    with staged_dir(outputs.live_dir) as live:
        write_not_run(live / "metrics.json", reason)
        (live / "plots" / "metrics").mkdir(parents=True)
        save_npz(outputs.model, not_run_arrays(reason))
