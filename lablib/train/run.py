"""Train one framework's model: its backend, the data, the shared loop."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import click

from lablib import machine
from lablib.atomic import staged_dir, staged_file
from lablib.not_run import not_run_arrays, write_not_run
from lablib.params import Params
from lablib.train.checkpoint import save_npz
from lablib.train.loop import Outputs, Pool, Trainer
from lablib.train.numpy_backend import initial_state

# Beside a training's metrics: the machine it ran on (lablib.machine), which its last bits depend on.
MACHINE = "machine.json"

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
    here = {**machine.describe(), **backend.machine(train_params)}
    baseline = machine.committed(outputs.live_dir / MACHINE)
    if warning := machine.baseline_mismatch(here, baseline, f"train_{framework}"):
        click.echo(f"Warning: {warning}", err=True)
    pool = Pool.load(prepared, split)
    trainer = Trainer(train_params, pool, backend, initial_state(train_params), outputs, framework)
    summary = trainer.run()
    write_machine(outputs, here)
    return summary


def write_machine(outputs: Outputs, here: dict[str, Any]) -> None:
    """Record the machine beside the metrics (``MACHINE``): what the bits of this training depend on."""
    with staged_file(outputs.live_dir / MACHINE) as tmp:
        tmp.write_text(json.dumps(here, indent=2) + "\n")


def record_not_run(outputs: Outputs, reason: str) -> None:
    """The outputs of a training that did not run: the not-run record as the model file and as the
    metrics, and an empty plots folder (no epoch was logged); no weights, no number."""
    with staged_dir(outputs.live_dir) as live:
        write_not_run(live / "metrics.json", reason)
        (live / "plots" / "metrics").mkdir(parents=True)
        save_npz(outputs.model, not_run_arrays(reason))
        (live / MACHINE).write_text(json.dumps(machine.describe(), indent=2) + "\n")
