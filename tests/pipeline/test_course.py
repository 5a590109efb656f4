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
NUMPY_STAGES = {"train_numpy", "evaluate_numpy", "predict"}


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
    ws.run("dvc", "exp", "run", "-n", "ours", "evaluate_numpy", "predict")
    ws.run("dvc", "exp", "run", "-n", "mine", "-S", "model=mymodels/my_cnn.yaml", "evaluate_numpy", "predict")
    accuracy = json.loads((ws.root / "evaluation/numpy/metrics.json").read_text())["test_acc"]
    assert accuracy > 0.3, "the LeakyReLU and the template's FullyConnected learn"
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
    assert not before.keys() & NUMPY_STAGES, before  # up to date; the PyTorch stages never ran
    layer = ws.root / "mylayers/my_layers.py"
    layer.write_text(layer.read_text().replace("negative_slope: float = 0.01", "negative_slope: float = 0.02"))
    after = status(ws)
    assert {stage for stage in after if after[stage] != before.get(stage)} == NUMPY_STAGES, after
    assert all('"mylayers": "modified"' in after[stage] for stage in NUMPY_STAGES), after
