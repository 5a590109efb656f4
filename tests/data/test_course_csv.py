"""The course's CSV files: read and verified, refused with the file and the line, written in the official
format with the test labels matched from the official test images; and the course's split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from lablib.data.course_csv import CsvError, read_course_csv
from lablib.data.fashion_mnist import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS
from lablib.data.fetch import PROVENANCE, fetch_course
from lablib.data.idx import load_images, load_labels, load_split
from lablib.data.split import COURSE_VAL, SplitError, make_split
from lablib.params import ParamsError, parse_params
from tests.data.conftest import snapshot
from tests.data.course_files import write_course_csv

ROWS = (30, 20)


def arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    images, labels = arrays(ROWS[0], 0)
    test_images, _ = arrays(ROWS[1], 1)
    train = write_course_csv(tmp_path / "train.csv", images, labels)
    return train, write_course_csv(tmp_path / "test.csv", test_images)


@pytest.mark.parametrize("header", [True, False])
def test_clean_files_read_back_exactly(tmp_path, header):
    images, labels = arrays(ROWS[0], 0)
    path = write_course_csv(tmp_path / "train.csv", images, labels, header=header)
    got_images, got_labels = read_course_csv(path, labelled=True, rows=ROWS[0])
    assert got_images.dtype == np.uint8 and np.array_equal(got_images, images) and np.array_equal(got_labels, labels)
    test = write_course_csv(tmp_path / "test.csv", images, header=header)
    got, none = read_course_csv(test, labelled=False, rows=ROWS[0])
    assert np.array_equal(got, images) and none is None


def spoil(path: Path, line: int, edit) -> Path:
    lines = path.read_text().splitlines()
    lines[line - 1] = edit(lines[line - 1])
    path.write_text("\n".join(lines) + "\n")
    return path


BAD = {
    "short row": ("train", 5, lambda row: row.rsplit(",", 1)[0], "line 5 holds 784 values, expected 785"),
    "pixel 256": ("train", 7, lambda row: row.rsplit(",", 1)[0] + ",256", "line 7: pixel 784 is 256, outside 0-255"),
    "label 10": ("train", 3, lambda row: "10," + row.split(",", 1)[1], "line 3: label is 10, outside 0-9"),
    "pixel -1": ("test", 3, lambda row: "-1," + row.split(",", 1)[1], "line 3: pixel 1 is -1, outside 0-255"),
    "pixel -1 after the label": (
        "train",
        6,
        lambda row: row.split(",", 1)[0] + ",-1," + row.split(",", 2)[2],
        "line 6: pixel 1 is -1, outside 0-255",
    ),
    "not a number": ("train", 4, lambda row: row.replace(",", ",x,", 1).rsplit(",", 1)[0], "pixel 1 is 'x'"),
    "label column in the test file": (
        "test",
        2,
        lambda row: "3," + row,
        "line 2 holds 785 values, expected 784: 784 pixel values and no label (a label column?",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_file_is_refused_with_its_line_and_nothing_written(tmp_path, files, case):
    which, line, edit, message = BAD[case]
    train, test = files
    spoil(train if which == "train" else test, line, edit)
    dest = tmp_path / "raw"
    dest.mkdir()
    (dest / "earlier").write_text("kept")
    with pytest.raises(CsvError) as error:
        fetch_course(dest, train, test, env={}, debian_dir=tmp_path / "none", rows=ROWS)
    assert str(error.value).startswith(f"{train if which == 'train' else test}: "), error.value
    assert message in str(error.value), error.value
    assert snapshot(tmp_path / "raw") == {"earlier": b"kept"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw", "test.csv", "train.csv"], "no staging left behind"


def test_label_column_in_every_row_of_the_test_file_is_refused(tmp_path):
    images, labels = arrays(ROWS[1], 1)
    test = write_course_csv(tmp_path / "test.csv", images, labels)
    with pytest.raises(CsvError, match=r"test\.csv: line 2 holds 785 values, expected 784"):
        read_course_csv(test, labelled=False, rows=ROWS[1])


def test_wrong_row_count_is_refused(files):
    train, _ = files
    with pytest.raises(CsvError, match=r"train\.csv: holds 30 rows .*expected 60000"):
        read_course_csv(train, labelled=True, rows=60000)


def test_csv_files_are_written_in_the_official_format_without_test_labels_when_none_can_be_found(tmp_path, files):
    train, test = files
    dest = tmp_path / "raw"
    result = fetch_course(dest, train, test, env={}, debian_dir=tmp_path / "none", rows=ROWS)
    images, labels = load_split(dest / TRAIN_IMAGES, dest / TRAIN_LABELS)
    assert np.array_equal(images, arrays(ROWS[0], 0)[0]) and np.array_equal(labels, arrays(ROWS[0], 0)[1])
    assert np.array_equal(load_images(dest / TEST_IMAGES), arrays(ROWS[1], 1)[0])
    assert not (dest / TEST_LABELS).exists()
    provenance = json.loads((dest / PROVENANCE).read_text())
    assert provenance == result.provenance
    assert provenance["source"] == "course_csv" and provenance["test_labels"] == "unknown"
    assert set(provenance["sha256"]) == {str(train), str(test)}


def test_test_labels_come_from_the_official_test_images_in_the_test_files_order(tmp_path, real_data_dir, files):
    official, official_labels = load_split(real_data_dir / TEST_IMAGES, real_data_dir / TEST_LABELS)
    order = np.random.default_rng(3).permutation(len(official))[: ROWS[1]]
    train, _ = files
    test = write_course_csv(tmp_path / "shuffled.csv", official[order], header=False)
    dest = tmp_path / "raw"
    result = fetch_course(dest, train, test, env={"FASHION_MNIST_DIR": str(real_data_dir)}, rows=ROWS)
    assert result.test_labels == "official"
    assert np.array_equal(load_labels(dest / TEST_LABELS), official_labels[order])
    other = write_course_csv(tmp_path / "other.csv", arrays(ROWS[1], 5)[0])
    assert fetch_course(dest, train, other, source_dir=real_data_dir, rows=ROWS).test_labels == "unknown"


def test_course_split_validates_on_the_last_rows():
    labels = np.tile(np.arange(10), 7000)[:60000]
    split = make_split(labels, val_per_class=1000, subset=None, kfold=3, seed=0, method="course")
    assert split["val"].tolist() == list(range(60000 - COURSE_VAL, 60000))
    assert split["train"].tolist() == list(range(60000 - COURSE_VAL))
    thinned = make_split(labels, val_per_class=1000, subset=500, kfold=3, seed=0, method="course")
    assert len(thinned["train"]) == 500 and thinned["train"].max() < 60000 - COURSE_VAL
    assert np.array_equal(thinned["val"], split["val"])
    with pytest.raises(SplitError, match=r"data\.split: course"):
        make_split(labels[:COURSE_VAL], val_per_class=10, subset=None, kfold=3, seed=0, method="course")


def test_params_take_both_csv_files_or_neither_and_a_split_they_know():
    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    raw["data"].update(train_csv="train.csv", test_csv="test.csv", split="course")
    data = parse_params(raw).data
    assert (data.train_csv, data.test_csv, data.split) == ("train.csv", "test.csv", "course")
    raw["data"]["test_csv"] = None
    with pytest.raises(ParamsError, match=r"data\.train_csv and data\.test_csv go together"):
        parse_params(raw)
    raw["data"].update(test_csv="test.csv", split="last")
    with pytest.raises(ParamsError, match=r"data\.split must be one of stratified, course"):
        parse_params(raw)
