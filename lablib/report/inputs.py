"""Reading the run: everything the pipeline's stages wrote that the report shows, checked on the way in.

A missing or unreadable input raises :class:`ReportError`, naming the file and the stage that makes it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lablib.data.fashion_mnist import CLASS_NAMES, NUM_CLASSES
from lablib.experiments.config import load_experiments
from lablib.not_run import reason_not_run
from lablib.params import FRAMEWORKS, Params, load_params
from lablib.report.errors import ReportError
from lablib.report.series_inputs import (
    Report000,
    Report001,
    read_experiments,
    read_report000,
    read_report001,
    read_series_tables,
)

CLASS_INDEX = {name: i for i, name in enumerate(CLASS_NAMES)}
TSV = {
    "train_loss": "train/loss.tsv",
    "train_acc": "train/acc.tsv",
    "val_loss": "val/loss.tsv",
    "val_acc": "val/acc.tsv",
    "lr": "lr.tsv",
    "epoch_seconds": "epoch_seconds.tsv",
}


@dataclass(frozen=True)
class RunPaths:
    """Where the pipeline's stages wrote what the report reads, and where the reports' own figures are."""

    params: Path = Path("params.yaml")
    prepared: Path = Path("data/prepared")
    raw: Path = Path("data/raw")
    live: Path = Path("dvclive")
    evaluation: Path = Path("evaluation")
    experiments: Path = Path("reports/experiments")
    config: Path = Path("experiments.yaml")


@dataclass(frozen=True)
class Run:
    """Everything one run produced that the report shows. ``train``, ``history``, ``evaluation`` and
    ``confusion`` hold the frameworks that ran; ``not_run`` says why each other one did not (its training
    stage's record), ``cross`` is ``None`` when the compare stage did not run, and ``cross_not_run`` why.
    ``predicted`` holds each framework's class per test image, in the order of ``test_labels`` and
    ``test_pixels``; ``series`` the series' CSV tables by name, ``config`` experiments.yaml."""

    params: Params
    params_text: str
    train: dict[str, dict[str, Any]]
    machine: dict[str, dict[str, Any]]
    not_run: dict[str, str]
    history: dict[str, dict[str, np.ndarray]]
    evaluation: dict[str, dict[str, Any]]
    cross: dict[str, Any] | None
    cross_not_run: str | None
    confusion: dict[str, np.ndarray]
    predicted: dict[str, np.ndarray]
    test_labels: np.ndarray
    test_pixels: np.ndarray
    features: np.ndarray
    feature_labels: np.ndarray
    provenance: dict[str, Any]
    train_images: np.ndarray
    train_labels: np.ndarray
    sizes: dict[str, int]
    experiments: dict[str, str]
    series: dict[str, pd.DataFrame]
    config: Mapping[str, Any]
    report000: Report000
    report001: Report001 | None

    @property
    def frameworks(self) -> tuple[str, ...]:
        """The frameworks that trained and evaluated a model, in :data:`FRAMEWORKS`' order."""
        return tuple(self.train)

    @property
    def test_images(self) -> int:
        return self.evaluation[self.frameworks[0]]["test_images"]


def _read_json(path: Path, made_by: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportError(f"{path} not found: run the {made_by} stage first (dvc repro)") from None
    except json.JSONDecodeError as error:
        raise ReportError(f"{path} is not valid JSON ({error}); run the {made_by} stage again") from None


def _read_npy(path: Path, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None)
    except FileNotFoundError:
        raise ReportError(f"{path} not found: run the preprocess stage first (dvc repro)") from None


def read_history(live_dir: Path) -> dict[str, np.ndarray]:
    """Per-epoch metrics of one DVCLive log: ``epoch`` (from 1) and each key of :data:`TSV`."""
    history: dict[str, np.ndarray] = {}
    for key, name in TSV.items():
        path = live_dir / "plots" / "metrics" / name
        try:
            table = pd.read_csv(path, sep="\t")
        except FileNotFoundError:
            raise ReportError(f"{path} not found: run the training stages first (dvc repro)") from None
        history[key] = table[Path(name).stem].to_numpy(dtype=np.float64)
        history["epoch"] = table["step"].to_numpy() + 1
    return history


def read_predictions(path: Path, made_by: str) -> tuple[np.ndarray, np.ndarray]:
    """The class indices of each test image, true and predicted, from an ``actual,predicted`` CSV (test order)."""
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise ReportError(f"{path} not found: run the {made_by} stage first (dvc repro)") from None
    actual, predicted = (table[column].map(CLASS_INDEX) for column in ("actual", "predicted"))
    if actual.isna().any() or predicted.isna().any():
        raise ReportError(f"{path} names a class outside {', '.join(CLASS_NAMES)}; run the {made_by} stage again")
    return actual.to_numpy(dtype=np.int64), predicted.to_numpy(dtype=np.int64)


def confusion_matrix(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Counts of each (actual, predicted) pair of classes."""
    pairs = actual * NUM_CLASSES + predicted
    return np.bincount(pairs, minlength=NUM_CLASSES * NUM_CLASSES).reshape(NUM_CLASSES, NUM_CLASSES)


def _in_test_order(path: Path, made_by: str, labels: np.ndarray) -> np.ndarray:
    """The predicted classes of ``path``, checked to list the test images in their order."""
    actual, predicted = read_predictions(path, made_by)
    if not np.array_equal(actual, labels):
        raise ReportError(f"{path} does not list the test images in their order; run the {made_by} stage again")
    return predicted


def read_features(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The sampled test images' features and labels the NumPy evaluation saved."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return archive["features"], archive["labels"]
    except FileNotFoundError:
        raise ReportError(f"{path} not found: run the evaluate_numpy stage first (dvc repro)") from None


def load_run(paths: RunPaths) -> Run:
    """Read every input of the report; a missing one raises :class:`ReportError` naming its stage. A
    framework whose training stage recorded that it did not run is read no further."""
    features, feature_labels = read_features(paths.evaluation / "numpy" / "features.npz")
    params = load_params(paths.params)
    config = load_experiments(paths.config)
    trained = {fw: _read_json(paths.live / fw / "metrics.json", f"train_{fw}") for fw in FRAMEWORKS}
    not_run = {fw: reason for fw, metrics in trained.items() if (reason := reason_not_run(metrics)) is not None}
    ran = [fw for fw in FRAMEWORKS if fw not in not_run]
    cross = _read_json(paths.evaluation / "cross.json", "compare")
    cross_not_run = reason_not_run(cross)
    labels = _read_npy(paths.prepared / "test_labels.npy")
    predicted = {fw: _in_test_order(paths.evaluation / fw / "confusion.csv", f"evaluate_{fw}", labels) for fw in ran}
    return Run(
        params=params,
        params_text=paths.params.read_text(),
        train={fw: trained[fw] for fw in ran},
        machine={fw: _read_json(paths.live / fw / "machine.json", f"train_{fw}") for fw in ran},
        not_run=not_run,
        history={fw: read_history(paths.live / fw) for fw in ran},
        evaluation={fw: _read_json(paths.evaluation / fw / "metrics.json", f"evaluate_{fw}") for fw in ran},
        cross=None if cross_not_run else cross,
        cross_not_run=cross_not_run,
        confusion={fw: confusion_matrix(labels, predicted[fw]) for fw in ran},
        predicted=predicted,
        test_labels=labels,
        test_pixels=_read_npy(paths.prepared / "test_images.npy", mmap=True),
        features=features,
        feature_labels=feature_labels,
        provenance=_read_json(paths.raw / "provenance.json", "fetch"),
        train_images=_read_npy(paths.prepared / "train_images.npy", mmap=True),
        train_labels=_read_npy(paths.prepared / "train_labels.npy"),
        sizes={split: len(_read_npy(paths.prepared / f"{split}_labels.npy")) for split in ("train", "val")},
        experiments=read_experiments(paths.experiments),
        series=read_series_tables(paths.experiments),
        config=config,
        report000=read_report000(config, params, paths.experiments),
        report001=read_report001(config, paths.experiments),
    )
