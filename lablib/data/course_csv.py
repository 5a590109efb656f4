"""The course's CSV files: a training file (a label, then 784 pixel values per row) and a test file (784
pixel values per row, no label), each with a header line or none.

Every value is checked before anything is written: an integer label 0-9 first in the training file,
784 integer pixel values 0-255 in row-major 28x28 order, the number of rows. A file that breaks a
rule is refused with one :class:`CsvError` naming the file, the line and what is wrong. The common
case (a clean file) is parsed once by pandas' C reader into int16; only a file that fails that parse
or a check is looked at line by line, to name the first bad line.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from lablib.data.fashion_mnist import COUNTS, NUM_CLASSES, TEST_IMAGES, TRAIN_IMAGES
from lablib.data.idx import IMAGE_SHAPE
from lablib.errors import LabError

PIXELS = math.prod(IMAGE_SHAPE)
TRAIN_ROWS = COUNTS[TRAIN_IMAGES]
TEST_ROWS = COUNTS[TEST_IMAGES]


class CsvError(LabError, ValueError):
    """A course CSV file that breaks a rule; the message names the file, the line and the rule."""


def read_course_csv(path: Path, *, labelled: bool, rows: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Images as uint8 ``(rows, 28, 28)`` and, when ``labelled``, labels as uint8 ``(rows,)``.

    ``labelled`` files hold a label then 784 pixels per row (the training file), the others 784 pixels
    (the test file); the first line is taken for a header when its first value is not an integer.
    """
    path = Path(path)
    columns = PIXELS + labelled
    try:
        with open(path) as file:
            first = file.readline()
    except OSError as error:
        raise CsvError(f"{path}: cannot be read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise CsvError(f"{path}: not a text file, so not a CSV file") from None
    header = not _is_integer(first.split(",")[0])
    try:
        table = pd.read_csv(path, header=None, skiprows=int(header), dtype=np.int16, skip_blank_lines=False).to_numpy()
    except (ValueError, OverflowError, pd.errors.ParserError, UnicodeDecodeError):
        table = None  # a value that is not a small integer, or a row longer than the first: find the line
    if table is None or table.shape[1] != columns or not _in_range(table, labelled):
        _first_bad_line(path, header, labelled)
    if len(table) != rows:
        raise CsvError(
            f"{path}: holds {len(table)} rows of images after {'the header' if header else 'line 1'}"
            f", expected {rows}{_kind(labelled)}"
        )
    images = table[:, int(labelled) :].astype(np.uint8).reshape(len(table), *IMAGE_SHAPE)
    return images, table[:, 0].astype(np.uint8) if labelled else None


def _kind(labelled: bool) -> str:
    return " (the course's training file)" if labelled else " (the course's test file)"


def _is_integer(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _in_range(table: np.ndarray, labelled: bool) -> bool:
    pixels = table[:, int(labelled) :]
    ok = pixels.min(initial=0) >= 0 and pixels.max(initial=0) <= 255
    return bool(ok and (not labelled or (table[:, 0].min(initial=0) >= 0 and table[:, 0].max(initial=0) < NUM_CLASSES)))


def _first_bad_line(path: Path, header: bool, labelled: bool) -> None:
    """Raise :class:`CsvError` for the first line of ``path`` that breaks a rule."""
    columns = PIXELS + labelled
    expected = "a label then 784 pixel values" if labelled else "784 pixel values and no label"
    with open(path, errors="replace") as file:  # bytes that are not text become values that are not integers
        for number, line in enumerate(file, start=1):
            if header and number == 1:
                continue
            values = line.rstrip("\r\n").split(",")
            where = f"{path}: line {number}"
            if len(values) != columns:
                label_column = not labelled and len(values) == columns + 1
                hint = " (a label column? the test file has none)" if label_column else ""
                raise CsvError(f"{where} holds {len(values)} values, expected {columns}: {expected}{hint}")
            for position, value in enumerate(values):
                what = "label" if labelled and position == 0 else f"pixel {position + 1 - labelled}"
                if not _is_integer(value):
                    raise CsvError(f"{where}: {what} is {value.strip()!r}, not an integer")
                low, high = (0, NUM_CLASSES - 1) if what == "label" else (0, 255)
                if not low <= int(value) <= high:
                    raise CsvError(f"{where}: {what} is {int(value)}, outside {low}-{high}")
    raise CsvError(f"{path}: cannot be read as CSV of {expected}")  # pandas refused what no line breaks
