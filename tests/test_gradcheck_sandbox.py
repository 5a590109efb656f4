"""A class run sealed from the grader's machine: hostile hand-ins, each bounded, each its own row.

Every hostile action is bounded (a few hundred processes, 3 GiB asked of a 1.5 GiB limit, children
that sleep two minutes at most), so a seal that fails shows as a failed test, not a dead machine. The
run goes once under bubblewrap (where it starts) and once under the limits alone (``LABLIB_SANDBOX``).
"""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lablib.gradcheck.feedback import grid
from lablib.gradcheck.sandbox import bwrap_starts

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "tests" / "handins" / "template"
TIMEOUT = 15  # seconds a check: the correct hand-ins take a few
HANG_MARKER, FORK_MARKER = "0.0314159", "0.0271828"  # sleep's extra seconds, to find the hand-ins' processes


def hostile_code(mode: str, decoy: Path, sibling: Path, port: int) -> dict[str, str]:
    """Each hostile hand-in's first lines, by student (a_sleeper first in name order)."""
    paths = ["../decoy.txt", "../../decoy.txt", "../../../decoy.txt"] + ([str(decoy)] if mode == "bwrap" else [])
    sleeper = f"import subprocess, time\nsubprocess.Popen(['sleep', '120', '{HANG_MARKER}'])\ntime.sleep(3600)\n"
    return {
        "a_sleeper": sleeper,
        "decoy": "import contextlib\nfrom pathlib import Path\n"
        f"for path in {paths!r}:\n"
        "    with contextlib.suppress(OSError):\n"
        "        Path(path).unlink()\n"
        f"if {mode == 'bwrap'} and Path({str(sibling)!r}).exists():\n"
        "    raise SystemExit('read another hand-in')\n",
        "filesize": "open('big.bin', 'wb').write(bytes(32 << 20))\n",
        "fork": "import os, time\n"
        "for _ in range(300):\n"
        "    if os.fork() == 0:\n"
        f"        os.execv('/bin/sleep', ['sleep', '60', '{FORK_MARKER}'])\n",
        "memory": "import numpy\nnumpy.empty(3 << 30, dtype=numpy.uint8)\n",
        "printer": "import sys\nfor _ in range(100):\n    sys.stdout.write('x' * (1 << 20) + '\\n')\n",
        "socket": f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n",
    }


def write_class(folder: Path, code: dict[str, str]) -> None:
    """A correct hand-in (alice) and the hostile ones: the template with the hostile lines put first."""
    shutil.copytree(TEMPLATE, folder / "alice")
    for student, lines in code.items():
        shutil.copytree(TEMPLATE, folder / student)
        network = folder / student / "network.py"
        network.write_text(lines + network.read_text())


