"""The leaderboard file DL-test-predict.csv: the course's format, checked before it is written, and the
accuracy of the very file written equal to evaluate_numpy's test accuracy."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from lablib.leaderboard import TEST_ROWS, LeaderboardError, read_leaderboard, write_leaderboard
from lablib.models.numpy_model import build_numpy
from lablib.models.specs import get_spec
from lablib.train.checkpoint import save_npz
from stages.evaluate import main as evaluate_main
from stages.predict import main as predict_main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """params.yaml, a small model's weights and 10,000 prepared test images whose classes it can tell apart."""
    root = tmp_path_factory.mktemp("run")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(model="lab2023_cnn", width=2)
    params["evaluate"]["feature_samples"] = 100
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    rng = np.random.default_rng(0)
    save_npz(root / "models/numpy.npz", build_numpy(get_spec("lab2023_cnn", 2), rng=rng).state_dict())
    (root / "prepared").mkdir()
    labels = rng.integers(0, 10, TEST_ROWS)
    images = rng.uniform(-0.5, 0.5, (TEST_ROWS, 1, 28, 28)).astype(np.float32)
    np.save(root / "prepared/test_images.npy", images)
    np.save(root / "prepared/test_labels.npy", labels)
    return root


def predict_stage(root: Path, prepared: Path | None = None):
    args = ["--params", str(root / "params.yaml"), "--prepared", str(prepared or root / "prepared")]
    return CliRunner().invoke(predict_main, [*args, "--models", str(root / "models"), "--out", str(root / "lb")])


def test_the_file_is_the_courses_format_and_its_accuracy_is_evaluate_numpys(run):
    result = predict_stage(run)
    assert result.exit_code == 0, result.output
    with open(run / "lb/DL-test-predict.csv", newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["Id", "Category"] and len(rows) == TEST_ROWS + 1
    assert [row[0] for row in rows[1:]] == [str(i) for i in range(TEST_ROWS)]
    categories = np.array([int(row[1]) for row in rows[1:]])
    labels = np.load(run / "prepared/test_labels.npy")
    metrics = json.loads((run / "lb/metrics.json").read_text())
    assert metrics == {"rows": TEST_ROWS, "test_acc": float(np.mean(categories == labels))}
    args = ["numpy", "--params", str(run / "params.yaml"), "--prepared", str(run / "prepared")]
    evaluated = CliRunner().invoke(evaluate_main, [*args, "--models", str(run / "models"), "--out", str(run / "ev")])
    assert evaluated.exit_code == 0, evaluated.output
    assert metrics["test_acc"] == json.loads((run / "ev/numpy/metrics.json").read_text())["test_acc"]
    assert len(np.unique(categories)) > 1, "a model that predicts one class proves little"


def test_unknown_test_labels_give_the_file_without_an_accuracy(run, tmp_path):
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    (prepared / "test_images.npy").symlink_to(run / "prepared/test_images.npy")
    np.save(prepared / "test_labels.npy", np.full(TEST_ROWS, -1))
    result = predict_stage(run, prepared)
    assert result.exit_code == 0, result.output
    assert json.loads((run / "lb/metrics.json").read_text()) == {"rows": TEST_ROWS}
    args = ["numpy", "--params", str(run / "params.yaml"), "--prepared", str(prepared)]
    refused = CliRunner().invoke(evaluate_main, [*args, "--models", str(run / "models"), "--out", str(tmp_path / "e")])
    assert (
        refused.exit_code == 1 and "the test labels are unknown" in refused.output and "Traceback" not in refused.output
    )


@pytest.mark.parametrize(
    ("predictions", "message"),
    [
        (np.zeros(TEST_ROWS - 1, dtype=int), "holds 9999 rows after the header, expected 10000"),
        (np.full(TEST_ROWS, 10), "line 2 reads '0,10', expected Id 0 and a class 0-9"),
        (np.r_[np.zeros(5, dtype=int), -1, np.zeros(TEST_ROWS - 6, dtype=int)], "line 7 reads '5,-1'"),
    ],
)
def test_a_file_that_breaks_the_format_is_not_written(tmp_path, predictions, message):
    (tmp_path / "DL-test-predict.csv").write_text("earlier\n")
    with pytest.raises(LeaderboardError, match=message):
        write_leaderboard(tmp_path / "DL-test-predict.csv", predictions, None, tmp_path / "metrics.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DL-test-predict.csv"]
    assert (tmp_path / "DL-test-predict.csv").read_text() == "earlier\n"


def test_ids_out_of_order_are_refused(tmp_path):
    path = tmp_path / "DL-test-predict.csv"
    path.write_text("Id,Category\n" + "".join(f"{i},1\n" for i in [1, 0, *range(2, TEST_ROWS)]))
    with pytest.raises(LeaderboardError, match="line 2 reads '1,1', expected Id 0"):
        read_leaderboard(path)
