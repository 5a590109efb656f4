"""A model whose layers have no PyTorch twin runs the whole pipeline in NumPy only: train_torch,
evaluate_torch and compare write every declared output holding the record that they did not run and
why, and no weight or number; the report shows NumPy and says why PyTorch did not run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from lablib.not_run import REASON, not_run
from lablib.report import load_run
from lablib.train.checkpoint import load_npz
from stages.train import main as train_main
from tests.test_evaluate import FAKE_TRAIN, REPO, compare_stage, evaluate_stage, make_fake_run
from tests.test_report import captions, paths, run_report

SPEC = "mymodels/my_cnn.yaml"
REASON_TEXT = (
    "the model uses mylayers/my_layers.py:LeakyReLU, mylayers/course_layers.py:FullyConnected, "
    "which PyTorch has no twin of"
)
RECORD = not_run(REASON_TEXT)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A fake run of the shipped spec, then the real torch stages and evaluate_numpy and the report on it,
    in a folder holding mymodels/ and mylayers/ as the working directory."""
    root = tmp_path_factory.mktemp("numpy_only")
    for folder in ("mymodels", "mylayers"):
        shutil.copytree(REPO / folder, root / folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        make_fake_run(root, model=SPEC)
        shutil.copy2(REPO / "experiments.yaml", root / "experiments.yaml")
        (root / "checkpoints").mkdir()
        args = ["torch", "--params", "params.yaml", "--prepared", "absent", "--split", "absent"]
        trained = CliRunner().invoke(train_main, [*args, "--checkpoints", "checkpoints"])
        assert trained.exit_code == 0, trained.output
        for framework in ("numpy", "torch"):
            evaluated = evaluate_stage(root, framework)
            assert evaluated.exit_code == 0, evaluated.output
        compared = compare_stage(root)
        assert compared.exit_code == 0, compared.output
        reported = run_report(root)
        assert reported.exit_code == 0, reported.output
        yield root


def test_the_torch_stages_record_that_they_did_not_run_and_why_with_no_weights(run):
    assert load_npz(run / "models/torch.npz").keys() == RECORD.keys()
    assert str(load_npz(run / "models/torch.npz")[REASON]) == REASON_TEXT
    for path in ("dvclive/torch/metrics.json", "evaluation/torch/metrics.json", "evaluation/cross.json"):
        assert json.loads((run / path).read_text()) == RECORD, path
    assert load_npz(run / "evaluation/torch/features.npz").keys() == RECORD.keys()
    assert (run / "evaluation/torch/confusion.csv").read_text().splitlines() == ["actual,predicted"]
    assert list((run / "dvclive/torch/plots/metrics").iterdir()) == [], "the fake run's epochs are gone"
    assert not list((run / "checkpoints").iterdir())


def test_the_numpy_stages_ran(run):
    assert "test_acc" in json.loads((run / "evaluation/numpy/metrics.json").read_text())
    assert len(load_npz(run / "models/numpy.npz")) > 2


@pytest.fixture(scope="module")
def report(run) -> str:
    return (run / "reports/report.md").read_text()


def test_the_report_shows_numpy_and_says_once_why_pytorch_did_not_run(run, report):
    assert report.startswith("# Fashion-MNIST with a CNN written by hand in NumPy\n")
    assert report.count(f"PyTorch did not run: {REASON_TEXT}.") == 1
    assert f"The cross-evaluation was not run: {REASON_TEXT}." in report
    body = report[: report.index("Parameters of the run")]
    # The section on how the NumPy core is written names PyTorch's API and the tests against it, whatever ran.
    core = body.index("How the NumPy network is written")
    body = body[:core] + body[body.index("\n## ", core) :]
    mentions = [line for line in body.splitlines() if "PyTorch" in line]
    assert len(mentions) == 3 and f"PyTorch did not run: {REASON_TEXT}." in mentions[0], mentions
    assert mentions[1:] == [
        "## 8 NumPy and PyTorch on the same weights",
        f"The cross-evaluation was not run: {REASON_TEXT}.",
    ]


def test_the_report_holds_numpy_only_in_every_table_and_figure(run, report):
    rows = re.findall(r"^\| (NumPy|PyTorch) \| \d", report, flags=re.MULTILINE)
    assert rows == ["NumPy"], "the results table has one row, NumPy's"
    assert "| Class | NumPy |\n| --- | ---: |\n" in report
    assert f"| NumPy | {100 * FAKE_TRAIN['numpy']['best_val_acc']:.2f} % |" in report
    figures = sorted(path.name for path in (run / "reports/figures").iterdir())
    assert "confusion_torch.png" not in figures and "confusion_numpy.png" in figures
    found = captions(report)
    assert [n for n, _ in found["Figure"]] == list(range(1, len(figures) + 1))
    assert [n for n, _ in found["Table"]] == list(range(1, len(found["Table"]) + 1))
    assert not any(caption == "cross-evaluation." for _, caption in found["Table"])
    assert "Report 000, NumPy" in report and "Report 000, PyTorch" not in report


def test_a_report_of_records_alone_loads_no_pytorch_numbers(run, monkeypatch):
    monkeypatch.chdir(run)
    loaded = load_run(paths(run))
    assert loaded.frameworks == ("numpy",) and loaded.not_run == {"torch": REASON_TEXT}
    assert loaded.cross is None and loaded.cross_not_run == REASON_TEXT
