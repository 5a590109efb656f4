"""Evaluation on the test images: accuracy, loss, the confusion matrix, and the two frameworks compared.

Both frameworks run in eval mode (BatchNorm's running statistics) on the CPU, in batches. The
cross-evaluation loads each trained weight file into both the NumPy and the PyTorch model: the two
implementations of one network must predict the same class for (almost) every image.
PyTorch is imported only inside the functions that need it, so the report can use the rest.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lablib.data.fashion_mnist import CLASS_NAMES, NUM_CLASSES
from lablib.errors import LabError
from lablib.models import Classifier, build_numpy
from lablib.models.specs import EVAL_BATCH, Spec
from lablib.train.checkpoint import load_npz

MIN_AGREEMENT = 0.999


class ModelFileError(LabError):
    """A model file that is missing, unreadable or not of the model the parameters name."""


class AgreementError(LabError):
    """The NumPy and PyTorch models disagree on the same weights."""


@dataclass(frozen=True)
class Evaluation:
    """What the evaluate stage writes: metrics, each framework's predictions, and sampled features."""

    metrics: dict[str, Any]
    predictions: dict[str, np.ndarray]
    features: np.ndarray
    feature_labels: np.ndarray
    sample: np.ndarray


def load_state(path: Path, spec: Spec, model_name: str) -> dict[str, np.ndarray]:
    """The state dict in ``path``, checked against the model ``spec`` describes."""
    try:
        state = load_npz(path)
    except FileNotFoundError:
        raise ModelFileError(f"{path} not found: train the model first (dvc repro)") from None
    except (OSError, ValueError) as error:
        raise ModelFileError(f"{path} is not a readable model file ({error}); train again (dvc repro)") from None
    try:
        build_numpy(spec, seed=0).load_state_dict(state)
    except (KeyError, ValueError) as error:
        raise ModelFileError(
            f"{path} does not hold the model {model_name} that params.yaml names: {error}. "
            f"Train again with these parameters (dvc repro)."
        ) from None
    return state


def load_test(prepared: Path) -> tuple[np.ndarray, np.ndarray]:
    """The preprocessed test images and labels."""
    try:
        return np.load(prepared / "test_images.npy"), np.load(prepared / "test_labels.npy")
    except FileNotFoundError as error:
        raise LabError(f"{error.filename} not found: run the preprocess stage first (dvc repro)") from None


def numpy_model(spec: Spec, state: Mapping[str, np.ndarray]) -> Classifier:
    model = build_numpy(spec, seed=0)
    model.load_state_dict(state)
    return model.eval()


def torch_model(spec: Spec, state: Mapping[str, np.ndarray]) -> Any:
    from lablib.models.torch_model import build_torch, load_numpy_state

    model = build_torch(spec)
    load_numpy_state(model, state)
    return model.eval()


