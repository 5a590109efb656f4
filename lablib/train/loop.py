"""The training loop both frameworks share: data, epochs, validation, checkpoints and logging.

Everything random (the order of batches, augmentation) is drawn here from one NumPy generator, so
the NumPy and the PyTorch run see the same batches; a backend only does the arithmetic. The next
batches are assembled on a background thread while the current step runs (``prefetch.py``), with
the same draws in the same order as a plain loop. After every epoch the whole state (weights,
optimiser, schedule, generator, history) goes to one checkpoint, written atomically, so a run
killed at any moment resumes from its last finished epoch and ends with exactly the weights and
metrics of an uninterrupted run.
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
from lablib.models.spec_file import source_digest
from lablib.params import ParamsError, TrainParams
from lablib.rng import Stream, generator
from lablib.train.checkpoint import ArchiveError, save_npz
from lablib.train.prefetch import Prefetcher
from lablib.train.setup import make_scheduler
from lablib.train.state import TrainingState

PREFETCH = 2  # batches assembled ahead of the training step
EPOCH_SPLIT = ("train_seconds", "data_seconds", "val_seconds")  # where an epoch's seconds go


class NumericalError(LabError):
    """The loss became NaN or infinite."""


class CheckpointError(LabError):
    """A checkpoint in the way that cannot be resumed: damaged, or not one this project wrote."""


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


@dataclass
class EpochTotals:
    """Running sums over an epoch's batches; ``loss``, ``center_loss`` and ``acc`` are the means so far."""

    batches: int
    seconds: float = 0.0  # the whole pass
    data_seconds: float = 0.0  # of which the steps waited for their batches
    loss_sum: float = 0.0
    center_sum: float = 0.0
    correct: int = 0
    seen: int = 0

    def add(self, loss: float, center_loss: float, correct: int, n: int) -> None:
        self.loss_sum += loss * n
        self.center_sum += center_loss * n
        self.correct += correct
        self.seen += n

    @property
    def loss(self) -> float:
        return self.loss_sum / self.seen

    @property
    def center_loss(self) -> float:
        return self.center_sum / self.seen

    @property
    def acc(self) -> float:
        return self.correct / self.seen


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
        prefetch: int = PREFETCH,
    ) -> None:
        self.params = params
        self.pool = pool
        self.make_backend = make_backend
        self.initial_state = initial_state
        self.outputs = outputs
        self.framework = framework
        self.prefetch = prefetch
        self.runs = validation_runs(params, pool)
        check_fits(params, self.runs)
        identity = [framework, asdict(params), pool.labels.tolist(), pool.folds.tolist()]
        if digest := source_digest(params.model):  # a model of one's own: its files as they are now
            identity.append(digest)
        self.fingerprint = hashlib.sha256(json.dumps(identity, default=str).encode()).hexdigest()

    def run(self) -> dict[str, Any]:
        try:
            return self._run()
        except BaseException:
            shutil.rmtree(self.outputs.live_dir, ignore_errors=True)
            raise

    def _run(self) -> dict[str, Any]:
        state = self._load_checkpoint()
        if state is not None:
            click.echo(
                f"{self.framework}: resuming {self.runs[state.run][0]} at epoch {state.epoch + 1} "
                f"from {self.outputs.checkpoint}"
            )
        else:
            state = TrainingState(self.fingerprint)
        live = Live(dir=str(self.outputs.live_dir), save_dvc_exp=False, dvcyaml=None)
        for entry in state.history:
            self._log(live, entry)
        while state.run < len(self.runs):
            model_state = self._fit(state, live)
            state.end_run(self.runs[state.run][0], model_state)
        save_npz(self.outputs.model, state.best)
        summary = summarize(state.history, state.finished, self.params)
        live.summary = summary
        live.make_summary()
        live.end()
        self.outputs.checkpoint.unlink(missing_ok=True)
        return summary

    def _fit(self, state: TrainingState, live: Live) -> dict[str, np.ndarray]:
        """Train run ``state.run`` from where ``state`` stands to its last epoch, checkpointing after
        every epoch; returns the run's final model state."""
        params = self.params
        run_index = state.run
        name, split = self.runs[run_index]
        backend = self.make_backend(params, self.initial_state)
        steps = max(batches_per_epoch(self.pool.labels[split(epoch)[0]], params) for epoch in range(params.epochs))
        scheduler, per_batch = make_scheduler(backend.lr_scheduler, backend.optimizer, params, steps)
        rng = generator(params.seed, Stream.TRAINING, run_index)
        if state.resuming:
            if scheduler is not None:
                fast_forward(scheduler, state.schedule_steps)
            backend.load_state_dict(state.backend)
            rng.bit_generator.state = state.rng
        for epoch in range(state.epoch, params.epochs):
            train_idx, val_idx = split(epoch)
            lr = backend.optimizer.param_groups[0]["lr"]
            started = time.perf_counter()
            totals = self._train_epoch(backend, scheduler if per_batch else None, train_idx, rng, name, epoch)
            if scheduler is not None and not per_batch:
                scheduler.step()
            validation_started = time.perf_counter()
            val_loss, val_acc = backend.evaluate(self.pool.images[val_idx], self.pool.labels[val_idx])
            ended = time.perf_counter()
            entry = {
                "run": run_index,
                "epoch": epoch + 1,
                "lr": lr,
                "train_loss": totals.loss,
                "train_center_loss": totals.center_loss,
                "train_acc": totals.acc,
                "val_loss": val_loss,
                "val_acc": val_acc,
                "epoch_seconds": ended - started,
                "train_seconds": totals.seconds - totals.data_seconds,
                "data_seconds": totals.data_seconds,
                "val_seconds": ended - validation_started,
                "images_per_second": totals.seen / totals.seconds,
            }
            schedule_steps = state.schedule_steps + (totals.batches if per_batch else 1)
            state.end_epoch(entry, backend.state_dict(), rng.bit_generator.state, schedule_steps)
            self._log(live, entry)
            self._echo(name, entry)
            state.save(self.outputs.checkpoint)
        return backend.model_state()

    def _train_epoch(
        self, backend: Backend, scheduler: Any, train_idx: np.ndarray, rng: np.random.Generator, name: str, epoch: int
    ) -> EpochTotals:
        """One pass over ``train_idx``, stepping ``scheduler`` (when given) after every batch.

        Each batch is assembled ``self.prefetch`` batches ahead, on a thread, while the step runs;
        only that thread draws from ``rng`` during the pass, in the order of a plain loop.
        """
        params = self.params
        started = time.perf_counter()
        labels = self.pool.labels[train_idx]
        if params.sampling == "balanced":
            batches = balanced_batches(labels, params.batch_size, rng)
        else:
            batches = shuffled_batches(len(train_idx), params.batch_size, rng if params.sampling == "shuffle" else None)
        totals = EpochTotals(batches=len(batches), data_seconds=time.perf_counter() - started)
        assembled = (self._batch(train_idx[positions], rng) for positions in batches)
        with Prefetcher(assembled, self.prefetch) as stream:
            progress = tqdm(
                stream,
                total=len(batches),
                desc=f"{self.framework} epoch {epoch + 1}/{params.epochs}",
                leave=False,
                mininterval=1,
                disable=None,
            )
            for batch_index, (x, y) in enumerate(progress):
                loss, center_loss, correct = backend.train_step(x, y)
                if not (math.isfinite(loss) and math.isfinite(center_loss)):
                    raise self._numerical_error(name, epoch, batch_index, loss, center_loss)
                if scheduler is not None:
                    scheduler.step()
                totals.add(loss, center_loss, correct, len(y))
                progress.set_postfix(loss=f"{totals.loss:.4f}", acc=f"{100 * totals.acc:.2f}", refresh=False)
        totals.data_seconds += stream.waited
        totals.seconds = time.perf_counter() - started
        return totals

    def _batch(self, index: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The pool's images at ``index`` (augmented when switched on) and their labels."""
        x = self.pool.images[index]
        if self.params.augment.enabled:
            x = augment_batch(x, rng, self.params.augment)
        return x, self.pool.labels[index]

    def _echo(self, name: str, entry: dict[str, float]) -> None:
        """The epoch's line, in the format of the reports' screenshots."""
        click.echo(
            f"{self.framework:>5} {name}  Epoch: {entry['epoch']:3d}  Train Loss: {entry['train_loss']:.4f}  "
            f"Train Acc: {100 * entry['train_acc']:.4f}  Val Loss: {entry['val_loss']:.4f}  "
            f"Val Acc: {100 * entry['val_acc']:.4f}  Epoch time: {entry['epoch_seconds']:.2f} sec  "
            f"(steps {entry['train_seconds']:.2f}, data {entry['data_seconds']:.2f}, "
            f"validation {entry['val_seconds']:.2f})"
        )

    def _numerical_error(self, name: str, epoch: int, batch: int, loss: float, center: float) -> NumericalError:
        last = "none (this is the first epoch)"
        if self.outputs.checkpoint.exists():
            saved = TrainingState.load(self.outputs.checkpoint)
            last = f"{self.outputs.checkpoint} (after epoch {saved.epoch} of {self.runs[saved.run][0]})"
        return NumericalError(
            f"{self.framework}: the loss became {loss if not math.isfinite(loss) else center} "
            f"({'cross-entropy' if not math.isfinite(loss) else 'center loss'}) at epoch {epoch + 1}, "
            f"batch {batch + 1} of {name}; training stopped. Last good checkpoint: {last}. "
            f"Lower lr (now {self.params.lr}) or center_loss.weight, then run again."
        )

    def _load_checkpoint(self) -> TrainingState | None:
        """The state of an interrupted run with these parameters and data, if one was checkpointed."""
        path = self.outputs.checkpoint
        if not path.exists():
            return None
        try:
            state = TrainingState.load(path)
        except (ArchiveError, KeyError, TypeError, ValueError) as error:
            why = error if isinstance(error, ArchiveError) else f"{path} holds no training state this project wrote"
            raise CheckpointError(
                f"{why}. It cannot be resumed: delete it to start this training over (rm {path}), "
                "then run the stage again."
            ) from None
        if state.fingerprint != self.fingerprint:
            click.echo(f"{self.framework}: {path} belongs to other parameters or data; starting afresh")
            return None
        return state

    def _log(self, live: Live, entry: dict[str, float]) -> None:
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            split, metric = key.split("_", 1)
            live.log_metric(f"{split}/{metric}", entry[key])
        if self.params.center_loss_weight > 0:
            live.log_metric("train/center_loss", entry["train_center_loss"])
        for key in ("lr", "epoch_seconds", *EPOCH_SPLIT, "images_per_second"):
            if key in entry:  # a checkpoint written before the split was logged lacks it
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
