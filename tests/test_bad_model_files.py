"""Damaged or foreign files where a checkpoint or a model should be: one message naming the file, no traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from lablib.train.checkpoint import ArchiveError, load_npz, save_npz
from stages.evaluate import main as evaluate_main
from stages.train import main as train_main

REPO = Path(__file__).resolve().parents[1]


def truncated(path: Path) -> None:
    save_npz(path, {"w": np.arange(4096, dtype=np.float32)})
    path.write_bytes(path.read_bytes()[:1000])


def foreign(path: Path) -> None:
    save_npz(path, {"weights": np.ones(3)})  # a valid archive, but no training state


def small_run(root: Path) -> Path:
    """params.yaml for a tiny model and the prepared arrays and folds a training reads."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(model="lab2023_cnn", width=2, epochs=1, batch_size=20)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    rng = np.random.default_rng(0)
    (root / "prepared").mkdir()
    (root / "split").mkdir()
    for split, per_class in (("train", 4), ("val", 2), ("test", 2)):
        labels = np.repeat(np.arange(10), per_class).astype(np.int64)
        np.save(root / f"prepared/{split}_labels.npy", labels)
        np.save(root / f"prepared/{split}_images.npy", rng.uniform(-0.5, 0.5, (len(labels), 1, 28, 28)).astype("f4"))
    np.save(root / "split/folds.npy", np.arange(60) % 3)
    return root


def train_stage(root: Path):
    args = ["numpy", "--params", str(root / "params.yaml"), "--prepared", str(root / "prepared")]
    args += ["--split", str(root / "split"), "--models", str(root / "models"), "--live", str(root / "live")]
    return CliRunner().invoke(train_main, [*args, "--checkpoints", str(root / "checkpoints")])


@pytest.mark.parametrize(("spoil", "what"), [(truncated, "is not an .npz archive"), (foreign, "holds no training")])
def test_unreadable_checkpoint_stops_training_with_one_message(tmp_path, spoil, what):
    root = small_run(tmp_path)
    checkpoint = root / "checkpoints/numpy.npz"
    checkpoint.parent.mkdir()
    spoil(checkpoint)
    result = train_stage(root)
    assert result.exit_code == 1, result.output
    assert str(checkpoint) in result.output and what in result.output, result.output
    assert f"rm {checkpoint}" in result.output and "Traceback" not in result.output
    assert not (root / "models/numpy.npz").exists()
    checkpoint.unlink()
    assert train_stage(root).exit_code == 0, "deleting the checkpoint, as the message says, lets it train"


@pytest.mark.parametrize("content", [b"a text file, not an archive\n", b"\x93NUMPY fake .npy header"])
def test_model_file_that_is_not_an_npz_is_named_without_pickle_advice(tmp_path, content):
    root = small_run(tmp_path)
    (root / "models").mkdir()
    (root / "models/numpy.npz").write_bytes(content)
    args = ["numpy", "--params", str(root / "params.yaml"), "--prepared", str(root / "prepared")]
    result = CliRunner().invoke(evaluate_main, [*args, "--models", str(root / "models"), "--out", str(root / "ev")])
    assert result.exit_code == 1
    assert f"{root / 'models/numpy.npz'} is not an .npz archive" in result.output, result.output
    assert "pickle" not in result.output and "Traceback" not in result.output
    assert not (root / "ev").exists()


def test_load_npz_reads_what_save_npz_wrote_and_refuses_a_truncated_copy(tmp_path):
    save_npz(tmp_path / "a.npz", {"x": np.arange(3)})
    assert load_npz(tmp_path / "a.npz")["x"].tolist() == [0, 1, 2]
    truncated(tmp_path / "b.npz")
    with pytest.raises(ArchiveError, match=r"b\.npz is not an \.npz archive"):
        load_npz(tmp_path / "b.npz")
    with pytest.raises(FileNotFoundError):
        load_npz(tmp_path / "missing.npz")
