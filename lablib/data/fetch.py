"""Fetch: find the four official files, verify every byte, and only then write them.

Sources, in order: the folder passed as ``source_dir`` (else ``$FASHION_MNIST_DIR``), Debian's
``dataset-fashion-mnist`` package, the official download. A folder the user names is honoured or
refused, never passed over: if it does not hold all four files, fetch stops and says so. Debian's
folder is a source when it holds all four files and is passed over otherwise, which is safe because
whichever source is used must yield the same verified bytes. A source that holds the files but fails
verification is an error, never skipped: a corrupt copy deserves attention rather than a fallback.

Verification compares the SHA-256 of each decompressed file (Debian's ``.gz`` headers differ from the
official ones, the streams do not) and reads it with the strict IDX reader. Only then is ``dest``
replaced, all at once, by the four files as found (still gzipped) and ``provenance.json``.

The course's CSV files are the other source (:func:`fetch_course`): once every value is verified they
are written in the official files' format, under the official names, so that every later stage reads
one format; the test file's labels come from the official test images when a folder holds them.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lablib.atomic import staged_dir
from lablib.data.course_csv import TEST_ROWS, TRAIN_ROWS, read_course_csv
from lablib.data.fashion_mnist import (
    APT_COMMAND,
    COUNTS,
    DEBIAN_DIR,
    ENV_VAR,
    OFFICIAL_URL,
    SHA256,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
)
from lablib.data.idx import decompress, encode_idx, load_images, load_labels
from lablib.errors import LabError

PROVENANCE = "provenance.json"
COURSE_CSV = "course_csv"


class ChecksumError(LabError, ValueError):
    """A file whose decompressed bytes are not the published ones."""


class DataUnavailableError(LabError):
    """No source holds the four files."""


@dataclass(frozen=True)
class FetchResult:
    """Which source was used (``source_dir``, ``env``, ``debian``, ``download`` or ``course_csv``), its
    folder, base URL or training file, and the verified SHA-256 of each file (decompressed for the
    official files, as found for CSV files). ``test_labels`` says where the test labels came from:
    ``official`` (the official labels file, or for CSV files the official test images matched to its
    rows) or ``unknown`` (a course test file and no official files to match it with)."""

    source: str
    location: str
    sha256: dict[str, str]
    test_labels: str = "official"

    @property
    def provenance(self) -> dict[str, object]:
        """What ``fetch`` writes to ``dest/provenance.json``."""
        provenance = {"source": self.source, "location": self.location, "sha256": dict(self.sha256)}
        if self.source == COURSE_CSV:
            provenance["test_labels"] = self.test_labels
        return provenance


def fetch(
    dest: Path,
    source_dir: Path | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    debian_dir: Path = DEBIAN_DIR,
    download: bool = True,
    url: str = OFFICIAL_URL,
    timeout: float = 30.0,
    expected: Mapping[str, str] = SHA256,
    counts: Mapping[str, int] = COUNTS,
) -> FetchResult:
    """Replace ``dest`` by a folder of the verified files (as found, still gzipped) and ``provenance.json``.

    ``source_dir`` (else ``env[FASHION_MNIST_DIR]``) names the folder to take the files from; when it does
    not hold them :class:`DataUnavailableError` says so, whatever the other sources hold.
    ``expected`` maps each file name to the SHA-256 of its decompressed bytes and ``counts`` to its
    number of items; ``url`` is the base the names are appended to. Raises :class:`ChecksumError` (or
    :class:`~lablib.data.idx.IdxError` for a file the strict IDX reader refuses) leaving ``dest`` as it was,
    and :class:`DataUnavailableError` when no source holds the files.
    """
    names = list(expected)
    named = None
    if source_dir is not None:
        named = ("source_dir", Path(source_dir), "data.source_dir in params.yaml", "set it to null")
    elif env.get(ENV_VAR):
        named = ("env", Path(env[ENV_VAR]), f"${ENV_VAR}", "unset it")
    if named is not None:
        kind, folder, name, other = named
        if lacking := _lacking(folder, names):
            raise DataUnavailableError(
                f"{name} names {folder}, which {lacking}. Point it at a folder holding the four files "
                f"({', '.join(names)}), or {other} to use Debian's package or the official download."
            )
        return _install(dest, kind, str(folder.absolute()), _read(folder, names), expected, counts)
    debian = Path(debian_dir)
    lacking = _lacking(debian, names)
    if lacking is None:
        return _install(dest, "debian", str(debian.absolute()), _read(debian, names), expected, counts)
    tried = [f"{debian}: {lacking}"]
    if download:
        try:
            blobs = _download(url, names, timeout)
        except (OSError, http.client.HTTPException) as error:
            tried.append(f"{url}: download failed ({error})")
        else:
            return _install(dest, "download", url, blobs, expected, counts)
    else:
        tried.append(f"{url}: download turned off")
    raise DataUnavailableError(
        "Fashion-MNIST is not available. Looked at:\n"
        + "".join(f"  - {line}\n" for line in tried)
        + f"Provide the four files ({', '.join(names)}) in one of three ways:\n"
        f"  1. a folder holding them: data.source_dir in params.yaml or the {ENV_VAR} environment variable;\n"
        f"  2. Debian's package: {APT_COMMAND}\n"
        f"  3. internet access to {url} for the official download."
    )


def fetch_course(
    dest: Path,
    train_csv: Path,
    test_csv: Path,
    source_dir: Path | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    debian_dir: Path = DEBIAN_DIR,
    rows: tuple[int, int] = (TRAIN_ROWS, TEST_ROWS),
) -> FetchResult:
    """Replace ``dest`` by the course's CSV files, verified, in the official files' format and names,
    and ``provenance.json``; a file that breaks a rule raises :class:`~lablib.data.course_csv.CsvError`
    naming its line, leaving ``dest`` as it was.

    The test file has no labels; they are taken from the official test images when the first of
    ``source_dir``, ``env[FASHION_MNIST_DIR]`` and ``debian_dir`` that holds the official test files
    holds every image of the test file (``t10k-labels-idx1-ubyte.gz`` is then written, in the test
    file's order); else the labels stay unknown and that file is not written. ``rows`` are the row
    counts the two files must have.
    """
    train_csv, test_csv = Path(train_csv), Path(test_csv)
    images, labels = read_course_csv(train_csv, labelled=True, rows=rows[0])
    test_images, _ = read_course_csv(test_csv, labelled=False, rows=rows[1])
    test_labels = _official_labels(test_images, [source_dir, env.get(ENV_VAR), debian_dir])
    files = {TRAIN_IMAGES: images, TRAIN_LABELS: labels, TEST_IMAGES: test_images}
    if test_labels is not None:
        files[TEST_LABELS] = test_labels
    hashes = {str(path): hashlib.sha256(path.read_bytes()).hexdigest() for path in (train_csv, test_csv)}
    known = "unknown" if test_labels is None else "official"
    result = FetchResult(COURSE_CSV, str(train_csv.absolute()), hashes, known)
    with staged_dir(dest) as staging:
        for name, array in files.items():
            (staging / name).write_bytes(gzip.compress(encode_idx(array), compresslevel=1, mtime=0))
        (staging / PROVENANCE).write_text(json.dumps(result.provenance, indent=2) + "\n")
    return result


def _official_labels(images: np.ndarray, folders: Iterable[Path | str | None]) -> np.ndarray | None:
    """The official label of each of ``images`` (the official test images in another order), from the
    first folder that holds the official test files; None when none does or an image is not among them."""
    names = [TEST_IMAGES, TEST_LABELS]
    for folder in (Path(f) for f in folders if f):
        if _lacking(folder, names) is None:
            raw = {name: decompress(folder / name, data=blob) for name, blob in _read(folder, names).items()}
            for name, content in raw.items():
                if hashlib.sha256(content).hexdigest() != SHA256[name]:
                    raise ChecksumError(
                        f"{folder / name}: not the official file (its SHA-256 differs); replace or remove it"
                    )
            official = load_images(folder / TEST_IMAGES, raw=raw[TEST_IMAGES])
            official_labels = load_labels(folder / TEST_LABELS, raw=raw[TEST_LABELS])
            label_of = dict(zip((image.tobytes() for image in official), official_labels, strict=True))
            found = [label_of.get(image.tobytes()) for image in images]
            return None if None in found else np.array(found, dtype=np.uint8)
    return None


def _lacking(folder: Path, names: Iterable[str]) -> str | None:
    """What keeps ``folder`` from being a source ("does not exist", "lacks ..."), or None."""
    if not folder.is_dir():
        return "does not exist"
    missing = [name for name in names if not (folder / name).is_file()]
    return "lacks " + ", ".join(missing) if missing else None


def _read(folder: Path, names: Iterable[str]) -> dict[str, bytes]:
    try:
        return {name: (folder / name).read_bytes() for name in names}
    except OSError as error:
        raise DataUnavailableError(f"{error.filename}: cannot be read ({error.strerror})") from None


def _kept(dest: Path) -> str:
    return f" {dest} was left as it was." if dest.exists() else ""


def _download(url: str, names: Iterable[str], timeout: float) -> dict[str, bytes]:
    """Each file from ``url + name`` with a progress bar; any network failure raises."""
    blobs = {}
    for name in names:
        with urllib.request.urlopen(url + name, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            chunks = []
            with tqdm(total=total, unit="B", unit_scale=True, desc=name) as bar:
                while chunk := response.read(1 << 16):
                    chunks.append(chunk)
                    bar.update(len(chunk))
        blobs[name] = b"".join(chunks)
    return blobs


def _install(
    dest: Path,
    source: str,
    location: str,
    blobs: Mapping[str, bytes],
    expected: Mapping[str, str],
    counts: Mapping[str, int],
) -> FetchResult:
    """Verify every file, then swap ``dest`` for a folder holding them and the provenance."""
    hashes = {}
    for name, blob in blobs.items():
        path = f"{location.rstrip('/')}/{name}"
        raw = decompress(path, data=blob)
        actual = hashlib.sha256(raw).hexdigest()
        if actual != expected[name]:
            raise ChecksumError(
                f"{path}: the SHA-256 of its decompressed bytes is {actual}, expected {expected[name]}. "
                f"It is corrupt or not the official file.{_kept(dest)}"
            )
        items = len((load_images if "-images-" in name else load_labels)(path, raw=raw))
        if items != counts[name]:
            raise ChecksumError(f"{path}: holds {items} items, expected {counts[name]}.{_kept(dest)}")
        hashes[name] = actual
    result = FetchResult(source, location, hashes)
    with staged_dir(dest) as staging:
        for name, blob in blobs.items():
            (staging / name).write_bytes(blob)
        (staging / PROVENANCE).write_text(json.dumps(result.provenance, indent=2) + "\n")
    return result
