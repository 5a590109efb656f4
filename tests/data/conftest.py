"""Small synthetic Fashion-MNIST look-alikes (30 training and 20 test images) and ways to spoil them.

The official files' fixture, ``real_data_dir``, lives in ``tests/conftest.py``: the pipeline tests use it
too. It skips a test when the files are absent, and fails it instead when ``CI=true``.
"""

from __future__ import annotations

import gzip
import hashlib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lablib.data.fashion_mnist import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS

TRAIN_COUNT, TEST_COUNT = 30, 20


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` as IDX: magic 0x000008<ndim>, one big-endian size per dimension, then the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(size.to_bytes(4, "big") for size in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_gz(path: Path, raw: bytes, mtime: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw, mtime=mtime))
    return path


def sha256_of_gz(path: Path) -> str:
    return hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: two equal snapshots mean nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@dataclass(frozen=True)
class Synthetic:
    """Four IDX .gz files in ``folder`` and what fetch should expect of them."""

    folder: Path
    arrays: dict[str, np.ndarray]
    expected: dict[str, str]
    counts: dict[str, int]


def make_synthetic(folder: Path, seed: int = 0, mtime: int = 0) -> Synthetic:
    """Random images and balanced labels (3 per class in train, 2 in test); ``seed`` varies the content."""
    rng = np.random.default_rng(seed)
    arrays = {
        TRAIN_IMAGES: rng.integers(0, 256, (TRAIN_COUNT, 28, 28), dtype=np.uint8),
        TRAIN_LABELS: rng.permutation(np.arange(TRAIN_COUNT) % 10).astype(np.uint8),
        TEST_IMAGES: rng.integers(0, 256, (TEST_COUNT, 28, 28), dtype=np.uint8),
        TEST_LABELS: rng.permutation(np.arange(TEST_COUNT) % 10).astype(np.uint8),
    }
    for name, array in arrays.items():
        write_gz(folder / name, idx_bytes(array), mtime)
    expected = {name: hashlib.sha256(idx_bytes(array)).hexdigest() for name, array in arrays.items()}
    return Synthetic(folder, arrays, expected, {name: len(array) for name, array in arrays.items()})


@pytest.fixture
def synthetic(tmp_path: Path) -> Synthetic:
    return make_synthetic(tmp_path / "source")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let urllib open ``file:`` URLs only: a data test that reaches for the network fails at once."""
    urlopen = urllib.request.urlopen

    def local_only(url, *args, **kwargs):
        if not str(getattr(url, "full_url", url)).startswith("file:"):
            raise AssertionError(f"a test tried to reach the network: {url}")
        return urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)