def marked_processes(*markers: str) -> list[str]:
    """The command lines of live processes that carry one of ``markers``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(marker in text.split() for marker in markers):
            found.append(text)
    return found


MODES = ["bwrap", "limits"] if bwrap_starts() else ["limits"]


@pytest.mark.parametrize("mode", MODES)
def test_hostile_hand_ins_each_get_a_row_and_harm_nothing(tmp_path, mode):
    decoy = tmp_path / "decoy.txt"
    decoy.write_text("the grader's file")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    write_class(tmp_path / "class", hostile_code(mode, decoy, tmp_path / "class" / "alice" / "layer.py", port))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LABLIB_SANDBOX": mode}
    command = [sys.executable, "-m", "lablib.gradcheck", str(tmp_path / "class"), "--timeout", str(TIMEOUT)]
    command += ["--memory", "1536", "--file-size", "8", "--out", str(tmp_path / "grades")]
    start = time.monotonic()
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False)
    elapsed = time.monotonic() - start
    shown = done.stdout + done.stderr
    isolation = "sealed by bubblewrap" if mode == "bwrap" else "sealed by resource limits and a private copy only"
    assert done.stdout.startswith(isolation), shown  # the header says which isolation ran
    with (tmp_path / "grades" / "gradcheck.csv").open() as table:
        rows = {row["student"]: row for row in csv.DictReader(table)}
    assert sorted(rows) == ["a_sleeper", "alice", "decoy", "filesize", "fork", "memory", "printer", "socket"], shown
    assert rows["alice"]["verdict"] == "ok", shown
    assert rows["a_sleeper"]["verdict"] == "timeout" and f"within {TIMEOUT} s" in rows["a_sleeper"]["reason"]
    assert not marked_processes(HANG_MARKER, FORK_MARKER), "a hand-in's process outlived its check"
    assert decoy.read_text() == "the grader's file"
    assert "read another hand-in" not in rows["decoy"]["reason"]
    assert rows["filesize"]["verdict"] == "error" and "File too large" in rows["filesize"]["reason"], shown
    assert rows["printer"]["verdict"] == "error" and "File too large" in rows["printer"]["reason"], shown
    assert rows["memory"]["verdict"] == "error" and "MemoryError" in rows["memory"]["reason"], shown
    if os.getuid() != 0:  # root ignores RLIMIT_NPROC: bubblewrap's namespace or the group kill ends them
        assert rows["fork"]["verdict"] == "error", shown
    if mode == "bwrap":
        assert rows["socket"]["verdict"] == "error" and "Errno" in rows["socket"]["reason"], shown
        assert rows["decoy"]["verdict"] == "ok", shown
        with pytest.raises(BlockingIOError):
            listener.accept()
    listener.close()
    assert elapsed < 2 * TIMEOUT + 90, f"the run took {elapsed:.0f} s"
    assert (tmp_path / "grades" / "feedback" / "alice.md").is_file()
    assert (tmp_path / "grades" / "grid.md").read_text().startswith("| student   | network   |")


def test_feedback_says_what_failed_why_and_how_to_rerun_it(tmp_path):
    shutil.copytree(TEMPLATE, tmp_path / "class" / "alice")
    shutil.copytree(TEMPLATE, tmp_path / "class" / "bob")
    layer = tmp_path / "class" / "bob" / "layer.py"
    layer.write_text(
        layer.read_text().replace(
            "np.sum(output_grad, axis=0, keepdims=True).T", "np.mean(output_grad, axis=0, keepdims=True).T"
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "lablib.gradcheck", str(tmp_path / "class"), "--out", str(tmp_path / "grades")]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    bob = (tmp_path / "grades" / "feedback" / "bob.md").read_text()
    assert "0 of 1 checks passed" in bob and "## network: FAIL" in bob
    assert "Why: off by a factor 1/N" in bob
    rerun = next(line for line in bob.splitlines() if line.startswith("python -m lablib.gradcheck "))
    assert rerun == f"python -m lablib.gradcheck {tmp_path / 'class' / 'bob' / 'network.py'}:Network --network"
    again = subprocess.run([sys.executable, *rerun.split()[1:]], cwd=ROOT, capture_output=True, text=True, check=False)
    assert again.returncode == 1 and "FAIL" in again.stdout, again.stdout + again.stderr
    assert "1 of 1 checks passed" in (tmp_path / "grades" / "feedback" / "alice.md").read_text()
    assert "| alice     | ok        |" in done.stdout and "| bob       | FAIL      |" in done.stdout


def test_the_grid_is_students_by_checks():
    rows = [
        {"student": "ann", "check": "network", "verdict": "ok"},
        {"student": "ann", "check": "layer Conv2d", "verdict": "FAIL"},
        {"student": "ben", "check": "network", "verdict": "timeout"},
    ]
    lines = grid(rows).splitlines()
    assert lines[0].split("|")[1:-1] == [" student   ", " network   ", " layer Conv2d   "]
    assert [cell.strip() for cell in lines[2].split("|")[1:-1]] == ["ann", "ok", "FAIL"]
    assert [cell.strip() for cell in lines[3].split("|")[1:-1]] == ["ben", "timeout", ""]


@pytest.mark.skipif(not bwrap_starts(), reason="bubblewrap cannot start here")
def test_a_python_under_tmp_stays_visible_to_the_sealed_check(tmp_path, monkeypatch):
    """The sealed check's /tmp is empty: a virtual environment under /tmp (a clone there, as CI may make) and
    the project are mounted again, read-only, or the check cannot even start its interpreter."""
    from lablib.gradcheck import sandbox

    venv = tmp_path / "venv"
    venv.mkdir()
    monkeypatch.setattr(sandbox.sys, "prefix", str(venv))
    sealed = sandbox.Sandbox("bwrap", sandbox.Limits(cpu_seconds=10), tmp_path / "class")
    command = sealed.command(["true"], tmp_path / "work", tmp_path)
    tmpfs = command.index("/tmp")
    binds = [command[i + 1] for i, word in enumerate(command) if word == "--ro-bind" and i > tmpfs]
    assert str(venv.resolve()) in binds and str(sandbox.PROJECT) in binds
    assert "/" not in binds
