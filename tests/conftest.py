"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lablib.data.fashion_mnist import DEBIAN_DIR, ENV_VAR

OFFICIAL_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The folder holding the official files: $FASHION_MNIST_DIR, else Debian's package.

    Locally a test that needs them is skipped when they are absent; under CI (CI=true) it fails,
    because CI installs the data and a skip there would hide a broken install.
    """
    for candidate in (os.environ.get(ENV_VAR), DEBIAN_DIR):
        if candidate and all((Path(candidate) / name).is_file() for name in OFFICIAL_FILES):
            return Path(candidate)
    message = f"the official Fashion-MNIST files are absent (set {ENV_VAR} or apt-get install dataset-fashion-mnist)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
