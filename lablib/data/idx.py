"""A strict reader of the IDX files Fashion-MNIST ships in (gzip-compressed).

IDX: two zero bytes, a type byte (0x08: unsigned byte), the number of dimensions, one big-endian
32-bit size per dimension, then the data in C order. Anything else, including a payload shorter
or longer than the header promises, is an :class:`IdxError` naming the file and the problem.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from lablib.errors import LabError

UNSIGNED_BYTE = 0x08
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10


class IdxError(LabError, ValueError):
    """An IDX file that cannot be read as Fashion-MNIST; the message names the file."""


def decompress(path: Path, data: bytes | None = None) -> bytes:
    """The decompressed bytes of the .gz file ``path`` (or of ``data``, read from it already)."""
    path = Path(path)
    try:
        return gzip.decompress(path.read_bytes() if data is None else data)
    except FileNotFoundError:
        raise IdxError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as error:
        raise IdxError(f"{path}: not a valid gzip file ({error}); fetch the data again") from None


def parse_idx(path: Path, raw: bytes) -> np.ndarray:
    """Parse decompressed IDX bytes into an array, checking the header against the payload."""
    if len(raw) < 4:
        raise IdxError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    zero0, zero1, dtype, ndim = raw[:4]
    if zero0 != 0 or zero1 != 0 or dtype != UNSIGNED_BYTE:
        raise IdxError(
            f"{path}: wrong magic number 0x{raw[:4].hex()} (expected 0x000008NN: unsigned bytes); not an IDX file"
        )
    if ndim == 0:
        raise IdxError(f"{path}: the header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxError(f"{path}: the header declares {ndim} dimensions but the file ends after {len(raw)} bytes")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    payload = len(raw) - header
    if payload != expected:
        kind = "short" if payload < expected else "long"
        raise IdxError(
            f"{path}: payload too {kind}: the header declares shape {shape} ({expected} bytes) "
            f"but {payload} bytes follow it"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx(path: Path) -> np.ndarray:
    """Read a gzip-compressed IDX file."""
    return parse_idx(Path(path), decompress(path))


def load_images(path: Path) -> np.ndarray:
    """Images as uint8 ``(N, 28, 28)``."""
    images = read_idx(path)
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise IdxError(f"{path}: expected images of shape (N, 28, 28), the header declares {images.shape}")
    return images


def load_labels(path: Path) -> np.ndarray:
    """Labels as uint8 ``(N,)``, every value in 0..9."""
    labels = read_idx(path)
    if labels.ndim != 1:
        raise IdxError(f"{path}: expected labels of shape (N,), the header declares {labels.shape}")
    if labels.size and labels.max() >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise IdxError(f"{path}: label {labels[bad]} at index {bad} is outside 0..9")
    return labels


def load_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one split, checked to hold the same number of items."""
    images, labels = load_images(images_path), load_labels(labels_path)
    if len(images) != len(labels):
        raise IdxError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    return images, labels
