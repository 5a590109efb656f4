"""End to end, as the course's student works: its CSV files and split, the leaderboard file, and a model
of one's own layers trained through `dvc exp run -S model=<spec>`, in a temporary git repository."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from lablib.data.fashion_mnist import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS
from lablib.data.idx import load_split
from lablib.data.split import COURSE_VAL
from tests.data.course_files import write_course_csv

pytestmark = pytest.mark.slow

SMALL = {"model": "lab2023_cnn", "width": 4, "epochs": 1, "batch_size": 50}
# The stages that build the NumPy model, and so import the layers of one's own in mylayers/.
LAYER_STAGES = {"train_numpy", "evaluate_numpy", "compare", "predict", "report"}
NO_TWIN = (
    "the model uses mylayers/my_layers.py:LeakyReLU, mylayers/course_layers.py:FullyConnected, "
    "which PyTorch has no twin of"
)


def categories(path: Path) -> np.ndarray:
    with open(path, newline="") as file:
        return np.array([int(row[1]) for row in list(csv.reader(file))[1:]])


def test_course_csv_files_train_and_the_leaderboard_file_scores_as_reported(workspace_factory, real_data_dir, tmp_path):
    images, labels = load_split(real_data_dir / TRAIN_IMAGES, real_data_dir / TRAIN_LABELS)
    test_images, test_labels = load_split(real_data_dir / TEST_IMAGES, real_data_dir / TEST_LABELS)
    order = np.random.default_rng(7).permutation(len(test_images))
    held_back = test_labels[order]  # the labels the course hides; only this test knows them
    train_csv = write_course_csv(tmp_path / "csv/fashion-mnist_train.csv", images, labels)
    test_csv = write_course_csv(tmp_path / "csv/fashion-mnist_test.csv", test_images[order], header=False)
    ws = workspace_factory(
        {**SMALL, "data.train_csv": str(train_csv), "data.test_csv": str(test_csv), "data.split": "course"}
    )
    ws.run("dvc", "repro", "evaluate_numpy", "predict")
    provenance = json.loads((ws.root / "data/raw/provenance.json").read_text())
    assert provenance["source"] == "course_csv" and provenance["test_labels"] == "official"
    val_labels = np.load(ws.root / "data/prepared/val_labels.npy")
    assert np.array_equal(val_labels, labels[-COURSE_VAL:]), "the course's split: the last 10,000 rows validate"
    written = categories(ws.root / "leaderboard/DL-test-predict.csv")
    reported = json.loads((ws.root / "leaderboard/metrics.json").read_text())["test_acc"]
    assert float(np.mean(written == held_back)) == reported
    assert reported == json.loads((ws.root / "evaluation/numpy/metrics.json").read_text())["test_acc"]
    assert reported > 0.3, "one epoch on 300 images is well above chance"


def status(ws) -> dict[str, str]:
    """``dvc status``: each changed stage with what changed, as one string."""
    return {
        stage: json.dumps(changes) for stage, changes in json.loads(ws.run("dvc", "status", "--json").stdout).items()
    }


def test_a_model_of_ones_own_layers_trains_through_dvc_exp_run_and_its_file_reruns_only_its_stages(
    workspace_factory,
):
    ws = workspace_factory(SMALL)
    ws.run("dvc", "exp", "run", "-n", "ours")
    ws.run("dvc", "exp", "run", "-n", "mine", "-S", "model=mymodels/my_cnn.yaml")
    accuracy = json.loads((ws.root / "evaluation/numpy/metrics.json").read_text())["test_acc"]
    assert accuracy > 0.3, "the LeakyReLU and the template's FullyConnected learn"
    record = {"ran": False, "reason": NO_TWIN}
    for path in ("dvclive/torch/metrics.json", "evaluation/torch/metrics.json", "evaluation/cross.json"):
        assert json.loads((ws.root / path).read_text()) == record, path
    metrics = json.loads(ws.run("dvc", "metrics", "show", "--json").stdout)
    shown = {path: values for rev in metrics.values() for path, values in rev["data"].items()}
    assert shown["dvclive/torch/metrics.json"]["data"] == record, "no PyTorch number"
    report = (ws.root / "reports/report.md").read_text()
    assert report.startswith("# Fashion-MNIST with a CNN written by hand in NumPy\n")
    assert f"PyTorch did not run: {NO_TWIN}." in report and f"The cross-evaluation was not run: {NO_TWIN}." in report
    assert "| NumPy | " in report and "| PyTorch | " not in report
    assert not (ws.root / "reports/figures/confusion_torch.png").exists()
    shown = json.loads(ws.run("dvc", "exp", "show", "--json").stdout)
    models = {
        exp["name"]: exp["data"]["params"]["params.yaml"]["data"]["model"]
        for row in shown
        for exp in (row.get("experiments") or [])
        for exp in exp["revs"]
        if exp.get("name")
    }
    assert models == {"ours": "lab2023_cnn", "mine": "mymodels/my_cnn.yaml"}, models
    before = status(ws)
    assert not before, before  # the whole pipeline is up to date
    layer = ws.root / "mylayers/my_layers.py"
    layer.write_text(layer.read_text().replace("negative_slope: float = 0.01", "negative_slope: float = 0.02"))
    after = status(ws)
    assert after.keys() == LAYER_STAGES, after  # no data stage, and not the PyTorch stages' records
    assert all('"mylayers": "modified"' in after[stage] for stage in LAYER_STAGES), after
