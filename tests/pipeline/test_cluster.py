"""A series and a class on a real Dask cluster on this machine: a scheduler and two workers, each a process
started with Dask's own commands on 127.0.0.1, all stopped at the end.

The series runs as DVC experiments equal to the local queue's, seed by seed; a worker killed during an
experiment has it taken over and resumed by the other; a bad override fails its own experiment only; a class
gets the table and files of a local run. Without Dask, or without a scheduler, one message says what to do.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import yaml
from click.testing import CliRunner

import lablib.dask_cluster
from lablib.experiments.cli import main
from lablib.experiments.queue import thread_share
from tests.pipeline.conftest import Workspace

slow = pytest.mark.slow

DASK = Path(sys.executable).parent / "dask"
HANDINS = Path(__file__).resolve().parents[1] / "handins"
TINY = {"model": "lab2023_cnn", "width": 4, "batch_size": 20, "sampling": "shuffle", "targets": ["evaluate_numpy"]}
SMALL = {"data.val_per_class": 10, "evaluate.feature_samples": 50}
# Ten epochs of batch 1 on 2,000 images: long enough to kill its worker after the first (no --quick, which
# would set one epoch on 200 images).
SLOW_ROW = {**SMALL, "batch_size": 1, "data.subset": 2000, "epochs": 10}
FIRST_ROW = {**SMALL, "lr": 0.001, "data.subset": 200, "epochs": 1}
ROWS = {"a": {"lr": 0.001}, "b": {"lr": 0.02}}
SERIES = {
    "presets": {"tiny_numpy": TINY},
    "quick": {"data.subset": 200, "data.val_per_class": 10, "epochs": 1, "evaluate.feature_samples": 50},
    "series": {
        "on_queue": {"preset": "tiny_numpy", "seeds": [0, 1], "rows": ROWS},
        "on_dask": {"preset": "tiny_numpy", "seeds": [0, 1], "rows": ROWS},
        "faulty": {"preset": "tiny_numpy", "seeds": [0], "rows": {"good": {"lr": 0.001}, "bad": {"lr": -1}}},
        "killed": {"preset": "tiny_numpy", "seeds": [0], "rows": {"first": FIRST_ROW, "slow": SLOW_ROW}},
    },
}
PER_SEED = ["row", "seed", "numpy val acc %", "numpy test acc %", "jobs", "threads per job"]


class DaskCluster:
    """A scheduler and named workers on 127.0.0.1, each started by Dask's command in a process group of its own."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        file = folder / "scheduler.json"
        self._start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard")
        deadline = time.monotonic() + 120
        while not file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.address = json.loads(file.read_text())["address"]

    def _start(self, name: str, *args: str) -> None:
        extra = ["--scheduler-file", str(self.folder / "scheduler.json")] if name == "scheduler" else []
        with (self.folder / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [str(DASK), *args, *extra],
                cwd=self.folder,
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def start_worker(self, name: str) -> None:
        args = ("--nthreads", "1", "--name", name, "--no-dashboard", "--local-directory", str(self.folder / name))
        self._start(name, "worker", self.address, *args)

    def wait_for_workers(self, count: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(count, timeout=120)

    def kill(self, name: str) -> None:
        """Kill a process group outright, as a machine that dies would."""
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].wait()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for name, process in self.processes.items():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            with pytest.raises(ProcessLookupError):  # nothing of the group is left: every process stopped
                _wait_gone(process.pid)
                os.killpg(process.pid, 0)
            assert process.returncode is not None, name


def _wait_gone(group: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def start_cluster(folder: Path, env: dict[str, str]) -> DaskCluster:
    folder.mkdir(parents=True)
    cluster = DaskCluster(folder, env)
    for name in ("w1", "w2"):
        cluster.start_worker(name)
    cluster.wait_for_workers(2)
    return cluster


@pytest.fixture(scope="module")
def repo(workspace_factory):
    ws = workspace_factory({k: v for k, v in TINY.items() if k != "targets"})
    (ws.root / "series.yaml").write_text(yaml.safe_dump(SERIES, sort_keys=False))
    return ws


@pytest.fixture(scope="module")
def cluster(repo, tmp_path_factory):
    started = start_cluster(tmp_path_factory.mktemp("dask") / "cluster", repo.env)
    yield started
    started.stop()


def series(ws: Workspace, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = ["python", "-m", "lablib.experiments", "--config", "series.yaml", "series", name, "--quick"]
    return ws.run(*command, "--out", "tables", *args, check=check)


def experiment_names(ws: Workspace) -> list[str]:
    shown = json.loads(ws.run("dvc", "exp", "show", "--json").stdout)
    return [exp["name"] for commit in shown for exp in commit.get("experiments") or []]


@slow
def test_a_series_on_dask_has_the_local_queues_numbers(repo, cluster, tmp_path):
    series(repo, "on_queue", "--jobs", "2", "--poll-seconds", "1")
    work = tmp_path / "work"
    threads = str(thread_share(2))
    result = series(repo, "on_dask", "--scheduler", cluster.address, "--threads", threads, "--workdir", str(work))
    assert "push each experiment back to this repository, through the shared filesystem" in result.stdout
    queue = pd.read_csv(repo.root / "tables/on_queue-quick-seeds.csv")
    dask = pd.read_csv(repo.root / "tables/on_dask-quick-seeds.csv")
    assert dask[["row", "seed"]].values.tolist() == [["a", 0], ["a", 1], ["b", 0], ["b", 1]]
    pd.testing.assert_frame_equal(queue[PER_SEED], dask[PER_SEED])
    names = experiment_names(repo)
    for row in ("a", "b"):
        for seed in (0, 1):
            assert names.count(f"on_dask-{row}-seed{seed}-quick") == 1, names
    assert not list(work.iterdir()), "a worker left its clone behind"

    again = series(repo, "on_dask", "--scheduler", cluster.address, "--threads", threads)
    assert again.stdout.count("with the same code and parameters; kept") == 4, again.stdout
    assert "running" not in again.stdout, "a finished experiment ran again"


@slow
def test_a_class_on_dask_gets_the_local_table_and_files(repo, cluster, tmp_path):
    folder = tmp_path / "class"
    for student in ("flat", "nhwc", "template"):
        shutil.copytree(HANDINS / student, folder / student)
    command = ["python", "-m", "lablib.gradcheck", str(folder), "--timeout", "60"]
    local = repo.run(*command, "--out", str(tmp_path / "local"), check=False)
    dask = repo.run(*command, "--out", str(tmp_path / "dask"), "--scheduler", cluster.address, check=False)
    assert local.returncode == dask.returncode == 1, dask.stdout + dask.stderr  # nhwc holds no Network
    assert dask.stdout == local.stdout
    files = sorted(path.relative_to(tmp_path / "local") for path in (tmp_path / "local").rglob("*.md"))
    assert len(files) == 5, files  # gradcheck.md, grid.md and three students' feedback
    for file in [*files, Path("gradcheck.csv")]:
        assert (tmp_path / "dask" / file).read_text() == (tmp_path / "local" / file).read_text(), file


@slow
def test_a_bad_override_fails_its_experiment_and_the_others_finish(repo):
    result = series(repo, "faulty", "--local", "2", check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    message = result.stderr
    assert "1 of 2 experiments failed; the others finished and are kept" in message, message
    assert "faulty-bad-seed0-quick (row bad, seed 0)" in message and "lr must be a number > 0" in message, message
    assert "faulty-good-seed0-quick: finished on" in result.stdout
    assert "faulty-good-seed0-quick" in experiment_names(repo)


def _worker_running(cluster: DaskCluster, clone_root: Path) -> str:
    """The name of the worker whose task trains in a clone under ``clone_root``, once its first epoch is saved."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        for checkpoint in clone_root.glob("killed-slow-*/checkpoints/numpy.npz"):
            try:
                with np.load(checkpoint) as saved:
                    epoch = json.loads(str(saved["meta"][()]))["epoch"]
            except (OSError, ValueError, KeyError):
                continue
            if epoch < 1:
                continue
            groups = {process.pid: name for name, process in cluster.processes.items()}
            for process in psutil.process_iter(["cmdline", "cwd"]):
                if "stages.train" not in (process.info["cmdline"] or []):
                    continue
                if not str(process.info["cwd"] or "").startswith(str(clone_root)):
                    continue
                for parent in process.parents():
                    if os.getpgid(parent.pid) in groups:
                        return groups[os.getpgid(parent.pid)]
        time.sleep(0.1)
    raise AssertionError("the slow experiment never finished its first epoch")


@slow
def test_a_worker_killed_mid_series_is_replaced_and_the_series_completes(repo, tmp_path):
    origin, remote = tmp_path / "origin.git", tmp_path / "dvc-remote"
    repo.run("git", "init", "-q", "--bare", str(origin))
    repo.run("git", "remote", "add", "killed", str(origin))
    repo.run("dvc", "remote", "add", "-d", "-f", "killed", str(remote))
    repo.commit("remotes for the cluster")
    repo.run("git", "push", "-q", "killed", "HEAD:main")
    cluster = start_cluster(tmp_path / "cluster", repo.env)
    try:
        work = tmp_path / "work"
        command = ["python", "-m", "lablib.experiments", "--config", "series.yaml", "series", "killed"]
        command += ["--out", "tables", "--scheduler", cluster.address, "--git-remote", "killed", "--workdir", str(work)]
        runner = subprocess.Popen(
            command, cwd=repo.root, env=repo.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        cluster.kill(_worker_running(cluster, work))
        output = runner.communicate(timeout=900)[0]
    finally:
        cluster.stop()
        repo.run("git", "remote", "remove", "killed")
    assert runner.returncode == 0, output
    resumed = "killed-slow-seed0: resumes in the clone of an earlier attempt from its checkpoints: numpy after epoch"
    assert resumed in output, output
    assert output.count("killed-slow-seed0: finished on") == 1, output
    names = experiment_names(repo)
    assert names.count("killed-slow-seed0") == 1 and names.count("killed-first-seed0") == 1, names
    pushed = repo.run("dvc", "exp", "list", "--name-only", str(origin)).stdout.split()
    assert sorted(pushed) == ["killed-first-seed0", "killed-slow-seed0"]
    table = pd.read_csv(repo.root / "tables/killed.csv")
    assert table["row"].tolist() == ["first", "slow"] and table["numpy test acc %"].notna().all()
    assert not _running_in(work), "a process of the killed worker's experiment outlived the series"


def _running_in(folder: Path) -> list[int]:
    """The processes whose working directory lies under ``folder``."""
    found = []
    for process in psutil.process_iter(["cwd"]):
        if str(process.info["cwd"] or "").startswith(str(folder)):
            found.append(process.pid)
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_scheduler_is_one_message_before_anything_is_sent(tmp_path, monkeypatch):
    monkeypatch.setattr(lablib.dask_cluster, "CONNECT_SECONDS", 2)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "series.yaml").write_text(yaml.safe_dump(SERIES, sort_keys=False))
    address = f"tcp://127.0.0.1:{_free_port()}"
    result = CliRunner().invoke(main, ["--config", "series.yaml", "series", "faulty", "--scheduler", address])
    assert result.exit_code == 1, result.output
    assert f"no Dask scheduler answers at {address} within 2 s" in result.output
    assert "nothing was sent" in result.output and "Traceback" not in result.output


def test_a_class_with_an_unreachable_scheduler_is_one_message(tmp_path, monkeypatch):
    from lablib.gradcheck import main as gradcheck

    monkeypatch.setattr(lablib.dask_cluster, "CONNECT_SECONDS", 2)
    shutil.copytree(HANDINS / "template", tmp_path / "class" / "template")
    address = f"tcp://127.0.0.1:{_free_port()}"
    result = CliRunner().invoke(gradcheck, [str(tmp_path / "class"), "--scheduler", address])
    assert result.exit_code == 2 and f"no Dask scheduler answers at {address}" in result.output, result.output


def test_without_dask_the_scheduler_option_says_how_to_install_it(tmp_path):
    shim = tmp_path / "shim"
    (shim / "distributed").mkdir(parents=True)
    (shim / "distributed" / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'distributed'\")\n")
    (tmp_path / "series.yaml").write_text(yaml.safe_dump(SERIES, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(shim)}
    command = [sys.executable, "-m", "lablib.experiments", "--config", "series.yaml", "series", "faulty"]
    result = subprocess.run(
        [*command, "--scheduler", "tcp://127.0.0.1:8786"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1 and "pip install -e '.[cluster]'" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scheduler", "tcp://127.0.0.1:1", "--local", "2"], "give --scheduler or --local, not both"),
        (["--scheduler", "tcp://127.0.0.1:1", "--jobs", "2"], "--jobs sets DVC's queue workers"),
        (["--threads", "2"], "--threads, --git-remote and --workdir are for a Dask cluster"),
    ],
)
def test_the_queue_and_dask_options_do_not_mix(tmp_path, args, message):
    (tmp_path / "series.yaml").write_text(yaml.safe_dump(SERIES, sort_keys=False))
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "series.yaml"), "series", "faulty", *args])
    assert result.exit_code == 1 and message in result.output, result.output
