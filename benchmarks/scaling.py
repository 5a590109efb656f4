"""How a series scales on Dask: a tiny series of 2 rows x 4 seeds on a LocalCluster of 1, then 2 workers.

    python -m benchmarks.scaling                       # 1 and 2 workers, 4 seeds a row
    python -m benchmarks.scaling --workers 1,2,4 --json

The series runs on HEAD's committed code, in a clone of this repository in a temporary folder, through
the shared filesystem (``lablib.experiments.cluster``), every experiment one thread. For each number of
workers it prints the wall time, the speed-up over the first, and per experiment the mean seconds of the
three steps a worker adds (its clone, ``dvc exp run``, the push) beside the experiment's own time: the
commands of its stages run one after the other without DVC, in another clone. Their difference is the
overhead of an experiment on the cluster: the clone, DVC's bookkeeping (hashing, the lock, the experiment
commit) and the push. It is a benchmark, not a test: it needs the Fashion-MNIST files and takes minutes.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from contextlib import chdir, redirect_stdout
from pathlib import Path
from typing import Any

import click
import yaml

from lablib.dask_cluster import connect
from lablib.experiments.cluster import run_on_cluster
from lablib.experiments.config import Row, series_rows
from lablib.experiments.queue import THREAD_VARIABLES
from lablib.experiments.store import stages_run

REPO = Path(__file__).resolve().parents[1]
TINY = {"model": "lab2023_cnn", "width": 4, "batch_size": 20, "sampling": "shuffle", "targets": ["evaluate_numpy"]}
QUICK = {"data.subset": 300, "data.val_per_class": 10, "epochs": 1, "evaluate.feature_samples": 50}


def series_config(seeds: int) -> dict[str, Any]:
    """The benchmark's series: two learning rates, each with ``seeds`` seeds, NumPy only."""
    rows = {"small": {"lr": 0.001}, "large": {"lr": 0.02}}
    return {
        "presets": {"tiny": TINY},
        "quick": QUICK,
        "series": {"scaling": {"preset": "tiny", "seeds": list(range(seeds)), "rows": rows}},
    }


def own_seconds(repo: Path, row: Row) -> float:
    """The seconds of one experiment's stages, their commands run in order in ``repo`` without DVC."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for dotted, value in row.settings.items():
        *parents, key = dotted.split(".")
        node = params
        for parent in parents:
            node = node[parent]
        node[key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with chdir(repo):
        ran = stages_run(row.targets)
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    env = {**os.environ, **dict.fromkeys(THREAD_VARIABLES, "1")}
    start = time.perf_counter()
    for name, stage in stages.items():  # dvc.yaml lists the stages in the pipeline's order
        if name in ran:
            subprocess.run(shlex.split(stage["cmd"]), cwd=repo, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def run_once(repo: Path, rows: list[Row], workers: int, workdir: Path) -> dict[str, Any]:
    """The series on ``workers`` local workers, every experiment run again: its wall time and the mean seconds
    of each step of a worker."""
    with chdir(repo), connect(None, workers) as client:
        start = time.perf_counter()
        outcomes = run_on_cluster(client, "scaling", rows, True, Path("params.yaml"), 1, None, str(workdir))
        wall = time.perf_counter() - start
    steps = {step: statistics.mean(o.seconds[step] for o in outcomes) for step in ("clone", "run", "push")}
    return {"workers": workers, "experiments": len(outcomes), "wall_s": wall, **{f"{k}_s": v for k, v in steps.items()}}


def report(results: list[Mapping[str, Any]], own: float) -> str:
    """The results as a table, each run beside the first's wall time and the experiment's own time."""
    lines = [
        f"one experiment's own time (its stages without DVC): {own:.1f} s",
        "workers  experiments  wall s  speed-up  clone s  dvc exp run s  push s  overhead s per experiment",
    ]
    for result in results:
        overhead = result["clone_s"] + result["run_s"] - own + result["push_s"]
        lines.append(
            f"{result['workers']:>7}  {result['experiments']:>11}  {result['wall_s']:>6.1f}  "
            f"{results[0]['wall_s'] / result['wall_s']:>8.2f}  {result['clone_s']:>7.1f}  {result['run_s']:>13.1f}  "
            f"{result['push_s']:>6.1f}  {overhead:>10.1f}"
        )
    return "\n".join(lines)


@click.command()
@click.option("--workers", default="1,2", show_default=True, help="Numbers of local workers to run the series on.")
@click.option("--seeds", default=4, show_default=True, type=click.IntRange(1), help="Seeds a row (2 rows).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def main(workers: str, seeds: int, as_json: bool) -> None:
    """Time a tiny series on Dask workers: wall time, speed-up, and each experiment's overhead."""
    counts = [int(count) for count in workers.split(",")]
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # this Python's dvc
    rows = series_rows(series_config(seeds), "scaling", quick=True)
    with tempfile.TemporaryDirectory(prefix="lablib-scaling-") as tmp, redirect_stdout(sys.stderr):
        root = Path(tmp)
        for clone in ("repo", "direct"):
            subprocess.run(["git", "clone", "-q", str(REPO), str(root / clone)], check=True)
        own = own_seconds(root / "direct", rows[0])
        results = [run_once(root / "repo", rows, count, root / "work") for count in counts]
    if as_json:
        click.echo(json.dumps({"own_s": own, "runs": results}, indent=2))
    else:
        click.echo(report(results, own))


if __name__ == "__main__":
    main()
