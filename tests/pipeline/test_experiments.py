"""Experiments end to end: series on DVC's queue (run again, forced, killed and resumed, NumPy only),
their tables, sharing the cache through the DVC remote, and one series run by two machines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import yaml
from click.testing import CliRunner

from lablib.experiments.cli import main
from lablib.experiments.config import series_rows
from lablib.experiments.queue import queue_status, thread_share
from lablib.params import FRAMEWORKS
from tests.pipeline.conftest import Workspace

slow = pytest.mark.slow

TINY = {"model": "lab2023_cnn", "width": 4, "batch_size": 20, "sampling": "shuffle"}
# Two epochs of batch 1 on 2,000 images: an epoch lasts long enough to be interrupted in.
SLOW_ROW = {"batch_size": 1, "data.subset": 2000, "epochs": 3}
SERIES = {
    "presets": {"tiny": TINY, "tiny_numpy": {**TINY, "targets": ["evaluate_numpy"]}},
    "quick": {"data.subset": 200, "data.val_per_class": 10, "epochs": 1, "evaluate.feature_samples": 50},
    "series": {
        "lrs": {"preset": "tiny", "rows": {"small": {"lr": 0.001}, "large": {"lr": 0.02}}},
        "resume": {"preset": "tiny_numpy", "seeds": [0, 1], "rows": {"first": {"lr": 0.001}, "slow": SLOW_ROW}},
        "resume_ref": {"preset": "tiny_numpy", "seeds": [0, 1], "rows": {"first": {"lr": 0.001}, "slow": SLOW_ROW}},
        "lone": {"preset": "tiny", "rows": {"only": {"lr": 0.005}}},
        "spread": {"preset": "tiny_numpy", "seeds": [0, 1], "rows": {"a": {"lr": 0.005}}},
    },
}
ACCURACY = ["row", "numpy val acc %", "numpy test acc %"]
SPREAD = [*ACCURACY, *(f"numpy {m} acc % {stat}" for m in ("val", "test") for stat in ("sd", "min", "max")), "seeds"]


def experiments(ws: Workspace, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return ws.run("python", "-m", "lablib.experiments", "--config", "series.yaml", *args, check=check)


def run_series(ws: Workspace, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return experiments(ws, "series", name, "--poll-seconds", "1", "--out", "tables", *args, check=check)


def exp_revs(ws: Workspace) -> dict[str, str]:
    """Experiment name -> commit of every finished experiment of HEAD."""
    shown = json.loads(ws.run("dvc", "exp", "show", "--json").stdout)
    return {
        exp["name"]: exp["revs"][0]["rev"]
        for commit in shown
        for exp in commit.get("experiments") or []
        if (exp.get("executor") or {}).get("state") in (None, "success")
    }


@pytest.fixture(scope="module")
def repo(workspace_factory):
    ws = workspace_factory({**TINY, "epochs": 1})
    (ws.root / "series.yaml").write_text(yaml.safe_dump(SERIES, sort_keys=False))
    ws.run("dvc", "repro")
    ws.commit("baseline")
    return ws


def test_queue_status_is_read_by_task_id():
    text = (
        "Task     Name    Created       Status\n"
        "3b1bc5f  a1      09:19 PM      Running\n"
        "0f1e2d3  a1      Oct 01, 2024  Success\n"
        "9a8b7c6          09:20 PM      Queued\n\n"
        "Worker status: 1 active, 1 idle\n"
    )
    assert queue_status(text) == ({"3b1bc5f": "Running", "0f1e2d3": "Success", "9a8b7c6": "Queued"}, 2)
    assert queue_status("No experiment tasks in the queue.\n\nWorker status: 0 active, 0 idle\n") == ({}, 0)


def test_targets_come_from_the_row_the_series_or_the_preset():
    config = {
        "presets": {"p": {"lr": 0.1, "targets": ["train_numpy"]}},
        "quick": {"epochs": 1},
        "series": {
            "s": {"preset": "p", "rows": {"a": {}, "b": {"targets": ["evaluate_torch"], "width": 8}}},
            "t": {"preset": "p", "targets": [], "rows": {"c": {}}},
        },
    }
    a, b = series_rows(config, "s", quick=True)
    assert (a.name, a.targets, dict(a.settings)) == ("s-a-quick", ("train_numpy",), {"lr": 0.1, "epochs": 1})
    assert (b.targets, dict(b.overrides)) == (("evaluate_torch",), {"width": 8})
    assert series_rows(config, "t", quick=False)[0].targets == ()
    with pytest.raises(Exception, match="series s has no row 'z'; rows: a, b"):
        series_rows(config, "s", quick=False, only=["z"])


@slow
def test_series_runs_on_the_queue_and_tables_each_row(repo):
    result = run_series(repo, "lrs", "--jobs", "2", "--quick")
    table = pd.read_csv(repo.root / "tables/lrs-quick.csv")
    assert table["row"].tolist() == ["small", "large"]
    assert table["overrides"].tolist() == ["lr=0.001", "lr=0.02"]
    assert table["jobs"].tolist() == [2, 2] and (table["threads per job"] == thread_share(2)).all()
    for column in ("numpy val acc %", "torch val acc %", "numpy test acc %", "torch test acc %"):
        assert table[column].between(0, 100).all(), result.stdout
    assert "targets" not in table, "a series of whole-pipeline rows needs no targets column"
    assert {"lrs-small-quick", "lrs-large-quick"} <= exp_revs(repo).keys()
    head = repo.run("git", "rev-parse", "--short", "HEAD").stdout.strip()
    title = (repo.root / "tables/lrs-quick.md").read_text().splitlines()[0]
    assert title == f"### Series lrs (quick), run on commit {head}"


@slow
def test_a_lone_row_trains_its_two_frameworks_side_by_side(repo):
    result = run_series(repo, "lone", "--jobs", "2", "--quick")
    assert f"running 2 trainings on 2 queue workers, {thread_share(2)} threads each" in result.stdout
    assert {"lone-only-quick-train_numpy", "lone-only-quick-train_torch", "lone-only-quick"} <= exp_revs(repo).keys()
    logs = [log.read_text() for log in (repo.root / ".dvc/tmp/exps/run").glob("*/*.out")]
    (row_log,) = [log for log in logs if "Running stage 'evaluate_numpy'" in log and "lone" in log]
    for framework in FRAMEWORKS:
        assert f"Stage 'train_{framework}' is cached - skipping run" in row_log, row_log
    table = pd.read_csv(repo.root / "tables/lone-quick.csv")
    assert table["row"].tolist() == ["only"] and table["jobs"].tolist() == [2]
    assert table[["numpy test acc %", "torch test acc %"]].notna().all(axis=None)


@slow
def test_series_run_again_keeps_finished_rows(repo):
    before = exp_revs(repo)
    table = (repo.root / "tables/lrs-quick.md").read_text()
    result = run_series(repo, "lrs", "--jobs", "2", "--quick")
    head = repo.run("git", "rev-parse", "--short", "HEAD").stdout.strip()
    kept = f"lrs-small-quick: finished earlier (on commit {head}) with the same code, parameters and targets; kept"
    assert kept in result.stdout, result.stdout
    assert "lrs-large-quick: finished earlier" in result.stdout
    assert exp_revs(repo) == before
    assert (repo.root / "tables/lrs-quick.md").read_text() == table


@slow
def test_force_reruns_the_rows_even_when_finished(repo):
    before = exp_revs(repo)
    run_series(repo, "lrs", "--quick", "--force", "--rows", "small")
    after = exp_revs(repo)
    assert after["lrs-small-quick"] != before["lrs-small-quick"], "the forced row was not run again"
    assert after["lrs-large-quick"] == before["lrs-large-quick"], "a row that was not chosen ran"


@slow
def test_applied_experiment_reproduces_its_metrics(repo):
    table = pd.read_csv(repo.root / "tables/lrs-quick.csv")
    repo.run("dvc", "exp", "apply", "lrs-large-quick")
    metrics = json.loads((repo.root / "dvclive/numpy/metrics.json").read_text())
    assert round(100 * metrics["best_val_acc"], 2) == table.loc[1, "numpy val acc %"]
    status = repo.run("dvc", "status")
    assert "up to date" in status.stdout, status.stdout


def _kill_worker_in_second_epoch(ws: Workspace, runner: subprocess.Popen[str], checkpoint: Path) -> dict[str, str]:
    """Wait until the row behind ``checkpoint`` finished its first epoch, then kill its queue worker outright."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and runner.poll() is None:
        if checkpoint.exists() and json.loads(str(np.load(checkpoint)["meta"][()]))["epoch"] == 1:
            for process in psutil.process_iter(["cmdline"]):
                try:
                    if "stages.train" in (process.info["cmdline"] or []) and process.environ().get("DVC_ROOT") == str(
                        ws.root
                    ):
                        env = process.environ()
                        os.killpg(os.getpgid(process.pid), signal.SIGKILL)
                        return env
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
        time.sleep(0.05)
    raise AssertionError(f"the second row never reached its second epoch:\n{runner.communicate()[0]}")


