"""Evaluation of one framework's model on the test images: accuracy, loss, the confusion matrix, and
the features of a stratified sample for the t-SNE map.

Everything here is framework-neutral: the forward pass is a ``predict`` function, that of
``lablib.models.numpy_model`` or ``lablib.models.torch_model`` (both in eval mode, BatchNorm's running
statistics), which the stage picks, so the NumPy evaluation never imports PyTorch.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lablib.atomic import staged_file
from lablib.data.fashion_mnist import CLASS_NAMES, NUM_CLASSES
from lablib.errors import LabError
from lablib.models.specs import Spec
from lablib.nn.functional import log_softmax
from lablib.not_run import not_run, not_run_arrays
from lablib.train.checkpoint import ArchiveError, load_npz

# ``predict(spec, state, images) -> (features, logits)``: one framework's forward pass.
Predict = Callable[[Spec, Mapping[str, np.ndarray], np.ndarray], tuple[np.ndarray, np.ndarray]]


class ModelFileError(LabError):
    """A model file that is missing, unreadable or not of the model the parameters name."""


@dataclass(frozen=True)
class Evaluation:
    """What the evaluate stage writes: the metrics, the predicted class of every test image, and the
    features of the stratified sample (``sample``: their indices among the test images)."""

    metrics: dict[str, Any]
    predictions: np.ndarray
    features: np.ndarray
    feature_labels: np.ndarray
    sample: np.ndarray


def load_state(path: Path) -> dict[str, np.ndarray]:
    """The state dict saved in ``path``."""
    try:
        return load_npz(path)
    except FileNotFoundError:
        raise ModelFileError(f"{path} not found: train the model first (dvc repro)") from None
    except ArchiveError as error:
        raise ModelFileError(f"{error}. It is not a model file; train again (dvc repro)") from None
    except OSError as error:
        raise ModelFileError(f"{path} cannot be read ({error.strerror}); train again (dvc repro)") from None


def run_model(
    predict: Predict, spec: Spec, state: Mapping[str, np.ndarray], images: np.ndarray, path: Path, model_name: str
) -> tuple[np.ndarray, np.ndarray]:
    """``predict(spec, state, images)``; a ``state`` (loaded from ``path``) that does not fit the model
    ``model_name`` raises :class:`ModelFileError` naming both."""
    try:
        return predict(spec, state, images)
    except (KeyError, ValueError, RuntimeError) as error:
        raise ModelFileError(
            f"{path} does not hold the model {model_name} that params.yaml names: {error}. "
            f"Train again with these parameters (dvc repro)."
        ) from None


def load_test(prepared: Path, labelled: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The preprocessed test images and labels; ``labelled`` refuses labels that are not known (the
    course's test file without the official files to label it)."""
    try:
        images, labels = np.load(prepared / "test_images.npy"), np.load(prepared / "test_labels.npy")
    except FileNotFoundError as error:
        raise LabError(f"{error.filename} not found: run the preprocess stage first (dvc repro)") from None
    if labelled and not labels_known(labels):
        raise LabError(
            "the test labels are unknown: the course's test file has none, and fetch found no official test "
            "files to take them from. The leaderboard file needs none: dvc exp run predict"
        )
    return images, labels


def labels_known(labels: np.ndarray) -> bool:
    """Whether every test label is a class (the course's test file alone leaves them -1)."""
    return bool(len(labels)) and bool((labels >= 0).all())


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean ``-log softmax(logits)[label]``, computed in float64."""
    log_probs = log_softmax(logits.astype(np.float64))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Counts, ``matrix[true, predicted]``."""
    cells = np.bincount(labels * num_classes + predictions, minlength=num_classes**2)
    return cells.reshape(num_classes, num_classes)


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """Share of each true class predicted correctly (the diagonal over the row sums)."""
    return np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Test accuracy and loss, per-class accuracy by class name, and the number of test images.

    Only numbers whose keys are the same in every run, so ``dvc metrics diff`` pairs each with its
    counterpart; the most confused pairs, whose keys change from run to run, are the report's.
    """
    matrix = confusion_matrix(labels, logits.argmax(axis=1))
    return {
        "test_acc": float(np.trace(matrix) / len(labels)),
        "test_loss": cross_entropy(logits, labels),
        "per_class_acc": dict(zip(CLASS_NAMES, per_class_accuracy(matrix).tolist(), strict=True)),
        "test_images": len(labels),
    }


def stratified_sample(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``n`` images, as evenly spread over the classes as the data allows."""
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    chosen: list[np.ndarray] = []
    remaining = min(n, len(labels))
    while remaining > 0:
        share = max(remaining // sum(len(pool) > 0 for pool in pools), 1)
        for i, pool in enumerate(pools):
            take = min(share, len(pool), remaining)
            chosen.append(pool[:take])
            pools[i] = pool[take:]
            remaining -= take
    return np.sort(np.concatenate(chosen))


def evaluate(
    features: np.ndarray, logits: np.ndarray, labels: np.ndarray, feature_samples: int, rng: np.random.Generator
) -> Evaluation:
    """The test metrics of a model's ``logits``, its predictions, and its ``features`` of
    ``feature_samples`` stratified test images (drawn with ``rng``)."""
    sample = stratified_sample(labels, feature_samples, rng)
    return Evaluation(
        classification_metrics(logits, labels), logits.argmax(axis=1), features[sample], labels[sample], sample
    )


def write_evaluation(out: Path, evaluation: Evaluation, labels: np.ndarray) -> None:
    """``out/metrics.json``, ``out/confusion.csv`` and ``out/features.npz``, all three or none."""
    with ExitStack() as stack:
        metrics_path = stack.enter_context(staged_file(out / "metrics.json"))
        metrics_path.write_text(json.dumps(evaluation.metrics, indent=2) + "\n")
        write_predictions(stack.enter_context(staged_file(out / "confusion.csv")), labels, evaluation.predictions)
        with open(stack.enter_context(staged_file(out / "features.npz")), "wb") as file:
            np.savez(file, features=evaluation.features, labels=evaluation.feature_labels, index=evaluation.sample)


def write_not_run_evaluation(out: Path, reason: str) -> None:
    """The outputs of an evaluation that did not run: the not-run record as ``out/metrics.json`` and as
    ``out/features.npz``, and ``out/confusion.csv`` of no image (its header alone); all three or none."""
    nothing = np.empty(0, dtype=np.int64)
    with ExitStack() as stack:
        metrics_path = stack.enter_context(staged_file(out / "metrics.json"))
        metrics_path.write_text(json.dumps(not_run(reason), indent=2) + "\n")
        write_predictions(stack.enter_context(staged_file(out / "confusion.csv")), nothing, nothing)
        with open(stack.enter_context(staged_file(out / "features.npz")), "wb") as file:
            np.savez(file, **not_run_arrays(reason))


def write_predictions(path: Path, labels: np.ndarray, predictions: np.ndarray) -> None:
    """One ``actual,predicted`` row of class names per image: the input of DVC's confusion template."""
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["actual", "predicted"])
        writer.writerows((CLASS_NAMES[t], CLASS_NAMES[p]) for t, p in zip(labels, predictions, strict=True))
