"""fetch: the source order, verification before any write, the all-or-nothing swap, and the message
when nothing is available. Downloads go to file: URLs; conftest refuses any other."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lablib.data.fashion_mnist import APT_COMMAND, ENV_VAR, OFFICIAL_URL, SHA256, TRAIN_IMAGES, TRAIN_LABELS
from lablib.data.fetch import PROVENANCE, ChecksumError, DataUnavailableError, fetch
from lablib.data.idx import IdxError
from tests.data.conftest import Synthetic, idx_bytes, make_synthetic, sha256_of_gz, snapshot, write_gz

ORDER = ("source_dir", "env", "debian", "download")


def run(dest: Path, expected: Synthetic, tmp_path: Path, **kwargs):
    """fetch with no environment, no Debian folder and no download unless a test gives them."""
    kwargs = {"env": {}, "debian_dir": tmp_path / "no-debian", "download": False, **kwargs}
    return fetch(dest, expected=expected.expected, counts=expected.counts, **kwargs)


def sources_from(winner: str, tmp_path: Path) -> tuple[dict, dict[str, Synthetic]]:
    """fetch's arguments offering ``winner`` and every later source, each with different content."""
    made = {
        kind: make_synthetic(tmp_path / kind, seed=i)
        for i, kind in enumerate(ORDER)
        if ORDER.index(kind) >= ORDER.index(winner)
    }
    kwargs = {"env": {}, "debian_dir": tmp_path / "no-debian", "download": False}
    if "source_dir" in made:
        kwargs["source_dir"] = made["source_dir"].folder
    if "env" in made:
        kwargs["env"] = {ENV_VAR: str(made["env"].folder)}
    if "debian" in made:
        kwargs["debian_dir"] = made["debian"].folder
    if "download" in made:
        kwargs.update(download=True, url=made["download"].folder.as_uri() + "/")
    return kwargs, made


def tampered_copy(source: Synthetic, folder: Path) -> Path:
    """``source``'s files with one pixel of the training images changed, still a valid gzip IDX file."""
    shutil.copytree(source.folder, folder)
    images = source.arrays[TRAIN_IMAGES].copy()
    images[0, 0, 0] ^= 1
    write_gz(folder / TRAIN_IMAGES, idx_bytes(images))
    return folder


@pytest.fixture
def previous(tmp_path: Path) -> Path:
    """A ``dest`` holding an earlier fetch and a stray file, to check it survives a failed fetch."""
    dest = tmp_path / "data" / "raw"
    old = make_synthetic(tmp_path / "old", seed=9)
    run(dest, old, tmp_path, source_dir=old.folder)
    (dest / "note.txt").write_text("kept\n")
    return dest


def assert_untouched(dest: Path, before: dict[str, bytes], siblings: list[str]) -> None:
    assert snapshot(dest) == before
    assert sorted(p.name for p in dest.parent.iterdir()) == siblings, "a temporary folder was left behind"


@pytest.mark.parametrize("winner", ORDER)
def test_source_order(tmp_path, winner):
    kwargs, made = sources_from(winner, tmp_path)
    dest = tmp_path / "raw"
    # expected holds the winner's hashes only: any other source would be a ChecksumError.
    result = fetch(dest, expected=made[winner].expected, counts=made[winner].counts, **kwargs)
    assert result.source == winner
    assert result.sha256 == made[winner].expected
    assert snapshot(dest) == {**snapshot(made[winner].folder), PROVENANCE: (dest / PROVENANCE).read_bytes()}


@pytest.mark.parametrize("named", ["source_dir", "env"])
@pytest.mark.parametrize("state", ["missing", "partial"])
def test_a_folder_the_user_names_is_honoured_or_refused_never_passed_over(tmp_path, synthetic, named, state):
    folder = tmp_path / "named"
    if state == "partial":
        shutil.copytree(synthetic.folder, folder)
        (folder / TRAIN_LABELS).unlink()
    # Debian's folder holds good files: passing over the named folder would succeed.
    kwargs = {"source_dir": folder} if named == "source_dir" else {"env": {ENV_VAR: str(folder)}}
    with pytest.raises(DataUnavailableError) as caught:
        run(tmp_path / "raw", synthetic, tmp_path, debian_dir=synthetic.folder, **kwargs)
    message = str(caught.value)
    setting = "data.source_dir in params.yaml" if named == "source_dir" else f"${ENV_VAR}"
    problem = "does not exist" if state == "missing" else f"lacks {TRAIN_LABELS}"
    assert message.startswith(f"{setting} names {folder}, which {problem}.")
    assert not (tmp_path / "raw").exists()


