"""Short seeded NumPy trainings whose every bit a speed change must keep, as one digest.

    python -m tests.bits.seeded            # this machine's key and digest
    python -m tests.bits.seeded --record   # add them to tests/bits/digests.json

Two runs cover the fast paths: lab2025_cnn (im2col convolutions, BatchNorm, SiLU, Adam, one-cycle,
center loss, augmentation with erasing, balanced batches, an EMA) at batch 50, and lab2023_cnn
(max pooling, SGD, a step schedule, rotating folds) at batch 1. The digest covers the saved weights,
every logged metric but the timings, the last checkpoint of an interrupted run, and the logits and
features of the trained network in eval mode under ``no_grad``. Evaluation folds BatchNorm into the
layer before it (``nn.fusion``), which moves last bits by design; ``tests/nn/test_fusion.py`` holds
the folded network to the same function. A digest holds on one BLAS kernel and thread count and one NumPy vector
instruction set (``lablib.machine``): the digests are keyed by them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from lablib import machine, nn
from lablib.models.numpy_model import build_numpy
from lablib.models.specs import EVAL_BATCH, Spec, get_spec
from lablib.rng import placeholder
from lablib.train.checkpoint import load_npz, unpack_json
from lablib.train.loop import Outputs, Trainer, batches_per_epoch, validation_runs
from lablib.train.numpy_backend import NumpyBackend, initial_state
from tests.test_train_loop import interrupted, make_params, make_pool

DIGESTS = Path(__file__).with_name("digests.json")
TIMINGS = {"epoch_seconds", "train_seconds", "data_seconds", "val_seconds", "images_per_second", "mean_epoch_seconds"}

RUNS = {
    "lab2025_cnn": {"model": "lab2025_cnn", "epochs": 2, "batch_size": 50, "ema": 0.9},
    "lab2023_cnn": {
        "model": "lab2023_cnn",
        "width": 6,
        "epochs": 2,
        "batch_size": 1,
        "lr": 0.01,
        "optimizer": "sgd",
        "schedule.name": "step",
        "schedule.step_size": 1,
        "validation": "rotating",
        "sampling": "shuffle",
        "center_loss.weight": 0.0,
        "augment.enabled": False,
    },
}


def _update(digest: hashlib._Hash, arrays: dict[str, np.ndarray]) -> None:
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key} {array.dtype} {array.shape}".encode())
        digest.update(array.tobytes())


def run_digest(name: str, folder: Path) -> str:
    """The digest of one seeded run of ``RUNS[name]`` (its files written under ``folder``)."""
    params = make_params(**RUNS[name])
    pool = make_pool(n_per_class=8 if name == "lab2023_cnn" else 40)
    digest = hashlib.sha256()
    outputs = Outputs(folder / f"{name}.npz", folder / f"{name}-live", folder / f"{name}-ck.npz")
    first_epoch, _ = validation_runs(params, pool)[0][1](0)
    steps = batches_per_epoch(pool.labels[first_epoch], params) + 1  # killed in the second epoch
    with contextlib.suppress(KeyboardInterrupt):
        Trainer(params, pool, interrupted(NumpyBackend, steps), initial_state(params), outputs, "numpy").run()
    checkpoint = load_npz(outputs.checkpoint)
    meta = unpack_json(checkpoint.pop("meta"))
    meta["history"] = [{k: v for k, v in entry.items() if k not in TIMINGS} for entry in meta["history"]]
    _update(digest, checkpoint)
    digest.update(json.dumps(meta, sort_keys=True).encode())
    summary = Trainer(params, pool, NumpyBackend, initial_state(params), outputs, "numpy").run()
    weights = load_npz(outputs.model)
    _update(digest, weights)
    history = json.loads((outputs.live_dir / "metrics.json").read_text())
    logged = {key: value for key, value in {**history, **summary}.items() if key not in TIMINGS}
    digest.update(json.dumps(logged, sort_keys=True, default=str).encode())
    features, logits = _evaluate(get_spec(params.model, params.width), weights, pool.images[:300])
    _update(digest, {"features": features, "logits": logits})
    return digest.hexdigest()


def _evaluate(spec: Spec, weights: dict[str, np.ndarray], images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The features and logits of the unfolded network in eval mode, ``EVAL_BATCH`` images at a time."""
    model = build_numpy(spec, rng=placeholder())
    model.load_state_dict(weights)
    model.eval()
    starts = range(0, len(images), EVAL_BATCH)
    with nn.no_grad():
        features = np.concatenate([model.features(np.ascontiguousarray(images[i : i + EVAL_BATCH])) for i in starts])
        logits = np.concatenate([model.classifier(features[i : i + EVAL_BATCH]) for i in starts])
    return features, logits


def digest() -> str:
    """One digest over every run of :data:`RUNS`."""
    with tempfile.TemporaryDirectory() as folder:
        return hashlib.sha256("".join(run_digest(name, Path(folder)) for name in RUNS).encode()).hexdigest()


def recorded() -> dict[str, str]:
    return json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {}


def main() -> None:
    key, value = machine.bits_key(machine.describe()), digest()
    print(f"{key}: {value}")
    if "--record" in sys.argv:
        digests = recorded()
        if digests.get(key, value) != value:
            sys.exit(f"{DIGESTS} holds another digest for {key}: the bits moved; not recorded")
        DIGESTS.write_text(json.dumps({**digests, key: value}, indent=2, sort_keys=True) + "\n")
        print(f"recorded in {DIGESTS}")


if __name__ == "__main__":
    main()
