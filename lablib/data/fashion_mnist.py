"""Facts about Fashion-MNIST: its files, their published checksums, and where they come from.

The SHA-256 is of the decompressed bytes, the same for every source; the ``.gz`` MD5 is the official
download's only (Debian's ``.gz`` files carry another gzip header around the same stream).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"


@dataclass(frozen=True)
class OfficialFile:
    """One of the four files: SHA-256 of its decompressed bytes, official .gz MD5, item count."""

    sha256: str
    md5_gz: str
    count: int


FILES = {
    TRAIN_IMAGES: OfficialFile(
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        60000,
    ),
    TRAIN_LABELS: OfficialFile(
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "25c81989df183df01b3e8a0aad5dffbe",
        60000,
    ),
    TEST_IMAGES: OfficialFile(
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "bef4ecab320f06d8554ea6380940ec79",
        10000,
    ),
    TEST_LABELS: OfficialFile(
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        "bb300cfdad3c16e7a12a480ee83cd310",
        10000,
    ),
}
SHA256 = {name: entry.sha256 for name, entry in FILES.items()}
COUNTS = {name: entry.count for name, entry in FILES.items()}

OFFICIAL_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "FASHION_MNIST_DIR"
APT_COMMAND = "apt-get update && apt-get install -y dataset-fashion-mnist"
