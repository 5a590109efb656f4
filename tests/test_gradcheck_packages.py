"""``python -m lablib.gradcheck`` on hand-ins as the course collects them: the template's ``model/`` package,
and the flat files renamed with each student's id.

``tests/handins/package/`` is a student's folder as run: ``model/__init__.py`` re-exporting
``model/network.py`` (three classes, ``from .layer import *``) and a ``train_exe.py`` that leaves a mark
if anything runs it. ``tests/handins/flat/`` holds two students' ``network_<id>.py`` and ``layer_<id>.py``,
beside notebooks and a report that are never run: 123's is correct, 456's averages its bias gradient.
"""

from __future__ import annotations

import inspect
import re
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import lablib
from lablib.gradcheck import main
from lablib.gradcheck.classroom import hand_ins
from lablib.gradcheck.loader import load_class

HANDINS = Path(__file__).parent / "handins"
ROOT = Path(lablib.__file__).parents[1]


def check(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.chdir(cwd)
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


def marks(folder: Path) -> list[Path]:
    """What a run of a student's script or notebook would have left."""
    return [*folder.rglob("*.ran")]


def test_the_template_package_is_checked_from_its_folder_with_its_classes_read_from_its_output(tmp_path, monkeypatch):
    folder = shutil.copytree(HANDINS / "package", tmp_path / "alice")
    code, output = check(["model/network.py:Network"], folder, monkeypatch)
    assert code == 0, output
    assert "3 classes (the output's width)" in output and "ok: all" in output
    assert not marks(tmp_path)


def test_the_template_package_is_checked_from_the_repository_root(monkeypatch):
    code, output = check(["tests/handins/package/model/network.py:Network"], ROOT, monkeypatch)
    assert code == 0, output
    assert not marks(HANDINS / "package")


def test_the_package_init_re_exports_its_network(monkeypatch):
    monkeypatch.chdir(ROOT)
    network = load_class("tests/handins/package/model/network.py:Network")
    assert network.__module__ == "model.network" and sys.modules["model"].Network is network
    assert load_class("tests/handins/package/model/__init__.py:Network").__module__ == "model.network"


@pytest.mark.parametrize("statement", ["from .layer import *", "from layer import *", "from model.layer import *"])
def test_the_courses_renamed_layer_is_imported_by_the_name_the_network_gives(tmp_path, statement):
    folder = shutil.copytree(HANDINS / "flat", tmp_path / "class")
    files = {}
    for student in ("123", "456"):  # in one process: the second student's layer is not the first one's
        network = folder / f"network_{student}.py"
        network.write_text(re.sub(r"^from \S+ import \*$", statement, network.read_text(), flags=re.MULTILINE))
        files[student] = Path(inspect.getfile(type(load_class(f"{network}:Network")().fc1))).name
    assert files == {"123": "layer_123.py", "456": "layer_456.py"}


def test_a_flat_folder_is_grouped_by_student_id():
    students = {student: [file.name for file in files] for student, files in hand_ins(HANDINS / "flat")}
    assert students == {"123": ["layer_123.py", "network_123.py"], "456": ["layer_456.py", "network_456.py"]}


def test_a_class_of_the_courses_flat_files_gets_one_row_per_id(tmp_path, monkeypatch):
    folder = shutil.copytree(HANDINS / "flat", tmp_path / "class")
    before = {file.name: file.read_bytes() for file in folder.iterdir()}
    code, output = check([str(folder), "--out", str(tmp_path / "grades")], tmp_path, monkeypatch)
    assert code == 1, output
    rows = (tmp_path / "grades" / "gradcheck.csv").read_text().splitlines()[1:]
    assert [row.split(",")[:3] for row in rows] == [["123", "network", "ok"], ["456", "network", "FAIL"]]
    assert "(FullyConnected),biases" in rows[1]
    assert {file.name: file.read_bytes() for file in folder.iterdir()} == before  # nothing run, nothing edited
    assert not marks(tmp_path)


def test_a_class_of_package_folders_checks_each_network_and_never_runs_a_script(tmp_path, monkeypatch):
    for student in ("alice", "bob"):
        shutil.copytree(HANDINS / "package", tmp_path / "class" / student)
    layer = tmp_path / "class" / "bob" / "model" / "layer.py"
    layer.write_text(layer.read_text().replace("return output_grad * self.mask", "return output_grad"))
    code, output = check([str(tmp_path / "class"), "--out", str(tmp_path / "grades")], tmp_path, monkeypatch)
    assert code == 1, output
    rows = (tmp_path / "grades" / "gradcheck.csv").read_text().splitlines()[1:]
    assert [row.split(",")[:3] for row in rows] == [["alice", "network", "ok"], ["bob", "network", "FAIL"]]
    assert "relu (ReLU)" in rows[1]
    assert not marks(tmp_path)
