"""The training loop both frameworks share: data, epochs, validation, checkpoints and logging.

Everything random (the order of batches, augmentation) is drawn here from one NumPy generator, so
the NumPy and the PyTorch run see the same batches; a backend only does the arithmetic. After every
epoch the whole state (weights, optimiser, schedule, generator, history) goes to one checkpoint,
written atomically, so a run killed at any moment resumes from its last finished epoch and ends
with exactly the weights and metrics of an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import click
import numpy as np
from dvclive import Live
from tqdm import tqdm

from lablib.data.augment import augment_batch
from lablib.data.sampling import balanced_batches, shuffled_batches
from lablib.errors import LabError
from lablib.params import ParamsError, TrainParams
from lablib.train.checkpoint import load_npz, pack_json, prefixed, save_npz, unpack_json, unprefixed
from lablib.train.setup import make_scheduler


class NumericalError(LabError):
    """The loss became NaN or infinite."""


class Backend(Protocol):
    framework: str
    optimizer: Any
    lr_scheduler: Any

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float, int]: ...
    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]: ...
    def model_state(self) -> dict[str, np.ndarray]: ...
    def state_dict(self) -> dict[str, np.ndarray]: ...
    def load_state_dict(self, state: dict[str, np.ndarray]) -> None: ...


@dataclass(frozen=True)
class Pool:
    """The development images (train split, then validation split) and their folds."""

    images: np.ndarray
    labels: np.ndarray
    n_train: int
    folds: np.ndarray

    @classmethod
    def load(cls, prepared: Path, split: Path) -> Pool:
        train_images = np.load(prepared / "train_images.npy", mmap_mode="r")
        val_images = np.load(prepared / "val_images.npy", mmap_mode="r")
        return cls(
            images=np.concatenate([train_images, val_images]),
            labels=np.concatenate([np.load(prepared / "train_labels.npy"), np.load(prepared / "val_labels.npy")]),
            n_train=len(train_images),
            folds=np.load(split / "folds.npy"),
        )


Split = Callable[[int], tuple[np.ndarray, np.ndarray]]


def validation_runs(params: TrainParams, pool: Pool) -> list[tuple[str, Split]]:
    """The runs a validation method asks for, each a map from epoch to (train, validation) indices.

    ``holdout`` is one run on the fixed split (report 000); ``kfold`` trains one model per fold;
    ``rotating`` is one run that validates on fold ``epoch mod K`` and trains on the rest (report 001).
    """
    everything = np.arange(len(pool.labels))
    if params.validation == "holdout":
        fixed = (everything[: pool.n_train], everything[pool.n_train :])
        return [("holdout", lambda epoch: fixed)]
    k = int(pool.folds.max()) + 1
    by_fold = [(everything[pool.folds != f], everything[pool.folds == f]) for f in range(k)]
    if params.validation == "kfold":
        return [(f"fold{f}", lambda epoch, f=f: by_fold[f]) for f in range(k)]
    return [("rotating", lambda epoch: by_fold[epoch % k])]


def batches_per_epoch(labels: np.ndarray, params: TrainParams) -> int:
    """Batches in an epoch over ``labels``, as the sampler will draw them (balanced counts the classes present)."""
    n = len(labels)
    if params.sampling != "balanced":
        return math.ceil(n / params.batch_size)
    classes = len(np.unique(labels))
    per_batch = params.batch_size // classes * classes
    return math.ceil(n / per_batch)


def check_fits(params: TrainParams, runs: list[tuple[str, Split]]) -> None:
    """Refuse a batch larger than the training data before any work is done."""
    smallest = min(len(split(epoch)[0]) for _, split in runs for epoch in range(params.epochs))
    if params.batch_size > smallest:
        raise ParamsError(
            f"params.yaml: batch_size {params.batch_size} is larger than the training data "
            f"({smallest} images); lower batch_size or raise data.subset"
        )


@dataclass(frozen=True)
class Outputs:
    model: Path
    live_dir: Path
    checkpoint: Path


class Trainer:
    """Trains one framework's backend under the shared rules; ``run`` returns the final summary."""

    def __init__(
        self,
        params: TrainParams,
        pool: Pool,
        make_backend: Callable[[TrainParams, dict[str, np.ndarray]], Backend],
        initial_state: dict[str, np.ndarray],
        outputs: Outputs,
        framework: str,
    ) -> None:
        self.params = params
        self.pool = pool
        self.make_backend = make_backend
        self.initial_state = initial_state
        self.outputs = outputs
        self.framework = framework
        self.runs = validation_runs(params, pool)
        check_fits(params, self.runs)
        self.fingerprint = hashlib.sha256(
            json.dumps([framework, asdict(params), pool.labels.tolist(), pool.folds.tolist()], default=str).encode()
        ).hexdigest()

    def run(self) -> dict[str, Any]:
        try:
            return self._run()
        except BaseException:
            shutil.rmtree(self.outputs.live_dir, ignore_errors=True)
            raise

    def _run(self) -> dict[str, Any]:
        resume = self._load_checkpoint()
        history: list[dict[str, float]] = resume["history"] if resume else []
        finished: list[dict[str, Any]] = resume["finished"] if resume else []
        best_state = unprefixed("best", resume["arrays"]) if resume else {}
        live = Live(dir=str(self.outputs.live_dir), save_dvc_exp=False, dvcyaml=None)
        for entry in history:
            self._log(live, entry)
        if resume:
            click.echo(
                f"{self.framework}: resuming {self.runs[resume['run']][0]} at epoch {resume['epoch'] + 1} "
                f"from {self.outputs.checkpoint}"
            )
        for run_index in range(resume["run"] if resume else 0, len(self.runs)):
            name, split = self.runs[run_index]
            state = resume if resume and resume["run"] == run_index else None
            model_state, run_summary = self._fit(run_index, name, split, live, history, finished, best_state, state)
            finished.append(run_summary)
            if not best_state or run_summary["final_val_acc"] > max(r["final_val_acc"] for r in finished[:-1]):
                best_state = model_state
        save_npz(self.outputs.model, best_state)
        summary = summarize(history, finished, self.params)
        live.summary = summary
        live.make_summary()
        live.end()
        self.outputs.checkpoint.unlink(missing_ok=True)
        return summary

    def _fit(
        self,
        run_index: int,
        name: str,
        split: Split,
        live: Live,
        history: list[dict[str, float]],
        finished: list[dict[str, Any]],
        best_state: dict[str, np.ndarray],
        resume: dict[str, Any] | None,
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        params = self.params
        backend = self.make_backend(params, self.initial_state)
        steps = max(batches_per_epoch(self.pool.labels[split(epoch)[0]], params) for epoch in range(params.epochs))
        scheduler, per_batch = make_scheduler(backend.lr_scheduler, backend.optimizer, params, steps)
        rng = np.random.default_rng([params.seed, 2, run_index])
        first_epoch = schedule_steps = 0
        if resume:
            first_epoch, schedule_steps = resume["epoch"], resume["schedule_steps"]
            if scheduler is not None:
                fast_forward(scheduler, schedule_steps)
            backend.load_state_dict(unprefixed("backend", resume["arrays"]))
            rng.bit_generator.state = resume["rng"]
        for epoch in range(first_epoch, params.epochs):
            train_idx, val_idx = split(epoch)
            lr = backend.optimizer.param_groups[0]["lr"]
            started = time.perf_counter()
            train_loss, center_loss, train_acc, seen, n_batches = self._train_epoch(
                backend, scheduler if per_batch else None, train_idx, rng, run_index, epoch
            )
            train_seconds = time.perf_counter() - started
            if scheduler is not None and not per_batch:
                scheduler.step()
            schedule_steps += n_batches if per_batch else 1
            val_loss, val_acc = backend.evaluate(self.pool.images[val_idx], self.pool.labels[val_idx])
            entry = {
                "run": run_index,
                "epoch": epoch + 1,
                "lr": lr,
                "train_loss": train_loss,
                "train_center_loss": center_loss,
                "train_acc": train_acc,
                "val_loss": val_loss,
                "val_acc": val_acc,
                "epoch_seconds": time.perf_counter() - started,
                "images_per_second": seen / train_seconds,
            }
            history.append(entry)
            self._log(live, entry)
            click.echo(
                f"{self.framework:>5} {name}  Epoch: {epoch + 1:3d}  Train Loss: {train_loss:.4f}  "
                f"Train Acc: {100 * train_acc:.4f}  Val Loss: {val_loss:.4f}  Val Acc: {100 * val_acc:.4f}  "
                f"Epoch time: {entry['epoch_seconds']:.2f} sec"
            )
            arrays = prefixed("backend", backend.state_dict())
            arrays.update(prefixed("best", best_state))
            save_npz(
                self.outputs.checkpoint,
                {
                    **arrays,
                    "meta": pack_json(
                        {
                            "fingerprint": self.fingerprint,
                            "run": run_index,
                            "epoch": epoch + 1,
                            "history": history,
                            "finished": finished,
                            "rng": rng.bit_generator.state,
                            "schedule_steps": schedule_steps,
                        }
                    ),
                },
            )
        runs = [entry for entry in history if entry["run"] == run_index]
        return backend.model_state(), {"name": name, "final_val_acc": runs[-1]["val_acc"]}

    def _train_epoch(
        self,
        backend: Backend,
        scheduler: Any,
        train_idx: np.ndarray,
        rng: np.random.Generator,
        run_index: int,
        epoch: int,
    ) -> tuple[float, float, float, int, int]:
        params = self.params
        labels = self.pool.labels[train_idx]
        if params.sampling == "balanced":
            batches = balanced_batches(labels, params.batch_size, rng)
        else:
            batches = shuffled_batches(len(train_idx), params.batch_size, rng if params.sampling == "shuffle" else None)
        loss_sum = center_sum = 0.0
        correct = seen = 0
        progress = tqdm(
            batches,
            desc=f"{self.framework} epoch {epoch + 1}/{params.epochs}",
            leave=False,
            mininterval=1,
            disable=None,
        )
        for batch_index, positions in enumerate(progress):
            index = train_idx[positions]
            x = self.pool.images[index]
            if params.augment.enabled:
                x = augment_batch(x, rng, params.augment)
            loss, center_loss, batch_correct = backend.train_step(x, self.pool.labels[index])
            if not (math.isfinite(loss) and math.isfinite(center_loss)):
                raise self._numerical_error(run_index, epoch, batch_index, loss, center_loss)
            if scheduler is not None:
                scheduler.step()
            loss_sum += loss * len(index)
            center_sum += center_loss * len(index)
            correct += batch_correct
            seen += len(index)
            progress.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{100 * correct / seen:.2f}", refresh=False)
        return loss_sum / seen, center_sum / seen, correct / seen, seen, len(batches)

    def _numerical_error(self, run: int, epoch: int, batch: int, loss: float, center: float) -> NumericalError:
        last = "none (this is the first epoch)"
        if self.outputs.checkpoint.exists():
            meta = unpack_json(load_npz(self.outputs.checkpoint)["meta"])
            last = f"{self.outputs.checkpoint} (after epoch {meta['epoch']} of {self.runs[meta['run']][0]})"
        return NumericalError(
            f"{self.framework}: the loss became {loss if not math.isfinite(loss) else center} "
            f"({'cross-entropy' if not math.isfinite(loss) else 'center loss'}) at epoch {epoch + 1}, "
            f"batch {batch + 1} of {self.runs[run][0]}; training stopped. Last good checkpoint: {last}. "
            f"Lower lr (now {self.params.lr}) or center_loss.weight, then run again."
        )

    def _load_checkpoint(self) -> dict[str, Any] | None:
        path = self.outputs.checkpoint
        if not path.exists():
            return None
        arrays = load_npz(path)
        meta = unpack_json(arrays.pop("meta"))
        if meta["fingerprint"] != self.fingerprint:
            click.echo(f"{self.framework}: {path} belongs to other parameters or data; starting afresh")
            return None
        return {**meta, "arrays": arrays}

    def _log(self, live: Live, entry: dict[str, float]) -> None:
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            split, metric = key.split("_", 1)
            live.log_metric(f"{split}/{metric}", entry[key])
        if self.params.center_loss_weight > 0:
            live.log_metric("train/center_loss", entry["train_center_loss"])
        for key in ("lr", "epoch_seconds", "images_per_second"):
            live.log_metric(key, entry[key])
        live.next_step()


def fast_forward(scheduler: Any, steps: int) -> None:
    """Replay ``steps`` schedule steps: the schedule's position is a pure function of its step count,
    which restores both frameworks' schedulers exactly without serialising their internals."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # PyTorch warns when no optimiser step came first
        for _ in range(steps):
            scheduler.step()


def summarize(history: list[dict[str, float]], finished: list[dict[str, Any]], params: TrainParams) -> dict:
    """The final metrics ``dvc metrics show`` lists: best and final validation, time per epoch."""
    best = max(history, key=lambda entry: (entry["val_acc"], -entry["val_loss"]))
    last = history[-1]
    summary: dict[str, Any] = {
        "best_val_acc": best["val_acc"],
        "best_val_loss": best["val_loss"],
        "best_epoch": best["epoch"],
        "final_val_acc": last["val_acc"],
        "final_val_loss": last["val_loss"],
        "final_train_acc": last["train_acc"],
        "final_train_loss": last["train_loss"],
        "mean_epoch_seconds": float(np.mean([entry["epoch_seconds"] for entry in history])),
        "images_per_second": float(np.mean([entry["images_per_second"] for entry in history])),
        "epochs": params.epochs,
    }
    if params.validation == "kfold":
        accs = [run["final_val_acc"] for run in finished]
        summary["kfold"] = {run["name"]: run["final_val_acc"] for run in finished}
        summary["kfold"].update(mean_val_acc=float(np.mean(accs)), std_val_acc=float(np.std(accs)))
    return summary