def test_incomplete_debian_folder_is_passed_over(tmp_path, synthetic):
    partial = tmp_path / "partial"
    shutil.copytree(synthetic.folder, partial)
    (partial / TRAIN_LABELS).unlink()
    url = synthetic.folder.as_uri() + "/"
    result = run(tmp_path / "raw", synthetic, tmp_path, debian_dir=partial, download=True, url=url)
    assert result.source == "download"


def test_empty_env_var_is_ignored(tmp_path, synthetic):
    result = run(tmp_path / "raw", synthetic, tmp_path, env={ENV_VAR: ""}, debian_dir=synthetic.folder)
    assert result.source == "debian"


def test_files_are_copied_as_found_with_provenance(tmp_path):
    source = make_synthetic(tmp_path / "source", mtime=777)  # another gzip header, as Debian's files have
    dest = tmp_path / "raw"
    result = run(dest, source, tmp_path, source_dir=source.folder)
    for name in source.expected:
        assert (dest / name).read_bytes() == (source.folder / name).read_bytes()
        assert sha256_of_gz(dest / name) == source.expected[name]
    assert result.location == str(source.folder.absolute())
    assert (
        json.loads((dest / PROVENANCE).read_text())
        == result.provenance
        == {
            "source": "source_dir",
            "location": str(source.folder.absolute()),
            "sha256": source.expected,
        }
    )


def test_replaces_an_existing_dest_and_leaves_no_temporary_folder(tmp_path, previous, synthetic):
    result = run(previous, synthetic, tmp_path, source_dir=synthetic.folder)
    assert sorted(p.name for p in previous.iterdir()) == sorted([*synthetic.expected, PROVENANCE])
    assert result.sha256 == synthetic.expected
    assert sorted(p.name for p in previous.parent.iterdir()) == ["raw"]


def test_tampered_file_is_refused_and_dest_untouched(tmp_path, previous, synthetic):
    before, siblings = snapshot(previous), sorted(p.name for p in previous.parent.iterdir())
    tampered = tampered_copy(synthetic, tmp_path / "tampered")
    with pytest.raises(ChecksumError) as caught:
        run(previous, synthetic, tmp_path, source_dir=tampered)
    message = str(caught.value)
    assert str(tampered.absolute() / TRAIN_IMAGES) in message
    assert synthetic.expected[TRAIN_IMAGES] in message
    assert sha256_of_gz(tampered / TRAIN_IMAGES) in message
    assert_untouched(previous, before, siblings)


@pytest.mark.parametrize("corrupt", ["source_dir", "env", "debian", "download"])
def test_corrupt_source_is_an_error_not_a_fallback(tmp_path, synthetic, corrupt):
    # Every later source is good; a fallback would succeed.
    tampered = tampered_copy(synthetic, tmp_path / "tampered")
    kwargs = {"download": True, "url": synthetic.folder.as_uri() + "/", "debian_dir": synthetic.folder}
    if corrupt == "source_dir":
        kwargs.update(source_dir=tampered, env={ENV_VAR: str(synthetic.folder)})
    elif corrupt == "env":
        kwargs.update(env={ENV_VAR: str(tampered)})
    elif corrupt == "debian":
        kwargs.update(debian_dir=tampered)
    else:
        kwargs.update(debian_dir=tmp_path / "no-debian", url=tampered.as_uri() + "/")
    with pytest.raises(ChecksumError, match=TRAIN_IMAGES):
        run(tmp_path / "raw", synthetic, tmp_path, **kwargs)
    assert not (tmp_path / "raw").exists()


