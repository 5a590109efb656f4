"""Evaluation: confusion matrices, per-class accuracy, the NumPy/PyTorch cross-evaluation, and the stages
evaluate_numpy, evaluate_torch and compare."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from dvclive import Live

from lablib import machine, nn
from lablib.compare import PREDICT as compare_predict
from lablib.compare import AgreementError, check_agreement, cross_metrics
from lablib.data.fashion_mnist import CLASS_NAMES, FILES
from lablib.evaluate import (
    classification_metrics,
    confusion_matrix,
    cross_entropy,
    per_class_accuracy,
    stratified_sample,
)
from lablib.models import numpy_inference, torch_model
from lablib.models.numpy_model import build_numpy
from lablib.models.specs import get_spec
from lablib.train.checkpoint import save_npz
from stages.compare import main as compare_main
from stages.evaluate import main as evaluate_main

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 3
N_TEST = 150
FEATURE_SAMPLES = 100
# The fake training logs: what the report must show.
FAKE_TRAIN = {
    "numpy": {"best_val_acc": 0.8123, "best_epoch": 2, "final_val_acc": 0.8051, "mean_epoch_seconds": 41.7},
    "torch": {"best_val_acc": 0.8345, "best_epoch": 3, "final_val_acc": 0.8345, "mean_epoch_seconds": 3.21},
}


def random_state(model: str, seed: int) -> dict[str, np.ndarray]:
    """Fresh weights whose BatchNorm statistics come from one batch of fake images, so that in eval mode
    the activations are normalised and the predictions vary from image to image."""
    rng = np.random.default_rng(seed)
    net = build_numpy(get_spec(model), rng=rng)
    for layer in net.modules():
        if isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d):
            layer.momentum = 1.0
    net.train()
    net(fake_images(rng.integers(0, 10, 64), rng))
    return {key: np.array(value, copy=True) for key, value in net.state_dict().items()}


def fake_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Noise plus a bright band whose row depends on the class, in the preprocessed [-0.5, 0.5] range."""
    images = rng.uniform(-0.5, 0.0, (len(labels), 1, 28, 28)).astype(np.float32)
    for i, label in enumerate(labels):
        images[i, 0, 2 + 2 * label : 5 + 2 * label, 4:24] = 0.5
    return images


def write_live(live_dir: Path, summary: dict, rng: np.random.Generator) -> None:
    """DVCLive logs as the training loop writes them, for EPOCHS epochs."""
    live = Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=None)
    for epoch in range(EPOCHS):
        for split in ("train", "val"):
            live.log_metric(f"{split}/loss", float(2.0 - 0.4 * epoch + rng.uniform(0, 0.1)))
            live.log_metric(f"{split}/acc", float(0.6 + 0.08 * epoch + rng.uniform(0, 0.02)))
        live.log_metric("lr", [0.001, 0.005, 0.0004][epoch])
        live.log_metric("epoch_seconds", float(summary["mean_epoch_seconds"]))
        live.log_metric("images_per_second", 1000.0)
        live.next_step()
    live.summary = {
        "best_val_loss": 1.3,
        "final_val_loss": 1.35,
        "final_train_acc": 0.79,
        "final_train_loss": 1.2,
        "images_per_second": 1234.5,
        "epochs": EPOCHS,
        **summary,
    }
    live.make_summary()
    live.end()
    engine = {"torch_version": "2.13.0", "torch_device": "cpu", "torch_threads": 2}
    own = engine if live_dir.name == "torch" else {}
    (live_dir / "machine.json").write_text(json.dumps({**machine.describe(), **own}))


