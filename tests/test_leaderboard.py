"""The leaderboard file DL-test-predict.csv: the course's format, checked before it is written, each row the
model's prediction for that image of the course's test file, and the accuracy of the very file written equal
to evaluate_numpy's test accuracy."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from lablib.data.fetch import fetch_course
from lablib.data.preprocess import to_tensor
from lablib.leaderboard import TEST_ROWS, LeaderboardError, read_leaderboard, write_leaderboard
from lablib.models.numpy_inference import predict
from lablib.models.numpy_model import build_numpy
from lablib.models.specs import get_spec
from lablib.train.checkpoint import save_npz
from stages.evaluate import main as evaluate_main
from stages.predict import main as predict_main
from stages.preprocess import main as preprocess_main
from tests.data.course_files import write_course_csv

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


def band_model() -> dict[str, np.ndarray]:
    """``lab2023_cnn`` of one filter that predicts class k for an image whose rows 2k+1 and 2k+2 are the
    brightest: the filter copies each pixel, and class k sums row k of the pooled 13x13 map."""
    state = build_numpy(get_spec("lab2023_cnn", 1), rng=np.random.default_rng(0)).state_dict()
    conv = np.zeros_like(state["features.0.weight"])
    conv[0, 0, 1, 1] = 1
    classifier = np.zeros_like(state["classifier.0.weight"])
    side = round(np.sqrt(classifier.shape[1]))
    for k in range(classifier.shape[0]):
        classifier[k, k * side : (k + 1) * side] = 1
    return {
        "features.0.weight": conv,
        "features.0.bias": np.zeros_like(state["features.0.bias"]),
        "classifier.0.weight": classifier,
        "classifier.0.bias": np.zeros_like(state["classifier.0.bias"]),
    }


def band_images(classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dim noise, with the two rows ``band_model`` reads as each image's class bright."""
    images = rng.integers(0, 100, (len(classes), 28, 28), dtype=np.uint8)
    for image, k in zip(images, classes, strict=True):
        image[2 * k + 1 : 2 * k + 3, 1:27] = rng.integers(200, 256, (2, 26), dtype=np.uint8)
    return images


def test_each_row_is_the_models_prediction_for_that_image_of_the_shuffled_test_file(tmp_path):
    """The course's test file through fetch, preprocess and predict: a row out of place anywhere shows."""
    rng = np.random.default_rng(1)
    classes = rng.permutation(np.tile(np.arange(10), TEST_ROWS // 10))
    images = band_images(classes, rng)
    state = band_model()
    _, logits = predict(get_spec("lab2023_cnn", 1), state, to_tensor(images))
    assert np.array_equal(logits.argmax(axis=1), classes), "the model predicts each image's band"
    train = write_course_csv(tmp_path / "train.csv", images[:30], classes[:30])
    test = write_course_csv(tmp_path / "test.csv", images)
    fetch_course(tmp_path / "raw", train, test, env={}, debian_dir=tmp_path / "none", rows=(30, TEST_ROWS))
    (tmp_path / "split").mkdir()
    np.save(tmp_path / "split/train.npy", np.arange(20))
    np.save(tmp_path / "split/val.npy", np.arange(20, 30))
    dirs = ["--raw", tmp_path / "raw", "--split", tmp_path / "split", "--out", tmp_path / "prepared"]
    prepared = CliRunner().invoke(preprocess_main, [str(arg) for arg in dirs])
    assert prepared.exit_code == 0, prepared.output
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**params, "model": "lab2023_cnn", "width": 1}))
    save_npz(tmp_path / "models/numpy.npz", state)
    result = predict_stage(tmp_path)
    assert result.exit_code == 0, result.output
    categories = read_leaderboard(tmp_path / "lb/DL-test-predict.csv")
    wrong = np.flatnonzero(categories != classes)
    assert wrong.size == 0, f"line {wrong[0] + 2} and {wrong.size - 1} more: not the prediction for that image"
    assert json.loads((tmp_path / "lb/metrics.json").read_text()) == {"rows": TEST_ROWS}


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
