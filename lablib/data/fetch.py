"""Fetch: find the four official files, verify every byte, and only then write them.

Sources are tried in order: a folder the user names (argument or ``$FASHION_MNIST_DIR``), Debian's
``dataset-fashion-mnist`` package, the official download. A source counts when it holds all four
files; then each must decompress to bytes whose SHA-256 is the published one, and a source that
fails that check is an error, never silently skipped. Debian's ``.gz`` headers differ from the
official ones, so only the decompressed bytes are compared.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from lablib.atomic import staged_dir
from lablib.data.fashion_mnist import APT_COMMAND, DEBIAN_DIR, ENV_VAR, FILES, OFFICIAL_URL, OfficialFile
from lablib.data.idx import decompress, parse_idx
from lablib.errors import LabError

PROVENANCE = "provenance.json"


class ChecksumError(LabError):
    """A file whose decompressed bytes are not the published ones."""


class DataUnavailableError(LabError):
    """No source holds the four files."""


@dataclass(frozen=True)
class FetchResult:
    source: str
    location: str
    sha256: dict[str, str]

    def provenance(self) -> dict[str, object]:
        return {"source": self.source, "location": self.location, "sha256": self.sha256}


def read_folder(folder: Path, files: Mapping[str, OfficialFile]) -> dict[str, bytes] | None:
    """The files' bytes if ``folder`` holds all of them, else ``None``."""
    if not all((folder / name).is_file() for name in files):
        return None
    return {name: (folder / name).read_bytes() for name in files}


def download(base_url: str, files: Mapping[str, OfficialFile], timeout: float = 30) -> dict[str, bytes] | None:
    """The files from ``base_url`` with a progress bar, or ``None`` if any request fails."""
    found = {}
    for name in files:
        try:
            with urllib.request.urlopen(base_url + name, timeout=timeout) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                chunks = []
                with tqdm(total=total, unit="B", unit_scale=True, desc=name) as bar:
                    while chunk := response.read(1 << 16):
                        chunks.append(chunk)
                        bar.update(len(chunk))
        except (urllib.error.URLError, OSError, TimeoutError):
            return None
        found[name] = b"".join(chunks)
    return found


def verify(blobs: Mapping[str, bytes], files: Mapping[str, OfficialFile], where: str) -> dict[str, str]:
    """SHA-256 of each decompressed file, checked against ``files`` and parsed as IDX."""
    hashes = {}
    for name, expected in files.items():
        path = Path(where) / name
        raw = decompress(path, blobs[name])
        actual = hashlib.sha256(raw).hexdigest()
        if actual != expected.sha256:
            raise ChecksumError(
                f"{path}: the SHA-256 of its decompressed bytes is {actual}, expected {expected.sha256}. "
                f"The file is corrupt or not the official one; nothing was written. Replace or remove it."
            )
        count = len(parse_idx(path, raw))
        if count != expected.count:
            raise ChecksumError(f"{path}: holds {count} items, expected {expected.count}")
        hashes[name] = actual
    return hashes


def write_atomically(dest: Path, blobs: Mapping[str, bytes], provenance: Mapping[str, object]) -> None:
    """Replace ``dest`` by a folder holding ``blobs`` and ``provenance.json``, all or nothing."""
    with staged_dir(dest) as staging:
        for name, blob in blobs.items():
            (staging / name).write_bytes(blob)
        (staging / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n")


def fetch(
    dest: Path,
    source_dir: Path | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    debian_dir: Path = DEBIAN_DIR,
    download_url: str | None = OFFICIAL_URL,
    files: Mapping[str, OfficialFile] = FILES,
) -> FetchResult:
    """Put the verified official files (still gzipped) and ``provenance.json`` into ``dest``.

    ``download_url=None`` turns the download off; ``files`` holds the expected hashes and counts.
    """
    user_dir = source_dir or (Path(env[ENV_VAR]) if env.get(ENV_VAR) else None)
    candidates: list[tuple[str, str, dict[str, bytes] | None]] = []
    if user_dir is not None:
        candidates.append(("folder", str(user_dir), read_folder(Path(user_dir), files)))
    candidates.append(("debian", str(debian_dir), read_folder(Path(debian_dir), files)))
    for kind, location, blobs in candidates:
        if blobs is not None:
            return _commit(dest, kind, location, blobs, files)
    if download_url is not None:
        blobs = download(download_url, files)
        if blobs is not None:
            return _commit(dest, "download", download_url, blobs, files)
    looked = f" (looked in {user_dir} and {debian_dir})" if user_dir else f" (looked in {debian_dir})"
    raise DataUnavailableError(
        f"Fashion-MNIST not found{looked}. Provide the four .gz files in one of three ways:\n"
        f"  1. a folder holding them: set data.source_dir in params.yaml or the {ENV_VAR} environment variable;\n"
        f"  2. Debian's package: {APT_COMMAND};\n"
        f"  3. internet access to {OFFICIAL_URL} for the official download."
    )


def _commit(
    dest: Path, kind: str, location: str, blobs: dict[str, bytes], files: Mapping[str, OfficialFile]
) -> FetchResult:
    result = FetchResult(kind, location, verify(blobs, files, location))
    write_atomically(dest, blobs, result.provenance())
    return result
