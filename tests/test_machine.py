"""The machine a training ran on: recorded beside its metrics, and a warning where the committed baseline's differs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from lablib import machine

REPO = Path(__file__).resolve().parents[1]


def test_describe_names_numpys_blas_its_kernel_and_threads():
    here = machine.describe()
    assert set(machine.BITS) <= here.keys()
    assert here["blas_threads"] >= 1 and here["cores"] >= 1
    assert here["blas_kernel"] in machine.bits_key(here) and f"{here['blas_threads']} threads" in machine.bits_key(here)


def test_the_warning_names_both_machines_and_only_when_the_bits_can_differ():
    here = machine.describe()
    assert machine.baseline_mismatch(here, None, "train_numpy") is None
    assert machine.baseline_mismatch(here, {**here, "cpu": "another CPU", "cores": 64}, "train_numpy") is None
    other = {**here, "blas_kernel": "Sandybridge", "blas_threads": 8}
    warning = machine.baseline_mismatch(here, other, "train_numpy")
    assert warning.startswith("train_numpy: this machine runs ")
    assert "Sandybridge, 8 threads" in warning and f"{here['blas_kernel']}, {here['blas_threads']} threads" in warning
    assert "within the spread over seeds" in warning


def test_the_committed_record_is_read_from_git_head(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "dvclive" / "numpy" / "machine.json"
    assert machine.committed(path.relative_to(tmp_path)) is None  # not a repository
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"blas_kernel": "Haswell"}))
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "baseline"], check=True)
    path.write_text(json.dumps({"blas_kernel": "Zen"}))  # the working copy is not the baseline
    assert machine.committed(path.relative_to(tmp_path)) == {"blas_kernel": "Haswell"}


def test_a_training_warns_before_it_starts_and_records_its_machine(tmp_path, monkeypatch, capsys):
    from lablib.params import load_params
    from lablib.train import run
    from lablib.train.loop import Outputs

    monkeypatch.chdir(tmp_path)
    live = tmp_path / "dvclive" / "numpy"
    live.mkdir(parents=True)
    (live / "machine.json").write_text(json.dumps({**machine.describe(), "blas_kernel": "Sandybridge"}))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "baseline"], check=True)
    started = []

    class FakeTrainer:
        def __init__(self, *args):
            started.append(capsys.readouterr().err)  # what was said before training began

        def run(self):
            return {"trained": True}

    monkeypatch.setattr(run, "Trainer", FakeTrainer)
    monkeypatch.setattr(run.Pool, "load", staticmethod(lambda prepared, split: None))
    monkeypatch.setattr(run, "initial_state", lambda params: {})
    outputs = Outputs(tmp_path / "models" / "numpy.npz", live, tmp_path / "ck.npz")
    params = load_params(REPO / "params.yaml")
    assert run.train("numpy", params, tmp_path, tmp_path, outputs) == {"trained": True}
    assert "Warning: train_numpy: this machine runs" in started[0] and "Sandybridge" in started[0]
    assert json.loads((live / "machine.json").read_text()) == machine.describe()
