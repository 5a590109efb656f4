"""A strict reader of the gzip-compressed IDX files Fashion-MNIST ships in, and their encoder.

IDX: two zero bytes, a type byte (0x08: unsigned byte), the number of dimensions, one big-endian
32-bit size per dimension, then the data in C order. The whole file is decompressed and every length
checked before NumPy sees a byte, so anything else (a payload shorter or longer than the header
promises included) is one :class:`IdxError` naming the file and the problem, never a truncated array.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from lablib.data.fashion_mnist import NUM_CLASSES
from lablib.errors import LabError

GZIP_MAGIC = b"\x1f\x8b"
UNSIGNED_BYTE = 0x08
IMAGE_SHAPE = (28, 28)


class IdxError(LabError, ValueError):
    """A file that cannot be read as Fashion-MNIST IDX; the message names the file and the problem."""


def decompress(path: Path, *, data: bytes | None = None) -> bytes:
    """The decompressed bytes of the .gz file ``path``, or of ``data`` when its bytes are read already."""
    if data is None:
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise IdxError(f"{path}: file not found") from None
        except OSError as error:
            raise IdxError(f"{path}: cannot be read ({error.strerror or error})") from None
    if data[:2] != GZIP_MAGIC:
        found = f"it starts with 0x{data[:4].hex()}" if data else "it is empty"
        raise IdxError(f"{path}: not a gzip file ({found}; gzip starts with 0x1f8b)")
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise IdxError(f"{path}: corrupt gzip stream ({error}); fetch the data again") from None


def read_idx(path: Path, *, raw: bytes | None = None, shape: tuple[int | None, ...] | None = None) -> np.ndarray:
    """Read a gzip-compressed IDX file of unsigned bytes as a read-only uint8 array.

    ``raw`` is the file's decompressed content when that is at hand already; ``shape`` is the shape the
    header must declare, ``None`` standing for any size, as in ``(None, 28, 28)``.
    """
    if raw is None:
        raw = decompress(path)
    if len(raw) < 4:
        raise IdxError(f"{path}: header too short: {len(raw)} bytes decompressed, the IDX magic number alone takes 4")
    magic = raw[:4].hex()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != UNSIGNED_BYTE:
        raise IdxError(f"{path}: wrong magic number 0x{magic}: IDX of unsigned bytes starts with 0x000008")
    ndim = raw[3]
    if shape is not None and ndim != len(shape):
        raise IdxError(
            f"{path}: wrong magic number 0x{magic}: {ndim} dimensions where {_pretty(shape)} needs "
            f"{len(shape)} (magic 0x000008{len(shape):02x})"
        )
    if ndim == 0:
        raise IdxError(f"{path}: wrong magic number 0x{magic}: 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxError(f"{path}: header too short: {ndim} dimensions need {header} bytes, {len(raw)} decompressed")
    sizes = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if shape is not None and any(want is not None and want != got for want, got in zip(shape, sizes, strict=True)):
        raise IdxError(f"{path}: the header declares shape {sizes}, expected {_pretty(shape)}")
    expected, payload = math.prod(sizes), len(raw) - header
    if payload != expected:
        kind = "short" if payload < expected else "long"
        raise IdxError(
            f"{path}: payload too {kind}: the header declares shape {sizes} ({expected} bytes) "
            f"but {payload} bytes follow it"
        )
    return np.frombuffer(raw, dtype=np.uint8, count=expected, offset=header).reshape(sizes)


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of a uint8 array (before gzip): what :func:`read_idx` reads back as ``array``."""
    if array.dtype != np.uint8:
        raise ValueError(f"IDX of unsigned bytes holds uint8 only; got {array.dtype}")
    sizes = b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    return bytes([0, 0, UNSIGNED_BYTE, array.ndim]) + sizes + np.ascontiguousarray(array).tobytes()


def _pretty(shape: tuple[int | None, ...]) -> str:
    sizes = ["N" if size is None else str(size) for size in shape]
    return f"({', '.join(sizes)}{',' if len(sizes) == 1 else ''})"


def load_images(path: Path, *, raw: bytes | None = None) -> np.ndarray:
    """Images as uint8 ``(N, 28, 28)``."""
    return read_idx(path, raw=raw, shape=(None, *IMAGE_SHAPE))


def load_labels(path: Path, *, raw: bytes | None = None) -> np.ndarray:
    """Labels as uint8 ``(N,)``, every value in 0..9."""
    labels = read_idx(path, raw=raw, shape=(None,))
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise IdxError(
            f"{path}: {bad.size} label values outside 0..{NUM_CLASSES - 1}, "
            f"the first {labels[bad[0]]} at index {bad[0]}"
        )
    return labels


def load_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 28, 28)`` and labels ``(N,)`` of one split, checked to hold the same number of items."""
    images, labels = load_images(images_path), load_labels(labels_path)
    if len(images) != len(labels):
        raise IdxError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    return images, labels
