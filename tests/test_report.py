"""The report of a fake run: the figures are real PNGs, the text names them and holds the run's numbers."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.image import imread

from lablib.data.fashion_mnist import CLASS_NAMES, FILES
from lablib.report import FIGURES, RunPaths, feature_map, load_run, render_markdown
from stages.report import main as report_main
from tests.test_evaluate import FAKE_TRAIN, make_fake_run, run_evaluate

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXPERIMENT_TABLE = "### Series lr\n\n| row | numpy val acc % |\n| --- | ---: |\n| lr-0.01 | 88.12 |\n"


def paths(root: Path) -> RunPaths:
    return RunPaths(
        params=root / "params.yaml",
        prepared=root / "data/prepared",
        raw=root / "data/raw",
        live=root / "dvclive",
        evaluation=root / "evaluation",
        experiments=root / "reports/experiments",
    )


def run_report(root: Path):
    p = paths(root)
    args = ["--params", p.params, "--prepared", p.prepared, "--raw", p.raw, "--live", p.live]
    args += ["--evaluation", p.evaluation, "--experiments", p.experiments, "--out", root / "reports"]
    return CliRunner().invoke(report_main, [str(arg) for arg in args])


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = make_fake_run(tmp_path_factory.mktemp("fake") / "repo")
    assert run_evaluate(root).exit_code == 0
    (root / "reports/experiments").mkdir(parents=True)
    (root / "reports/experiments/lr.md").write_text(EXPERIMENT_TABLE)
    result = run_report(root)
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def report(run) -> str:
    return (run / "reports/report.md").read_text()


@pytest.mark.parametrize("name", sorted(FIGURES.values()))
def test_every_figure_is_a_sensible_non_blank_png(run, name):
    path = run / "reports/figures" / name
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 15_000, f"{name} is suspiciously small ({len(data)} bytes)"
    pixels = imread(path)
    height, width = pixels.shape[:2]
    assert 300 <= height <= 3000 and 400 <= width <= 3000, (height, width)
    assert pixels[..., :3].std() > 0.05, f"{name} looks blank"


def test_report_names_every_figure(report):
    for name in FIGURES.values():
        assert f"](figures/{name})" in report
    assert report.count("*Figure ") == len(FIGURES)


def table_after(report: str, caption: str) -> list[str]:
    """The rows of the Markdown table that follows ``caption``."""
    lines = report[report.index(caption) :].splitlines()[2:]
    return lines[2 : next(i for i, line in enumerate(lines) if not line.startswith("|"))]


def test_results_table_holds_the_runs_numbers(run, report):
    evaluation = {fw: json.loads((run / f"evaluation/{fw}/metrics.json").read_text()) for fw in ("numpy", "torch")}
    rows = {row.split("|")[1].strip(): row for row in table_after(report, "*Table 1:")}
    assert set(rows) == {"NumPy", "PyTorch"}
    for framework, name in (("numpy", "NumPy"), ("torch", "PyTorch")):
        fake, row = FAKE_TRAIN[framework], rows[name]
        best, final = f"{100 * fake['best_val_acc']:.2f} %", f"{100 * fake['final_val_acc']:.2f} %"
        assert f"| {best} | {fake['best_epoch']} | {final} |" in row
        assert f"| {100 * evaluation[framework]['test_acc']:.2f} % |" in row
    assert "| 41.7 |" in rows["NumPy"] and "| 3.21 |" in rows["PyTorch"]


def test_summary_table_cross_evaluation_and_per_class(run, report):
    assert "| Conv2d | 320 | (1, 28, 28) | (32, 28, 28) |" in report
    assert "| Linear | 4,195,328 | (4096) | (1024) |" in report
    assert "| **Total** | **4,866,058** | | |" in report
    agreement = json.loads((run / "evaluation/cross.json").read_text())["numpy_weights"]["agreement"]
    assert "| trained with NumPy (`models/numpy.npz`) | " in report and f"{100 * agreement:.2f} %" in report
    shirt = json.loads((run / "evaluation/numpy/metrics.json").read_text())["per_class_acc"]["Shirt"]
    assert f"| 6: Shirt | {100 * shirt:.2f} % |" in report


def test_provenance_parameters_and_experiments(report):
    for name, entry in FILES.items():
        assert f"| `{name}` | `{entry.sha256}` | matches |" in report
    assert "Debian's package dataset-fashion-mnist" in report
    assert "```yaml\n" in report and "feature_samples: 100" in report and "epochs: 3" in report
    assert "## 9 Experiments" in report and "| lr-0.01 | 88.12 |" in report


def test_report_without_experiments_has_no_such_section(run, tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(run, root, ignore=shutil.ignore_patterns("reports"))
    loaded = load_run(paths(root))
    assert loaded.experiments == {}
    fmap = feature_map(loaded.features, loaded.feature_labels, seed=0)
    text = render_markdown(replace(loaded, experiments={}), fmap)
    assert "Experiments" not in text and "## 8 Parameters of the run" in text


def test_feature_map_is_seeded_and_measures_neighbours(run):
    loaded = load_run(paths(run))
    features, labels = loaded.features[::2], loaded.feature_labels[::2]
    first, second = (feature_map(features, labels, seed=0) for _ in range(2))
    np.testing.assert_array_equal(first.points, second.points)
    assert first.points.shape == (len(labels), 2)
    assert set(first.purity) == set(CLASS_NAMES) and all(0 <= v <= 1 for v in first.purity.values())


def test_a_failed_report_leaves_the_previous_one_intact(run, tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(run, root)
    before = {path: path.read_bytes() for path in (root / "reports").rglob("*") if path.is_file()}
    (root / "evaluation/torch/confusion.csv").unlink()
    result = run_report(root)
    assert result.exit_code == 1
    assert "torch/confusion.csv not found" in result.output and "Traceback" not in result.output
    after = {path: path.read_bytes() for path in (root / "reports").rglob("*") if path.is_file()}
    assert after == before
    assert not [p.name for p in (root / "reports").iterdir() if p.name.startswith(".")], "staging left behind"


def test_stage_help():
    result = CliRunner().invoke(report_main, ["--help"])
    assert result.exit_code == 0 and "report.md" in result.output