def make_fake_run(root: Path, model: str = "lab2025_cnn") -> Path:
    """A repository-shaped folder holding what the stages before evaluate would have written."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(model=model, epochs=EPOCHS)
    params["evaluate"]["feature_samples"] = FEATURE_SAMPLES
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    save_npz(root / "models/numpy.npz", random_state(model, 1))
    save_npz(root / "models/torch.npz", random_state(model, 2))
    prepared = root / "data/prepared"
    prepared.mkdir(parents=True)
    for split, per_class in (("train", 10), ("val", 5), ("test", N_TEST // 10)):
        labels = rng.permutation(np.repeat(np.arange(10), per_class)).astype(np.int64)
        np.save(prepared / f"{split}_labels.npy", labels)
        np.save(prepared / f"{split}_images.npy", fake_images(labels, rng))
    provenance = {
        "source": "debian",
        "location": "/usr/share/datasets/fashion-mnist",
        "sha256": {name: entry.sha256 for name, entry in FILES.items()},
    }
    (root / "data/raw").mkdir(parents=True)
    (root / "data/raw/provenance.json").write_text(json.dumps(provenance))
    for framework, summary in FAKE_TRAIN.items():
        write_live(root / "dvclive" / framework, summary, rng)
    return root


def evaluate_stage(root: Path, framework: str, *extra: str):
    args = [framework, "--params", str(root / "params.yaml"), "--prepared", str(root / "data/prepared")]
    args += ["--models", str(root / "models"), "--out", str(root / "evaluation"), *extra]
    return CliRunner().invoke(evaluate_main, args)


def compare_stage(root: Path, *extra: str):
    args = ["--params", str(root / "params.yaml"), "--prepared", str(root / "data/prepared")]
    args += ["--models", str(root / "models"), "--out", str(root / "evaluation/cross.json"), *extra]
    return CliRunner().invoke(compare_main, args)


def run_evaluate(root: Path):
    """The stages after training: evaluate_numpy, evaluate_torch and compare; the first failure, or the last result."""
    for result in (evaluate_stage(root, "numpy"), evaluate_stage(root, "torch"), compare_stage(root)):
        if result.exit_code != 0:
            return result
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = make_fake_run(tmp_path_factory.mktemp("fake") / "repo")
    result = run_evaluate(root)
    assert result.exit_code == 0, result.output
    return root


def test_confusion_matrix_counts_each_pair_once():
    rng = np.random.default_rng(0)
    labels, predictions = rng.integers(0, 10, 500), rng.integers(0, 10, 500)
    matrix = confusion_matrix(labels, predictions)
    expected = np.zeros((10, 10), dtype=np.int64)
    for t, p in zip(labels, predictions, strict=True):
        expected[t, p] += 1
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.sum() == 500
    np.testing.assert_allclose(per_class_accuracy(matrix), [np.mean(predictions[labels == c] == c) for c in range(10)])


def test_classification_metrics_agree_with_the_matrix_and_torch():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(300, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 300)
    metrics = classification_metrics(logits, labels)
    matrix = confusion_matrix(labels, logits.argmax(1))
    assert metrics["test_acc"] == pytest.approx(np.trace(matrix) / 300)
    assert metrics["test_images"] == 300
    assert list(metrics["per_class_acc"]) == list(CLASS_NAMES)
    for c, name in enumerate(CLASS_NAMES):
        assert metrics["per_class_acc"][name] == pytest.approx(matrix[c, c] / matrix[c].sum())
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(logits).double(), torch.from_numpy(labels))
    assert cross_entropy(logits, labels) == pytest.approx(float(expected), rel=1e-12)


def test_stratified_sample_is_even_seeded_and_bounded():
    labels = np.repeat(np.arange(10), [50] * 9 + [3])
    sample = stratified_sample(labels, 100, np.random.default_rng(0))
    assert len(sample) == len(np.unique(sample)) == 100
    counts = np.bincount(labels[sample], minlength=10)
    assert counts[9] == 3 and set(counts[:9]) <= {10, 11}
    np.testing.assert_array_equal(sample, stratified_sample(labels, 100, np.random.default_rng(0)))
    assert len(stratified_sample(labels, 10_000, np.random.default_rng(0))) == len(labels)


@pytest.mark.parametrize("model", ["lab2025_cnn", "lab2023_cnn"])
def test_numpy_and_torch_predict_alike_on_the_same_weights(model):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 10, 100)
    images = fake_images(labels, rng)
    spec = get_spec(model)
    states = {"numpy": random_state(model, 3), "torch": random_state(model, 4)}
    logits = {}
    for weights, state in states.items():
        (numpy_features, numpy_logits), (torch_features, torch_logits) = (
            predict(spec, state, images) for predict in (numpy_inference.predict, torch_model.predict)
        )
        np.testing.assert_allclose(numpy_features, torch_features, atol=1e-4)
        logits[weights] = {"numpy": numpy_logits, "torch": torch_logits}
        assert len(np.unique(numpy_logits.argmax(1))) >= 3, "predictions too uniform to test agreement"
    cross = cross_metrics(logits, labels)
    for weights in ("numpy", "torch"):
        entry = cross[f"{weights}_weights"]
        assert entry["agreement"] >= 0.999
        assert entry["max_abs_logit_diff"] < 1e-3
        assert entry["numpy_acc"] == pytest.approx(np.mean(logits[weights]["numpy"].argmax(1) == labels))
    assert cross["min_agreement"] >= 0.999
    own = logits["numpy"]["numpy"].argmax(1) == logits["torch"]["torch"].argmax(1)
    assert cross["trained_models_agreement"] == pytest.approx(own.mean())
    check_agreement(cross)


def test_check_agreement_refuses_frameworks_that_drifted_apart():
    cross = {
        "numpy_weights": {"agreement": 0.998, "max_abs_logit_diff": 0.5},
        "torch_weights": {"agreement": 1.0, "max_abs_logit_diff": 1e-6},
        "min_agreement": 0.998,
    }
    with pytest.raises(AgreementError, match=r"numpy_weights: 99\.800 %"):
        check_agreement(cross)


@pytest.mark.parametrize("framework", ["numpy", "torch"])
def test_stage_writes_metrics_confusion_rows_and_features(run, framework):
    out = run / "evaluation" / framework
    metrics = json.loads((out / "metrics.json").read_text())
    labels = np.load(run / "data/prepared/test_labels.npy")
    assert set(metrics) == {"test_acc", "test_loss", "per_class_acc", "test_images"}  # keys fixed for dvc metrics diff
    assert metrics["test_images"] == N_TEST
    with open(out / "confusion.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == N_TEST
    assert [CLASS_NAMES.index(row["actual"]) for row in rows] == labels.tolist()
    index = {name: i for i, name in enumerate(CLASS_NAMES)}
    matrix = confusion_matrix(labels, np.array([index[row["predicted"]] for row in rows]))
    assert metrics["test_acc"] == pytest.approx(np.trace(matrix) / N_TEST)
    assert [metrics["per_class_acc"][name] for name in CLASS_NAMES] == pytest.approx(
        per_class_accuracy(matrix).tolist()
    )
    assert metrics["test_loss"] > 0
    cross = json.loads((run / "evaluation/cross.json").read_text())
    assert cross[f"{framework}_weights"][f"{framework}_acc"] == pytest.approx(metrics["test_acc"])
    with np.load(out / "features.npz") as archive:
        assert archive["features"].shape == (FEATURE_SAMPLES, 256)
        assert np.bincount(archive["labels"]).tolist() == [FEATURE_SAMPLES // 10] * 10
        np.testing.assert_array_equal(labels[archive["index"]], archive["labels"])
    assert not [path.name for path in out.iterdir() if path.name.startswith(".")], "temporary files left behind"


def test_compare_writes_the_cross_evaluation(run):
    cross = json.loads((run / "evaluation/cross.json").read_text())
    assert set(cross) == {"numpy_weights", "torch_weights", "min_agreement", "trained_models_agreement"}
    for weights in ("numpy", "torch"):
        assert set(cross[f"{weights}_weights"]) == {"numpy_acc", "torch_acc", "agreement", "max_abs_logit_diff"}
    assert cross["min_agreement"] >= 0.999


def test_numpy_evaluation_never_imports_torch(run):
    args = ["numpy", "--params", str(run / "params.yaml"), "--prepared", str(run / "data/prepared")]
    args += ["--models", str(run / "models"), "--out", str(run.parent / "numpy-only")]
    script = (
        "import sys\nfrom stages.evaluate import main\n"
        f"main({args!r}, standalone_mode=False)\n"
        "assert 'torch' not in sys.modules, 'the NumPy evaluation imported torch'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert (run.parent / "numpy-only/numpy/metrics.json").is_file()


def test_compare_refuses_frameworks_that_disagree_and_writes_nothing(run, tmp_path, monkeypatch):
    root = tmp_path / "repo"
    shutil.copytree(run, root, ignore=shutil.ignore_patterns("cross.json"))

    def drifted(spec, state, images):
        features, logits = torch_model.predict(spec, state, images)
        return features, np.roll(logits, 1, axis=1)

    monkeypatch.setitem(compare_predict, "torch", drifted)
    result = compare_stage(root)
    assert result.exit_code == 1
    assert "disagree on the same weights" in result.output and "Traceback" not in result.output
    assert not (root / "evaluation/cross.json").exists()


def test_stage_fails_cleanly_when_a_model_is_missing(run, tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(run, root)
    before = (root / "evaluation/torch/metrics.json").read_bytes()
    (root / "models/torch.npz").unlink()
    result = evaluate_stage(root, "torch")
    assert result.exit_code == 1
    assert "torch.npz not found" in result.output and "Traceback" not in result.output
    assert (root / "evaluation/torch/metrics.json").read_bytes() == before


@pytest.mark.parametrize("framework", ["numpy", "torch"])
def test_stage_refuses_a_model_of_another_architecture(run, tmp_path, framework):
    root = tmp_path / "repo"
    shutil.copytree(run, root, ignore=shutil.ignore_patterns("evaluation"))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["model"] = "lab2023_cnn"
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    result = evaluate_stage(root, framework)
    assert result.exit_code == 1
    assert "does not hold the model lab2023_cnn" in result.output and "Traceback" not in result.output
    assert not (root / "evaluation").exists() or not any((root / "evaluation").rglob("*"))


def test_stage_help():
    result = CliRunner().invoke(evaluate_main, ["--help"])
    assert result.exit_code == 0 and "confusion" in result.output
