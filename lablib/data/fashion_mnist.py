"""Facts about Fashion-MNIST: its files, their published checksums, and where they come from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


@dataclass(frozen=True)
class OfficialFile:
    """One of the four files: SHA-256 of its decompressed bytes, official .gz MD5, item count."""

    sha256: str
    md5_gz: str
    count: int


FILES = {
    "train-images-idx3-ubyte.gz": OfficialFile(
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 60000
    ),
    "train-labels-idx1-ubyte.gz": OfficialFile(
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", "25c81989df183df01b3e8a0aad5dffbe", 60000
    ),
    "t10k-images-idx3-ubyte.gz": OfficialFile(
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", "bef4ecab320f06d8554ea6380940ec79", 10000
    ),
    "t10k-labels-idx1-ubyte.gz": OfficialFile(
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", "bb300cfdad3c16e7a12a480ee83cd310", 10000
    ),
}

OFFICIAL_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "FASHION_MNIST_DIR"
APT_COMMAND = "apt-get update && apt-get install -y dataset-fashion-mnist"