def test_file_that_does_not_decompress_leaves_dest_untouched(tmp_path, previous, synthetic):
    before, siblings = snapshot(previous), sorted(p.name for p in previous.parent.iterdir())
    broken = tmp_path / "broken"
    shutil.copytree(synthetic.folder, broken)
    (broken / TRAIN_LABELS).write_bytes((broken / TRAIN_LABELS).read_bytes()[:-6])
    with pytest.raises(IdxError, match=f"{broken.absolute() / TRAIN_LABELS}: corrupt gzip stream"):
        run(previous, synthetic, tmp_path, source_dir=broken)
    assert_untouched(previous, before, siblings)


def test_wrong_item_count_is_refused(tmp_path, previous, synthetic):
    before, siblings = snapshot(previous), sorted(p.name for p in previous.parent.iterdir())
    counts = {**synthetic.counts, TRAIN_LABELS: 31}
    with pytest.raises(ChecksumError, match="holds 30 items, expected 31"):
        fetch(previous, synthetic.folder, env={}, download=False, expected=synthetic.expected, counts=counts)
    assert_untouched(previous, before, siblings)


def test_labels_out_of_range_are_refused_before_writing(tmp_path, synthetic):
    bad = tmp_path / "bad"
    shutil.copytree(synthetic.folder, bad)
    labels = synthetic.arrays[TRAIN_LABELS].copy()
    labels[3] = 11
    write_gz(bad / TRAIN_LABELS, idx_bytes(labels))
    expected = {**synthetic.expected, TRAIN_LABELS: sha256_of_gz(bad / TRAIN_LABELS)}
    with pytest.raises(IdxError, match=r"outside 0\.\.9"):
        fetch(tmp_path / "raw", bad, env={}, download=False, expected=expected, counts=synthetic.counts)
    assert not (tmp_path / "raw").exists()


def test_nothing_available_lists_the_three_ways(tmp_path, synthetic):
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(synthetic.folder / TRAIN_IMAGES, partial)
    with pytest.raises(DataUnavailableError) as caught:
        fetch(tmp_path / "raw", env={}, debian_dir=partial, download=False)
    message = str(caught.value)
    assert f"{partial}: lacks train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz" in message
    assert f"{OFFICIAL_URL}: download turned off" in message
    for way in ("data.source_dir", ENV_VAR, APT_COMMAND, f"internet access to {OFFICIAL_URL}"):
        assert way in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["partial", "source"]
    with pytest.raises(DataUnavailableError, match=f"{tmp_path / 'no-debian'}: does not exist"):
        fetch(tmp_path / "raw", env={}, debian_dir=tmp_path / "no-debian", download=False)


def test_failed_download_counts_as_unavailable(tmp_path, synthetic):
    url = (tmp_path / "nowhere").as_uri() + "/"
    with pytest.raises(DataUnavailableError, match=f"{url}: download failed"):
        run(tmp_path / "raw", synthetic, tmp_path, download=True, url=url)


def test_download_defaults_to_the_official_url(tmp_path):
    # conftest's guard stops the request, which proves where it was going.
    with pytest.raises(AssertionError, match=f"network: {OFFICIAL_URL}{TRAIN_IMAGES}"):
        fetch(tmp_path / "raw", env={}, debian_dir=tmp_path / "no-debian")


@pytest.mark.realdata
def test_real_files_match_the_published_hashes(tmp_path, real_data_dir):
    result = fetch(tmp_path / "raw", real_data_dir, env={}, download=False)
    assert result.sha256 == SHA256
    for name, sha256 in SHA256.items():
        assert sha256_of_gz(tmp_path / "raw" / name) == sha256
        assert (tmp_path / "raw" / name).read_bytes() == (real_data_dir / name).read_bytes()


def test_synthetic_helpers_match_the_reader(synthetic):
    # The fixtures the tests above rely on are what the reader returns.
    with gzip.open(synthetic.folder / TRAIN_LABELS) as file:
        assert file.read() == idx_bytes(synthetic.arrays[TRAIN_LABELS])
    assert np.bincount(synthetic.arrays[TRAIN_LABELS]).tolist() == [3] * 10
