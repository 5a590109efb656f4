"""Where a training stands between two epochs: everything a checkpoint holds and a resumed run needs.

The state is plain data: counters, the generator's state and the metrics go to one JSON string
(``meta``), the weights to named arrays (``backend/...``, ``best/...``), so a checkpoint is an
``.npz`` that loads without pickle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lablib.train.checkpoint import load_npz, pack_json, prefixed, save_npz, unpack_json, unprefixed


@dataclass
class TrainingState:
    """The progress of a training over its validation runs (one for holdout, K for kfold).

    ``run`` is the run in progress and ``epoch`` the epochs it has finished; ``backend`` (weights,
    optimiser, class centres), ``rng`` (the generator's state) and ``schedule_steps`` (the steps its
    learning-rate schedule has taken) are that run's, as they stood after that epoch. ``history``
    holds one metrics entry per finished epoch of every run, ``finished`` one summary per finished
    run, and ``best`` the model state of the finished run with the best final validation accuracy.
    ``fingerprint`` names the parameters and data the state belongs to.
    """

    fingerprint: str
    run: int = 0
    epoch: int = 0
    schedule_steps: int = 0
    rng: dict[str, Any] | None = None
    backend: dict[str, np.ndarray] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    finished: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def resuming(self) -> bool:
        """Whether the run in progress has finished epochs to continue from."""
        return self.epoch > 0

    def end_epoch(
        self, entry: dict[str, float], backend: dict[str, np.ndarray], rng: dict[str, Any], schedule_steps: int
    ) -> None:
        """Record a finished epoch of the run in progress: its metrics and where the run now stands."""
        self.history.append(entry)
        self.epoch = int(entry["epoch"])
        self.backend, self.rng, self.schedule_steps = backend, rng, schedule_steps

    def end_run(self, name: str, model_state: dict[str, np.ndarray]) -> None:
        """Close the run in progress (keeping its model if it is the best so far) and start the next."""
        final_val_acc = [entry for entry in self.history if entry["run"] == self.run][-1]["val_acc"]
        if not self.finished or final_val_acc > max(run["final_val_acc"] for run in self.finished):
            self.best = model_state
        self.finished.append({"name": name, "final_val_acc": final_val_acc})
        self.run, self.epoch, self.schedule_steps, self.rng, self.backend = self.run + 1, 0, 0, None, {}

    def to_arrays(self) -> dict[str, np.ndarray]:
        meta = {
            "fingerprint": self.fingerprint,
            "run": self.run,
            "epoch": self.epoch,
            "schedule_steps": self.schedule_steps,
            "rng": self.rng,
            "history": self.history,
            "finished": self.finished,
        }
        return {**prefixed("backend", self.backend), **prefixed("best", self.best), "meta": pack_json(meta)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> TrainingState:
        return cls(
            **unpack_json(arrays["meta"]), backend=unprefixed("backend", arrays), best=unprefixed("best", arrays)
        )

    def save(self, path: Path) -> None:
        """Write the state to ``path`` atomically: a kill at any moment leaves the previous epoch's."""
        save_npz(path, self.to_arrays())

    @classmethod
    def load(cls, path: Path) -> TrainingState:
        return cls.from_arrays(load_npz(path))