@slow
def test_killed_series_resumes_where_it_stopped(repo):
    """Two rows of two seeds each, the queue killed during the last seed: run again, every finished seed is
    kept, the last resumes, and the table over the seeds equals an uninterrupted run's."""
    checkpoint = repo.root / "checkpoints/resume-slow-seed1-numpy.npz"
    runner = subprocess.Popen(
        ["python", "-m", "lablib.experiments", "--config", "series.yaml", "series", "resume", "--poll-seconds", "1"],
        cwd=repo.root,
        env=repo.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    worker_env = _kill_worker_in_second_epoch(repo, runner, checkpoint)
    assert worker_env["OMP_NUM_THREADS"] == worker_env["OPENBLAS_NUM_THREADS"] == str(thread_share(1))
    output = runner.communicate(timeout=600)[0]
    assert runner.returncode == 1 and "no DVC queue worker is alive, yet resume-slow-seed1 (running)" in output, output
    assert checkpoint.exists(), "the interrupted row's checkpoint did not survive its temporary copy"
    finished = ("resume-first-seed0", "resume-first-seed1", "resume-slow-seed0")
    before = {name: exp_revs(repo)[name] for name in finished}

    result = run_series(repo, "resume")
    for name in finished:
        assert f"{name}: finished earlier" in result.stdout and exp_revs(repo)[name] == before[name], name
    logs = [log.read_text() for log in (repo.root / ".dvc/tmp/exps/run").glob("*/*.out")]
    assert any(f"numpy: resuming holdout at epoch 2 from {checkpoint}" in log for log in logs)
    assert not checkpoint.exists()

    run_series(repo, "resume_ref")
    resumed = pd.read_csv(repo.root / "tables/resume.csv")
    uninterrupted = pd.read_csv(repo.root / "tables/resume_ref.csv")
    pd.testing.assert_frame_equal(resumed[SPREAD], uninterrupted[SPREAD])
    assert resumed["seeds"].tolist() == [2, 2]
    per_seed = pd.read_csv(repo.root / "tables/resume-seeds.csv")
    assert per_seed[["row", "seed"]].values.tolist() == [["first", 0], ["first", 1], ["slow", 0], ["slow", 1]]
    pd.testing.assert_frame_equal(
        per_seed[["row", "seed", *ACCURACY[1:]]],
        pd.read_csv(repo.root / "tables/resume_ref-seeds.csv")[["row", "seed", *ACCURACY[1:]]],
    )
    assert not any(column.startswith("torch") for column in resumed), "a NumPy-only series shows PyTorch columns"
    assert resumed["targets"].tolist() == ["evaluate_numpy", "evaluate_numpy"]


@slow
def test_seeds_run_on_another_commit_with_the_same_code_are_kept(repo):
    """A series' seeds can run over several sessions: a later commit with the same code keeps the seeds
    its per-seed table holds, or that finished on the earlier commit after the table was written (a commit
    made while the series ran), and a change of code runs them again."""
    run_series(repo, "spread", "--quick")
    first = pd.read_csv(repo.root / "tables/spread-quick-seeds.csv", dtype={"commit": str})
    assert first["seed"].tolist() == [0, 1] and first["commit"].nunique() == 1
    (repo.root / "NOTES.md").write_text("a commit that changes no code\n")
    repo.commit("notes")

    result = run_series(repo, "spread", "--quick")
    for seed in (0, 1):
        assert f"spread-a-seed{seed}-quick: in the table, run on commit {first['commit'][0]}" in result.stdout
    assert "running" not in result.stdout, "a seed run on the same code ran again"
    again = pd.read_csv(repo.root / "tables/spread-quick-seeds.csv", dtype={"commit": str})
    pd.testing.assert_frame_equal(again, first)
    title = (repo.root / "tables/spread-quick.md").read_text().splitlines()[0]
    assert title == f"### Series spread (quick), run on commit {first['commit'][0]}"

    (repo.root / "tables/spread-quick-seeds.csv").unlink()
    result = run_series(repo, "spread", "--quick")
    for seed in (0, 1):
        kept = f"spread-a-seed{seed}-quick: finished earlier (on commit {first['commit'][0]}) with the same code"
        assert kept in result.stdout, result.stdout
    assert "running" not in result.stdout, "a seed that finished on an earlier commit with the same code ran again"
    from_experiments = pd.read_csv(repo.root / "tables/spread-quick-seeds.csv", dtype={"commit": str})
    pd.testing.assert_frame_equal(from_experiments, first)

    loop = repo.root / "lablib/train/loop.py"
    loop.write_text(loop.read_text() + "\n# a change of code\n")
    refused = run_series(repo, "spread", "--quick", check=False)
    assert refused.returncode == 1 and "lablib/train/loop.py changed since the last commit" in refused.stderr
    repo.commit("code")
    rerun = run_series(repo, "spread", "--quick")
    assert "running 2 rows" in rerun.stdout, rerun.stdout
    third = pd.read_csv(repo.root / "tables/spread-quick-seeds.csv", dtype={"commit": str, "code": str})
    assert third["commit"].nunique() == 1 and third["commit"][0] != first["commit"][0]
    assert (third["code"] != first["code"].astype(str)).all()
    loop.write_text(loop.read_text().removesuffix("\n# a change of code\n"))
    repo.commit("the code the workspace's dvc.lock describes, for the tests after this one")


@slow
def test_push_and_pull_through_the_remote(repo, tmp_path):
    repo.run("dvc", "remote", "modify", "storage", "url", str(tmp_path / "remote"))
    repo.run("git", "init", "-q", "--bare", str(tmp_path / "origin.git"))
    repo.run("git", "remote", "add", "origin", str(tmp_path / "origin.git"))
    repo.commit("results")
    repo.run("git", "push", "-q", "origin", "main")
    repo.run("dvc", "push")
    repo.run("dvc", "exp", "push", "origin", "-A")
    clone = tmp_path / "clone"
    repo.run("git", "clone", "-q", "-b", "main", str(tmp_path / "origin.git"), str(clone))
    pulled = Workspace(clone, Path(repo.env["FASHION_MNIST_DIR"]))
    pulled.run("dvc", "pull")
    for path in ("data/prepared/train_images.npy", "models/numpy.npz", "models/torch.npz"):
        assert (clone / path).read_bytes() == (repo.root / path).read_bytes(), path
    assert "up to date" in pulled.run("dvc", "status").stdout
    pulled.run("dvc", "exp", "pull", "origin", "-A")
    assert "lrs-small-quick" in pulled.run("dvc", "exp", "show", "--all-commits", "--json").stdout
    repo.run("git", "remote", "remove", "origin")


@slow
def test_two_machines_run_one_series_and_a_third_tables_it(repo, tmp_path):
    origin = tmp_path / "origin.git"
    repo.run("dvc", "remote", "modify", "storage", "url", str(tmp_path / "remote"))
    repo.commit("share through one remote")
    repo.run("git", "init", "-q", "--bare", str(origin))
    repo.run("git", "push", "-q", str(origin), "main")
    machines = {}
    for machine in ("a", "b", "c"):
        repo.run("git", "clone", "-q", "-b", "main", str(origin), str(tmp_path / machine))
        machines[machine] = Workspace(tmp_path / machine, Path(repo.env["FASHION_MNIST_DIR"]))
    for machine, row in (("a", "small"), ("b", "large")):
        run_series(machines[machine], "lrs", "--quick", "--rows", row)
        machines[machine].run("dvc", "exp", "push", "origin", f"lrs-{row}-quick")

    third = machines["c"]
    third.run("dvc", "exp", "pull", "origin")
    result = experiments(third, "table", "lrs", "--quick", "--out", "tables")
    table = pd.read_csv(third.root / "tables/lrs-quick.csv")
    assert table["row"].tolist() == ["small", "large"] and table["numpy val acc %"].notna().all(), result.stdout
    ran = {**exp_revs(machines["a"]), **exp_revs(machines["b"])}
    assert exp_revs(third) == ran, "the table's experiments are not the commits the two machines made"
    assert not (third.root / "models/numpy.npz").exists()
    third.run("dvc", "exp", "apply", "lrs-large-quick")
    assert (third.root / "models/numpy.npz").exists(), "the experiment's outputs did not come from the DVC remote"


@slow
def test_preset_runs_as_a_named_experiment(repo):
    experiments(repo, "preset", "tiny", "--quick")
    assert "tiny-quick" in exp_revs(repo)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["preset", "nope"], "no preset 'nope'; presets: tiny, tiny_numpy"),
        (["series", "nope"], "no series 'nope'; series: lrs, resume, resume_ref, lone, spread"),
        (["series", "lrs", "--rows", "small,huge"], "series lrs has no row 'huge'; rows: small, large"),
    ],
)
def test_unknown_preset_series_and_row_are_named(tmp_path, args, message):
    (tmp_path / "series.yaml").write_text(yaml.safe_dump(SERIES, sort_keys=False))
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "series.yaml"), *args])
    assert result.exit_code == 1 and message in result.output
