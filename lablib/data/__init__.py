"""Fashion-MNIST: verified fetching, a strict IDX reader, the split, preprocessing, augmentation
and sampling. Everything here is NumPy; no image-processing library."""

from lablib.data.fashion_mnist import CLASS_NAMES, FILES, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS
from lablib.data.fetch import ChecksumError, DataUnavailableError, FetchResult, fetch
from lablib.data.idx import IdxError, load_images, load_labels, load_split, read_idx
from lablib.data.preprocess import save_arrays, to_tensor
from lablib.data.split import SplitError, make_split

__all__ = [
    "CLASS_NAMES",
    "FILES",
    "TEST_IMAGES",
    "TEST_LABELS",
    "TRAIN_IMAGES",
    "TRAIN_LABELS",
    "ChecksumError",
    "DataUnavailableError",
    "FetchResult",
    "IdxError",
    "SplitError",
    "fetch",
    "load_images",
    "load_labels",
    "load_split",
    "make_split",
    "read_idx",
    "save_arrays",
    "to_tensor",
]