def batched(fn: Callable[[np.ndarray], np.ndarray], images: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """``fn`` applied to ``batch_size`` images at a time, the results concatenated."""
    starts = range(0, len(images), batch_size)
    return np.concatenate([fn(np.ascontiguousarray(images[i : i + batch_size])) for i in starts])


def torch_logits(model: Any, images: np.ndarray) -> np.ndarray:
    """Logits of the PyTorch ``model`` in eval mode, on the CPU."""
    import torch

    model.eval()
    with torch.no_grad():
        return batched(lambda x: model(torch.from_numpy(x)).numpy(), images)


def numpy_features(model: Classifier, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The output of ``model.features`` (the 256-wide embedding of lab2025_cnn) and the logits, in
    eval mode, from one pass."""
    model.eval()
    features = batched(model.features, images)
    return features, batched(model.classifier, features)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean ``-log softmax(logits)[label]``, computed in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Counts, ``matrix[true, predicted]``."""
    cells = np.bincount(labels * num_classes + predictions, minlength=num_classes**2)
    return cells.reshape(num_classes, num_classes)


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """Share of each true class predicted correctly (the diagonal over the row sums)."""
    return np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)


def most_confused(
    matrix: np.ndarray, k: int = 5, class_names: Sequence[str] = CLASS_NAMES
) -> list[tuple[str, str, int]]:
    """The ``k`` largest off-diagonal cells as ``(true class, predicted class, count)``, largest first."""
    off = matrix.astype(np.int64).copy()
    np.fill_diagonal(off, -1)
    order = np.argsort(-off, axis=None, kind="stable")[:k]
    cells = [np.unravel_index(index, off.shape) for index in order]
    return [(class_names[t], class_names[p], int(off[t, p])) for t, p in cells if off[t, p] > 0]


def classification_metrics(logits: np.ndarray, labels: np.ndarray, k: int = 5) -> dict[str, Any]:
    """Test accuracy and loss, per-class accuracy by class name, and the ``k`` most confused pairs
    (keyed ``"true -> predicted"``, so ``dvc metrics show`` lists them)."""
    matrix = confusion_matrix(labels, logits.argmax(axis=1))
    return {
        "test_acc": float(np.trace(matrix) / len(labels)),
        "test_loss": cross_entropy(logits, labels),
        "per_class_acc": dict(zip(CLASS_NAMES, per_class_accuracy(matrix).tolist(), strict=True)),
        "most_confused": {f"{t} -> {p}": count for t, p, count in most_confused(matrix, k)},
    }


def cross_evaluate(
    spec: Spec, states: Mapping[str, Mapping[str, np.ndarray]], images: np.ndarray, labels: np.ndarray
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every weight file in ``states`` (``{"numpy": ..., "torch": ...}``) run by both frameworks.

    Returns the metrics block (per weight file: each framework's accuracy, the share of images on which
    the two frameworks predict the same class, the largest logit difference), the logits of each
    framework on its own weights, and the NumPy model's features on each weight file, each keyed by
    weight file.
    """
    block: dict[str, Any] = {}
    own: dict[str, np.ndarray] = {}
    features: dict[str, np.ndarray] = {}
    for weights, state in states.items():
        features[weights], numpy_z = numpy_features(numpy_model(spec, state), images)
        logits = {"numpy": numpy_z, "torch": torch_logits(torch_model(spec, state), images)}
        predictions = {framework: z.argmax(axis=1) for framework, z in logits.items()}
        block[f"{weights}_weights"] = {
            "numpy_acc": float((predictions["numpy"] == labels).mean()),
            "torch_acc": float((predictions["torch"] == labels).mean()),
            "agreement": float((predictions["numpy"] == predictions["torch"]).mean()),
            "max_abs_logit_diff": float(np.abs(logits["numpy"] - logits["torch"]).max()),
        }
        own[weights] = logits[weights]
    block["min_agreement"] = min(entry["agreement"] for entry in block.values())
    if {"numpy", "torch"} <= own.keys():
        block["trained_models_agreement"] = float((own["numpy"].argmax(1) == own["torch"].argmax(1)).mean())
    return block, own, features


def check_agreement(cross: Mapping[str, Any], minimum: float = MIN_AGREEMENT) -> None:
    """Raise :class:`AgreementError` if the frameworks agree on fewer than ``minimum`` of the images."""
    if cross["min_agreement"] < minimum:
        detail = "; ".join(
            f"{key}: {100 * entry['agreement']:.3f} % agreement, "
            f"largest logit difference {entry['max_abs_logit_diff']:.3g}"
            for key, entry in cross.items()
            if isinstance(entry, Mapping)
        )
        raise AgreementError(
            f"the NumPy and PyTorch models disagree on the same weights ({detail}); at least "
            f"{100 * minimum:g} % is required: the NumPy core and its PyTorch twin have drifted apart."
        )


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
    spec: Spec,
    states: Mapping[str, Mapping[str, np.ndarray]],
    images: np.ndarray,
    labels: np.ndarray,
    feature_samples: int,
    rng: np.random.Generator,
) -> Evaluation:
    """Test metrics of each framework's model on its own weights, the cross-evaluation (checked with
    :func:`check_agreement`), and the NumPy model's features of ``feature_samples`` stratified test
    images."""
    cross, logits, features = cross_evaluate(spec, states, images, labels)
    check_agreement(cross)
    metrics: dict[str, Any] = {fw: classification_metrics(z, labels) for fw, z in logits.items()}
    metrics["cross"] = cross
    metrics["test_images"] = len(labels)
    sample = stratified_sample(labels, feature_samples, rng)
    predictions = {fw: z.argmax(axis=1) for fw, z in logits.items()}
    return Evaluation(metrics, predictions, features["numpy"][sample], labels[sample], sample)


def write_predictions(path: Path, labels: np.ndarray, predictions: np.ndarray) -> None:
    """One ``actual,predicted`` row of class names per image: the input of DVC's confusion template."""
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["actual", "predicted"])
        writer.writerows((CLASS_NAMES[t], CLASS_NAMES[p]) for t, p in zip(labels, predictions, strict=True))
