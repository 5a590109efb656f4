"""The speed benchmark runs and reports its efficiency keys, the scaling benchmark times what a Dask worker adds;
the benchmarks package keeps NumPy's idle BLAS threads off PyTorch's cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def python(code_or_args: list[str], **env: str) -> str:
    base = {key: value for key, value in os.environ.items() if key != "OPENBLAS_THREAD_TIMEOUT"}
    result = subprocess.run(
        [sys.executable, *code_or_args], cwd=REPO, env={**base, **env}, capture_output=True, text=True, check=True
    )
    return result.stdout


def test_benchmarks_let_idle_blas_threads_sleep_unless_the_user_chose():
    code = ["-c", "import os, benchmarks, numpy; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])"]
    assert python(code).strip() == "4"
    assert python(code, OPENBLAS_THREAD_TIMEOUT="20").strip() == "20"


def test_speed_benchmark_reports_throughput_floor_fractions_and_products_alone():
    args = ["-m", "benchmarks.speed", "--model", "lab2023_cnn", "--batch-size", "64", "--steps", "1", "--warmup", "0"]
    (result,) = json.loads(python([*args, "--json"], OMP_NUM_THREADS="1"))
    assert result["model"] == "lab2023_cnn" and result["batch_size"] == 64
    assert result["gemm_gflops"] > 0
    for key in ("numpy_floor_fraction", "torch_floor_fraction"):
        assert 0 < result[key] < 1.5, result
    assert result["numpy_products_ms"] > 0, result
    assert result["products_ceiling"] == result["torch_train_ms"] / result["numpy_products_ms"]
    # A forward has one product per layer, a step three (two for the first layer): fewer, and less time.
    assert 0 < result["numpy_eval_products_ms"] < result["numpy_products_ms"], result
    assert result["eval_products_ceiling"] == result["torch_eval_ms"] / result["numpy_eval_products_ms"]
    assert [row["layer"].split(":")[1].split("(")[0].strip() for row in result["eval_layers"]] == [
        "InferenceConv2d",
        "MaxPool2d",
        "Flatten",
        "Linear",
    ], result["eval_layers"]
    assert all(row["ms"] > 0 for row in result["eval_layers"]), result["eval_layers"]
    for framework in ("numpy", "torch"):
        assert result[f"{framework}_train_peak_mb"] > 0 and result[f"{framework}_eval_peak_mb"] > 0, result


@pytest.mark.slow
def test_scaling_benchmark_times_each_step_a_worker_adds(real_data_dir):
    args = ["-m", "benchmarks.scaling", "--workers", "1", "--seeds", "1", "--json"]
    result = json.loads(python(args, FASHION_MNIST_DIR=str(real_data_dir)))
    (run,) = result["runs"]
    assert run["workers"] == 1 and run["experiments"] == 2, result
    assert result["own_s"] > 0 and run["wall_s"] > run["run_s"] > 0, result
    assert run["clone_s"] > 0 and run["push_s"] > 0, result
