"""The machine a training ran on: its CPU, and the BLAS NumPy calls with that BLAS's kernel and threads.

A seeded training repeats to the last bit only where OpenBLAS runs the same kernel (it picks one for
the CPU when NumPy loads it, unless ``OPENBLAS_CORETYPE`` names one) with the same number of threads,
and NumPy's own vector loops (``exp``) take the same instruction set: these decide how each product
and each ``exp`` splits and rounds. On another kernel a training's results move within the spread
over seeds. Each training records :func:`describe` beside its metrics (``machine.json``) and, before
it starts, warns once when the committed baseline ran on another kernel (:func:`baseline_mismatch`).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info

# What decides a NumPy training's bits, as :func:`describe` names it.
BITS = ("blas_library", "blas_version", "blas_kernel", "blas_threads", "numpy_version", "numpy_simd")

MISMATCH = (
    "{what}: this machine runs {here}, the committed baseline ran on {there}; expect metrics that differ "
    "from the committed ones within the spread over seeds (README, 'When the bits repeat')"
)


def blas() -> dict[str, Any]:
    """NumPy's BLAS as threadpoolctl reports it: library, version, kernel (OpenBLAS's core type) and threads."""
    entries = [entry for entry in threadpool_info() if entry["user_api"] == "blas"]
    # Beside NumPy's OpenBLAS a process may hold PyTorch's BLAS: NumPy's sits in NumPy's folder.
    ours = [entry for entry in entries if "numpy" in entry.get("filepath", "")] or entries
    if not ours:
        return {"blas_library": "unknown", "blas_version": "unknown", "blas_kernel": "unknown", "blas_threads": 0}
    entry = ours[0]
    return {
        "blas_library": entry["internal_api"],
        "blas_version": entry.get("version") or "unknown",
        "blas_kernel": entry.get("architecture") or "unknown",
        "blas_threads": entry["num_threads"],
    }


def numpy_simd() -> str:
    """The widest instruction set NumPy's vector loops dispatch to on this CPU (``np.show_runtime``'s 'found')."""
    from numpy._core import _multiarray_umath as umath  # private: read with getattr, a default if it moves

    features = getattr(umath, "__cpu_features__", {})
    found = [target for target in getattr(umath, "__cpu_dispatch__", []) if features.get(target)]
    return found[-1] if found else "baseline"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe() -> dict[str, Any]:
    """This machine as a training sees it: CPU, usable cores, NumPy's BLAS and vector loops."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return {
        "cpu": cpu_model(),
        "cores": cores,
        **blas(),
        "numpy_version": np.__version__,
        "numpy_simd": numpy_simd(),
    }


def bits_key(machine: Mapping[str, Any]) -> str:
    """The part of :func:`describe` that decides the bits, as one line (a key of recorded digests)."""
    return (
        f"{machine['blas_library']} {machine['blas_version']} {machine['blas_kernel']}, "
        f"{machine['blas_threads']} threads; numpy {machine['numpy_version']} {machine['numpy_simd']}"
    )


def committed(path: Path) -> dict[str, Any] | None:
    """``path`` as the repository's last commit holds it (JSON), or None outside git or where it has none."""
    try:
        shown = subprocess.run(
            ["git", "show", f"HEAD:./{Path(os.path.relpath(path)).as_posix()}"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if shown.returncode != 0:
        return None
    try:
        return json.loads(shown.stdout)
    except json.JSONDecodeError:
        return None


def baseline_mismatch(here: Mapping[str, Any], baseline: Mapping[str, Any] | None, what: str) -> str | None:
    """The warning :data:`MISMATCH` when ``here`` and the committed ``baseline`` differ in what decides
    the bits, else None (no baseline recorded: nothing to compare)."""
    if baseline is None or all(here.get(key) == baseline.get(key) for key in BITS):
        return None
    return MISMATCH.format(what=what, here=bits_key(here), there=bits_key({**dict.fromkeys(BITS, "?"), **baseline}))
