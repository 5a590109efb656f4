"""The strict IDX reader: good files read exactly, every kind of bad file is one IdxError naming
the file and the problem."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lablib.data.fashion_mnist import TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS
from lablib.data.idx import IdxError, load_images, load_labels, load_split, read_idx
from tests.data.conftest import idx_bytes, write_gz

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (5, 28, 28), dtype=np.uint8)
LABELS = np.array([9, 0, 3, 3, 7], dtype=np.uint8)


def patched(raw: bytes, at: int, value: int) -> bytes:
    return raw[:at] + bytes([value]) + raw[at + 1 :]


def gz(raw: bytes) -> bytes:
    return gzip.compress(raw, mtime=0)


GOOD_IMAGES, GOOD_LABELS = idx_bytes(IMAGES), idx_bytes(LABELS)

# (file content as written, reader, words the message must hold)
BAD_FILES: dict[str, tuple[bytes, Callable[[Path], np.ndarray], str]] = {
    "uncompressed IDX": (GOOD_IMAGES, load_images, "not a gzip file (it starts with 0x00000803"),
    "empty file": (b"", load_images, "not a gzip file (it is empty"),
    "truncated gzip": (gz(GOOD_IMAGES)[:200], load_images, "corrupt gzip stream"),
    "gzip CRC wrong": (
        patched(gz(GOOD_IMAGES), -8, gz(GOOD_IMAGES)[-8] ^ 0xFF),
        load_images,
        "corrupt gzip stream",
    ),
    "gzip trailing garbage": (gz(GOOD_IMAGES) + b"garbage!", load_images, "corrupt gzip stream"),
    "first magic byte": (gz(patched(GOOD_IMAGES, 0, 1)), load_images, "wrong magic number 0x01000803"),
    "second magic byte": (gz(patched(GOOD_IMAGES, 1, 1)), load_images, "wrong magic number 0x00010803"),
    "type byte float": (gz(patched(GOOD_IMAGES, 2, 0x0D)), load_images, "wrong magic number 0x00000d03"),
    "labels read as images": (gz(GOOD_LABELS), load_images, "wrong magic number 0x00000801: 1 dimensions"),
    "images read as labels": (gz(GOOD_IMAGES), load_labels, "wrong magic number 0x00000803: 3 dimensions"),
    "zero dimensions": (gz(bytes([0, 0, 8, 0])), read_idx, "wrong magic number 0x00000800: 0 dimensions"),
    "images 28x27": (
        gz(idx_bytes(IMAGES[:, :, :27])),
        load_images,
        "shape (5, 28, 27), expected (N, 28, 28)",
    ),
    "images 27x28": (gz(idx_bytes(IMAGES[:, :27])), load_images, "shape (5, 27, 28), expected (N, 28, 28)"),
    "header under 4 bytes": (gz(b"\x00\x00\x08"), load_images, "header too short: 3 bytes decompressed"),
    "header cut in its sizes": (
        gz(GOOD_IMAGES[:10]),
        load_images,
        "header too short: 3 dimensions need 16 bytes",
    ),
    "images payload short": (gz(GOOD_IMAGES[:-1]), load_images, "payload too short"),
    "images payload long": (gz(GOOD_IMAGES + b"\x00"), load_images, "payload too long"),
    "labels payload short": (gz(GOOD_LABELS[:-2]), load_labels, "payload too short"),
    "labels payload long": (gz(GOOD_LABELS + b"\x01"), load_labels, "payload too long"),
    "label 10": (
        gz(idx_bytes(np.array([1, 10, 2, 255], np.uint8))),
        load_labels,
        "outside 0..9, the first 10 at index 1",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_file_is_one_error_naming_file_and_problem(tmp_path, case):
    content, reader, problem = BAD_FILES[case]
    path = tmp_path / "some-file-idx.gz"
    path.write_bytes(content)
    with pytest.raises(IdxError) as caught:
        reader(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert problem in message, message
    assert isinstance(caught.value, ValueError)


def test_payload_message_gives_both_lengths(tmp_path):
    path = write_gz(tmp_path / "x.gz", GOOD_LABELS[:-2])
    with pytest.raises(IdxError, match=r"declares shape \(5,\) \(5 bytes\) but 3 bytes follow it"):
        load_labels(path)


def test_missing_file(tmp_path):
    with pytest.raises(IdxError, match=f"{tmp_path / 'absent.gz'}: file not found"):
        load_images(tmp_path / "absent.gz")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(IdxError, match=f"{tmp_path}: cannot be read"):
        read_idx(tmp_path)


def test_reads_exactly_what_was_written(tmp_path):
    images = load_images(write_gz(tmp_path / "i.gz", GOOD_IMAGES))
    labels = load_labels(write_gz(tmp_path / "l.gz", GOOD_LABELS))
    assert images.dtype == labels.dtype == np.uint8
    assert images.shape == (5, 28, 28) and labels.shape == (5,)
    np.testing.assert_array_equal(images, IMAGES)
    np.testing.assert_array_equal(labels, LABELS)
    assert not images.flags.writeable


def test_gzip_header_does_not_matter(tmp_path):
    # Debian's files wrap the same stream in another gzip header (file name, mtime).
    path = tmp_path / "named.gz"
    with gzip.GzipFile(filename="train-images-idx3-ubyte", mode="wb", fileobj=path.open("wb"), mtime=1234) as f:
        f.write(GOOD_IMAGES)
    np.testing.assert_array_equal(load_images(path), IMAGES)


def test_read_idx_takes_any_shape_and_decompressed_bytes(tmp_path):
    cube = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = write_gz(tmp_path / "cube.gz", idx_bytes(cube))
    np.testing.assert_array_equal(read_idx(path), cube)
    np.testing.assert_array_equal(read_idx(tmp_path / "not-read.gz", raw=idx_bytes(cube)), cube)


def test_load_split(tmp_path):
    images, labels = load_split(write_gz(tmp_path / "i.gz", GOOD_IMAGES), write_gz(tmp_path / "l.gz", GOOD_LABELS))
    np.testing.assert_array_equal(images, IMAGES)
    np.testing.assert_array_equal(labels, LABELS)


def test_load_split_counts_differ(tmp_path):
    images_path = write_gz(tmp_path / "i.gz", GOOD_IMAGES)
    labels_path = write_gz(tmp_path / "l.gz", idx_bytes(LABELS[:4]))
    with pytest.raises(IdxError, match=f"{images_path} holds 5 images but {labels_path} holds 4 labels"):
        load_split(images_path, labels_path)


@pytest.fixture(scope="module")
def real_train(real_data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    return load_split(real_data_dir / TRAIN_IMAGES, real_data_dir / TRAIN_LABELS)


@pytest.mark.realdata
def test_real_first_image_is_an_ankle_boot(real_train):
    images, labels = real_train
    assert images.shape == (60000, 28, 28) and labels.shape == (60000,)
    assert labels[0] == 9
    assert images[0, 3].tolist() == [0] * 12 + [1, 0, 0, 13, 73, 0, 0, 1, 4, 0, 0, 0, 0, 1, 1, 0]


@pytest.mark.realdata
def test_real_pixel_statistics(real_train):
    images, _ = real_train
    assert images.mean(dtype=np.float64) / 255 == pytest.approx(0.2860, abs=1e-4)
    assert images.std(dtype=np.float64) / 255 == pytest.approx(0.3530, abs=1e-4)


@pytest.mark.realdata
def test_real_classes_are_balanced(real_data_dir, real_train):
    _, labels = real_train
    test_labels = load_labels(real_data_dir / TEST_LABELS)
    assert np.bincount(labels, minlength=10).tolist() == [6000] * 10
    assert np.bincount(test_labels, minlength=10).tolist() == [1000] * 10
