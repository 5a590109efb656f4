"""The seal around one hand-in's check: bubblewrap where it runs, resource limits always.

A class run executes students' code, so each check runs sealed. Under bubblewrap (``bwrap``) the
machine is read-only, ``/tmp`` is empty and the class folder hidden, so a hand-in's only writable
places are the private copy of its own files and the folder its verdict goes to; it has no network and
its own process namespace, which dies with it. Where ``bwrap`` is missing or cannot start (or
``LABLIB_SANDBOX=limits`` asks), the check runs in the private copy under the limits alone: a careless
``../`` cannot reach the class, but an absolute path and the network can. Both apply the limits: CPU
time, address space, file size (its printed output included) and processes.
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lablib.adapter.errors import AdapterError

MODES = ("bwrap", "limits")  # LABLIB_SANDBOX's values; unset: bwrap where it can start
PROJECT = Path(__file__).resolve().parents[2]  # read-only to the check, which imports lablib from it
CPU_PER_SECOND = 4  # CPU seconds a check may use per second of its --timeout: numpy may run threads
BWRAP_FLAGS = ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--unshare-net", "--unshare-pid"]


@dataclass(frozen=True)
class Limits:
    """What one check may use; ``processes`` counts beyond the user's own at the start (root ignores it)."""

    cpu_seconds: int
    memory: int = 4 << 30  # bytes of address space: numpy and torch reserve about 1 GiB
    file_size: int = 64 << 20  # bytes of any file it writes, its output included
    processes: int = 128

    def describe(self) -> str:
        return (
            f"CPU {self.cpu_seconds} s, memory {self.memory >> 20} MiB, files {self.file_size >> 20} MiB, "
            f"{self.processes} processes"
        )

    def preexec(self) -> Callable[[], None]:
        """The ``preexec_fn`` that sets these limits in the child before it starts."""
        processes = user_processes() + self.processes

        def set_limits() -> None:
            resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds + 5))
            resource.setrlimit(resource.RLIMIT_AS, (self.memory, self.memory))
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_size, self.file_size))
            resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        return set_limits

    def exceeded(self, status: int) -> str:
        """The limit that killed a check exiting with ``status`` (a signal, or bwrap's 128 + signal), if any."""
        signals = {
            signal.SIGXCPU: f"ran past the CPU time limit ({self.cpu_seconds} s)",
            signal.SIGXFSZ: f"wrote past the file-size limit ({self.file_size >> 20} MiB, its output included)",
        }
        return next((text for sig, text in signals.items() if status in (-sig, 128 + sig)), "")


def user_processes() -> int:
    """The processes and threads this user runs now, which RLIMIT_NPROC counts too."""
    uid = os.getuid()
    count = 0
    for task in Path("/proc").glob("[0-9]*/task/*"):
        try:
            count += task.stat().st_uid == uid
        except OSError:
            continue
    return count


@functools.cache
def bwrap_starts() -> bool:
    """True when ``bwrap`` is installed and can make its namespaces here (a container may forbid them)."""
    if shutil.which("bwrap") is None:
        return False
    probe = ["bwrap", "--ro-bind", "/", "/", *BWRAP_FLAGS, "--die-with-parent", "true"]
    return subprocess.run(probe, capture_output=True, check=False, timeout=30).returncode == 0


def isolation() -> str:
    """``bwrap`` or ``limits``: the one ``LABLIB_SANDBOX`` names, else bwrap where it starts."""
    asked = os.environ.get("LABLIB_SANDBOX", "")
    if asked and asked not in MODES:
        raise AdapterError(f"LABLIB_SANDBOX={asked}: use one of {', '.join(MODES)}, or leave it unset")
    return "bwrap" if asked != "limits" and bwrap_starts() else "limits"


@dataclass(frozen=True)
class Sandbox:
    """How a class run seals each check: the isolation (``bwrap`` or ``limits``), the limits, and the class
    folder that no check may read."""

    mode: str
    limits: Limits
    hidden: Path

    def describe(self) -> str:
        """The table's header line: which isolation ran, and the limits."""
        seal = (
            "bubblewrap (read-only machine, no network, other hand-ins hidden)"
            if self.mode == "bwrap"
            else "resource limits and a private copy only (no bubblewrap: the network and absolute paths are open)"
        )
        return f"sealed by {seal}; {self.limits.describe()}"

    def command(self, command: Sequence[str], writable: Path, cwd: Path) -> list[str]:
        """``command`` as it runs sealed in ``cwd``: under bwrap, ``writable`` its only writable folder and the
        class hidden."""
        if self.mode == "limits":
            return list(command)
        # Mounts apply in order: the project and the Python that runs it again (a clone or a virtual environment
        # under /tmp would vanish under the empty /tmp), then the class hidden (inside the project too), then the
        # one writable folder.
        keep = dict.fromkeys([PROJECT, *(Path(prefix).resolve() for prefix in (sys.prefix, sys.base_prefix))])
        project = [arg for folder in keep if folder != Path("/") for arg in ("--ro-bind", str(folder), str(folder))]
        hide = ["--tmpfs", str(self.hidden.resolve())]
        bind = ["--bind", str(writable), str(writable), "--die-with-parent", "--chdir", str(cwd)]
        return ["bwrap", "--ro-bind", "/", "/", *BWRAP_FLAGS, *project, *hide, *bind, *command]

    def run(self, command: Sequence[str], writable: Path, cwd: Path, output: BinaryIO, timeout: int) -> int | None:
        """Run ``command`` sealed in ``cwd``, inside ``writable``, its output to ``output``: its exit status, None
        past ``timeout`` seconds. Its process group is killed when it ends: nothing it started outlives it."""
        path = os.pathsep.join([str(PROJECT), str(cwd)])  # the check imports lablib, then the hand-in
        env = {
            **os.environ,
            "PYTHONPATH": path,
            "HOME": str(writable),
            "TMPDIR": str(writable),
            "MALLOC_ARENA_MAX": "2",
        }
        process = subprocess.Popen(
            self.command(command, writable, cwd),
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=self.limits.preexec(),
        )
        try:
            status = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            status = None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return status


def private_copy(files: Sequence[Path], root: Path, into: Path) -> None:
    """Copy a hand-in's ``files`` under ``into``, each at its place relative to ``root``."""
    for file in files:
        target = into / file.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, target)
