"""The report of a fake run in the pipeline's evaluation layout: the figures are real PNGs, every figure and
table is numbered in the order it appears, and the text holds the run's numbers beside the course reports'."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from matplotlib.image import imread

from lablib.data.fashion_mnist import CLASS_NAMES, FILES, NUM_CLASSES
from lablib.evaluate import classification_metrics, write_predictions
from lablib.experiments.tables import summarise, write_tables
from lablib.params import FRAMEWORKS
from lablib.report import FIGURES, ReportError, RunPaths, load_run
from lablib.report.analysis import tsne_map
from lablib.report.contents import CONTENTS, Entry, Numbering
from lablib.report.mistakes import confusion_frameworks, misclassified, most_confused
from lablib.report.text import render_markdown
from stages.report import main as report_main
from tests.test_evaluate import FAKE_TRAIN, FEATURE_SAMPLES, REPO, make_fake_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXPERIMENT_TABLE = "### Series lr\n\n| row | numpy val acc % |\n| --- | ---: |\n| lr-0.01 | 88.12 |\n"
# Accuracy of each framework's fake predictions; the cross-evaluation of the fake compare stage.
FAKE_ACCURACY = {"numpy": 0.8, "torch": 0.86}
FAKE_CROSS = {
    "numpy_weights": {"numpy_acc": 0.8, "torch_acc": 0.8, "agreement": 1.0, "max_abs_logit_diff": 2.1e-6},
    "torch_weights": {"numpy_acc": 0.86, "torch_acc": 0.8593, "agreement": 0.9993, "max_abs_logit_diff": 3.4e-6},
    "min_agreement": 0.9993,
    "trained_models_agreement": 0.7712,
}
# This project's run of report 001's Table 1, NumPy only, as `python -m lablib.experiments table` writes it.
SERIES_VAL = {"baseline": 88.41, "step_lr": 89.02, "kfold": 91.3, "shuffle_16": 91.87, "width20_30": 92.5}
SERIES_TEST = {"baseline": 88.12, "step_lr": 88.9, "kfold": 89.45, "shuffle_16": 89.61, "width20_30": 89.88}


def paths(root: Path) -> RunPaths:
    return RunPaths(
        params=root / "params.yaml",
        prepared=root / "data/prepared",
        raw=root / "data/raw",
        live=root / "dvclive",
        evaluation=root / "evaluation",
        experiments=root / "reports/experiments",
        config=root / "experiments.yaml",
    )


def run_report(root: Path):
    p = paths(root)
    args = ["--params", p.params, "--prepared", p.prepared, "--raw", p.raw, "--live", p.live]
    args += ["--evaluation", p.evaluation, "--experiments", p.experiments, "--config", p.config]
    args += ["--out", root / "reports"]
    return CliRunner().invoke(report_main, [str(arg) for arg in args])


def write_evaluation(root: Path) -> None:
    """What evaluate_numpy, evaluate_torch and compare write (layout.md): per framework metrics.json,
    confusion.csv and features.npz, and cross.json. Predictions are right with each framework's
    :data:`FAKE_ACCURACY`; features are class centres plus noise, for a stratified sample."""
    rng = np.random.default_rng(1)
    labels = np.load(root / "data/prepared/test_labels.npy")
    sample = np.sort(np.concatenate([np.flatnonzero(labels == c)[: FEATURE_SAMPLES // NUM_CLASSES] for c in range(10)]))
    centres = rng.normal(0, 1, (NUM_CLASSES, 256))
    for fw in FRAMEWORKS:
        folder = root / "evaluation" / fw
        folder.mkdir(parents=True)
        wrong = (labels + rng.integers(1, NUM_CLASSES, len(labels))) % NUM_CLASSES
        predictions = np.where(rng.random(len(labels)) < FAKE_ACCURACY[fw], labels, wrong)
        logits = np.eye(NUM_CLASSES)[predictions] * 3 + rng.normal(0, 0.1, (len(labels), NUM_CLASSES))
        metrics = {**classification_metrics(logits, labels), "test_images": len(labels)}
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
        write_predictions(folder / "confusion.csv", labels, predictions)
        features = centres[labels[sample]] + rng.normal(0, 0.8, (len(sample), 256))
        np.savez(folder / "features.npz", features=features.astype(np.float32), labels=labels[sample], index=sample)
    (root / "evaluation/cross.json").write_text(json.dumps(FAKE_CROSS, indent=2))


def write_series(folder: Path, stem: str = "report001") -> None:
    """A NumPy-only table of series report001 with the columns the series writes (none for PyTorch)."""
    rows = [
        {
            "row": row,
            "overrides": "(preset)",
            "targets": "evaluate_numpy",
            "jobs": 2,
            "threads per job": 1,
            "numpy val acc %": SERIES_VAL[row],
            "numpy test acc %": SERIES_TEST[row],
            "numpy s/epoch": 12.5,
            "report %": 90.0,
        }
        for row in SERIES_VAL
    ]
    table = pd.DataFrame(rows)
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / f"{stem}.csv", index=False)
    (folder / f"{stem}.md").write_text(f"### Series {stem}\n\n{table.to_markdown(index=False, floatfmt='.2f')}\n")


# The tuned preset's row of its series (published.report000.tuned), both frameworks, one thread each.
TUNED_ROW = {
    "row": "erase_smooth_50",
    "overrides": "epochs=50, augment.erase=0.25, label_smoothing=0.1",
    "targets": "evaluate_numpy, evaluate_torch",
    "jobs": 2,
    "threads per job": 1,
    "numpy val acc %": 94.71,
    "numpy test acc %": 94.55,
    "numpy s/epoch": 110.2,
    "torch val acc %": 94.6,
    "torch test acc %": 94.62,
    "torch s/epoch": 100.4,
}


def write_tuned_series(folder: Path, rows: list[dict] | None = None) -> None:
    pd.DataFrame(rows or [TUNED_ROW]).to_csv(folder / "recipes_long.csv", index=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = make_fake_run(tmp_path_factory.mktemp("fake") / "repo")
    shutil.copy2(REPO / "experiments.yaml", root / "experiments.yaml")
    write_evaluation(root)
    (root / "reports/experiments").mkdir(parents=True)
    (root / "reports/experiments/lr.md").write_text(EXPERIMENT_TABLE)
    write_series(root / "reports/experiments")
    write_tuned_series(root / "reports/experiments")
    result = run_report(root)
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def report(run) -> str:
    return (run / "reports/report.md").read_text()


@pytest.fixture(scope="module")
def loaded(run):
    run_inputs = load_run(paths(run))
    return run_inputs, tsne_map(run_inputs.features, run_inputs.feature_labels, seed=0)


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


def captions(report: str) -> dict[str, list[tuple[int, str]]]:
    """Per kind, the (number, caption) of every numbered figure and table, in order of appearance."""
    found: dict[str, list[tuple[int, str]]] = {"Figure": [], "Table": []}
    for kind, n, caption in re.findall(r"^\*(Figure|Table) (\d+): (.+)\*$", report, flags=re.MULTILINE):
        found[kind].append((int(n), caption))
    return found


def test_every_figure_and_table_appears_once_numbered_in_order(report):
    """The fake run's frameworks disagree, so both confusion matrices show; its series has one seed a row,
    so report 001's noise table does not."""
    found = captions(report)
    tables = [entry for entry in CONTENTS if entry.kind == "Table" and entry.key != "report001_noise"]
    assert [n for n, _ in found["Figure"]] == list(range(1, len(FIGURES) + 1))
    assert [n for n, _ in found["Table"]] == list(range(1, len(tables) + 1))
    for key, name in FIGURES.items():
        number = Numbering(included=["report001", "confusion_torch"])[key]
        assert report.count(f"](figures/{name})") == 1
        assert f"![{number}: " in report and report.index(f"![{number}: ") < report.index(f"](figures/{name})")


def test_cross_references_name_the_right_figure_and_table(report):
    number = {caption: f"{kind} {n}" for kind, entries in captions(report).items() for n, caption in entries}
    samples = number["the first eight training images of each class"]
    layers = number["layers, kernels, strides, paddings, parameters and shapes (report 000, Table 1)."]
    lr = number["the learning rate at the start of each epoch, as logged during training"]
    tsne = next(label for caption, label in number.items() if caption.startswith("t-SNE map"))
    assert f"{samples} shows why the task is not trivial" in report
    assert f"parameters, {layers})" in report
    assert f"{lr} plots the rate the training loop actually used" in report
    assert f"the center loss acts on and {tsne} maps" in report
    for reference in re.findall(r"(?<![*!\[(])\b(?:Figure|Table) \d+\b", report):
        assert reference in number.values(), f"{reference} is cited but no such caption exists"


def test_numbering_follows_the_one_list():
    numbering = Numbering()
    assert numbering["results"] == "Table 1" and numbering["samples"] == "Figure 1" and numbering["tsne"] == "Figure 7"
    with pytest.raises(KeyError):
        numbering["report001"]
    assert Numbering(included=["report001"])["report001"] == "Table 7"
    assert Numbering(included=["confusion_torch"])["tsne"] == "Figure 8", "the second matrix renumbers the rest"
    inserted = list(CONTENTS)
    inserted.insert(1, Entry("Figure", "new"))
    renumbered = Numbering(contents=inserted)
    assert renumbered["new"] == "Figure 1" and renumbered["samples"] == "Figure 2" and renumbered["tsne"] == "Figure 8"
    assert renumbered.figure("new", "a caption").endswith("*Figure 1: a caption*")


def test_results_table_holds_the_runs_numbers(run, report):
    rows = {row.split("|")[1].strip(): row for row in table_after(report, "validation and test accuracy, and speed")}
    assert set(rows) == {"NumPy", "PyTorch"}
    for framework, name in (("numpy", "NumPy"), ("torch", "PyTorch")):
        evaluation = json.loads((run / f"evaluation/{framework}/metrics.json").read_text())
        fake, row = FAKE_TRAIN[framework], rows[name]
        best, final = f"{100 * fake['best_val_acc']:.2f} %", f"{100 * fake['final_val_acc']:.2f} %"
        assert f"| {best} | {fake['best_epoch']} | {final} |" in row
        assert f"| {100 * evaluation['test_acc']:.2f} % |" in row
    assert "| 41.7 |" in rows["NumPy"] and "| 3.21 |" in rows["PyTorch"]


def table_after(report: str, caption: str) -> list[str]:
    """The rows of the Markdown table whose caption contains ``caption``."""
    lines = report[report.index(caption) :].splitlines()[2:]
    return lines[2 : next(i for i, line in enumerate(lines) if not line.startswith("|"))]


def test_summary_table_cross_evaluation_and_per_class(run, report):
    assert "| Conv2d | 3×3 | 1 | 1 | 320 | (1, 28, 28) | (32, 28, 28) |" in report
    assert "| Conv2d | 3×3 | 2 | 1 | 18,496 | (32, 28, 28) | (64, 14, 14) |" in report
    assert "| Linear |  |  |  | 4,195,328 | (4096) | (1024) |" in report
    assert "| **Total** | | | | **4,866,058** | | |" in report
    assert "| trained with PyTorch (`models/torch.npz`) | 86.00 % | 85.93 % | 99.93 % | 3.4e-06 |" in report
    assert "predict the same class for 99.93 % of the test images" in report
    assert "agree on 77.12 % of the images" in report
    shirt = json.loads((run / "evaluation/numpy/metrics.json").read_text())["per_class_acc"]["Shirt"]
    assert f"| 6: Shirt | {100 * shirt:.2f} % |" in report


def test_confusion_figures_count_the_csv(loaded):
    run_inputs, _ = loaded
    for fw in FRAMEWORKS:
        matrix = run_inputs.confusion[fw]
        assert matrix.sum() == run_inputs.test_images
        per_class = np.diag(matrix) / matrix.sum(axis=1)
        np.testing.assert_allclose(per_class, [run_inputs.evaluation[fw]["per_class_acc"][c] for c in CLASS_NAMES])


def test_most_confused_lists_the_largest_off_diagonal_cells():
    matrix = np.diag(np.full(10, 90))
    matrix[6, 0], matrix[2, 4], matrix[6, 2], matrix[9, 7] = 30, 20, 12, 1
    assert most_confused(matrix, k=3) == [
        ("Shirt", "T-shirt/top", 30),
        ("Pullover", "Coat", 20),
        ("Shirt", "Pullover", 12),
    ]
    assert most_confused(np.diag(np.ones(10, dtype=int))) == []


def test_confusions_table_and_sentence_come_from_the_csv(loaded, report):
    run_inputs, _ = loaded
    for fw, label in (("numpy", "NumPy"), ("torch", "PyTorch")):
        pairs = most_confused(run_inputs.confusion[fw])
        assert pairs, "the fake run makes mistakes"
        for actual, predicted, count in pairs:
            assert f"| {label} | {actual} | {predicted} | {count} |" in report
        actual, predicted, count = pairs[0]
        assert f"the most frequent mistake is {actual} taken for {predicted} ({count} images)" in report


def test_provenance_parameters_and_experiments(report):
    for name, entry in FILES.items():
        assert f"| `{name}` | `{entry.sha256}` | matches |" in report
    assert "Debian's package dataset-fashion-mnist" in report
    assert "```yaml" not in report, "no dump of params.yaml: what differs from report 000's, and a link"
    assert "[`params.yaml`](../params.yaml)" in report
    rows = {row.split("|")[1].strip(): row for row in table_after(report, "the run's parameters that differ")}
    assert rows["`epochs`"] == "| `epochs` | 3 | 200 |" and "`seed`" not in rows
    headings = re.findall(r"^## (.+)$", report, flags=re.MULTILINE)
    assert headings[-4:] == ["10 Parameters of the run", "11 Experiments", "Glossary", "Reproducing"]
    assert "### 2.3 Provenance" in report and "### 9.2 Report 001" in report
    assert "## 7 How the NumPy network is written" in report and "(9, 196,000) matrix" in report
    for term in ("DVC", "Preset", "Series", "Stratified hold-out", "One-cycle", "Center loss", "Label smoothing"):
        assert f"- **{term}**: " in report
    assert "| lr-0.01 | 88.12 |" in report


def test_report000_beside_this_run(run, report):
    rows = {row.split("|")[1].strip(): row for row in table_after(report, "report 000's published results")}
    assert (
        "| 94.49 % (epoch 125) | 81.23 % (epoch 2) | 94.71 % | 94.19 % (epoch 97) | 83.45 % (epoch 3) | 94.60 % |"
        in rows["Best validation accuracy (hold-out)"]
    )
    test = {fw: json.loads((run / f"evaluation/{fw}/metrics.json").read_text())["test_acc"] for fw in FRAMEWORKS}
    assert (
        f"| not reported | {100 * test['numpy']:.2f} % | 94.55 % | not reported | {100 * test['torch']:.2f} % |"
        in rows["Test accuracy"]
    )
    assert "| 237.2–240.9 | 41.7 | 110.2 (1 thread) | 2.00–2.60 | 3.21 |" in rows["Seconds per epoch"]
    assert "| 200 | 3 | 50 | 200 | 3 | 50 |" in rows["Epochs"]
    assert "| 250 | 250 | 250 | 500 | 250 | 250 |" in rows["Batch size"]
    assert "multiplied by 0.5 every 10 epochs after epoch 100 | one cycle" in rows["Learning-rate schedule"]
    assert "a learning rate of 0.001, multiplied by 0.5" in rows["Learning-rate schedule"]
    assert "13.26 points below report 000's with NumPy" in report
    assert "reports no test accuracy" in report


def test_tuned_preset_beside_report000(report):
    caption = "beside this run's and preset `lab2025_tuned`'s (series `recipes_long`, row `erase_smooth_50`)."
    assert caption in report
    rows = {row.split("|")[1].strip(): row for row in table_after(report, "report 000's published results")}
    header = report[report.index(caption) :].splitlines()[2]
    assert header.count("`lab2025_tuned`") == 2 and header.index("This run, PyTorch") > header.index("NumPy")
    cells = {name: [cell.strip() for cell in row.split("|")[2:-1]] for name, row in rows.items()}
    assert cells["Best validation accuracy (hold-out)"][2::3] == ["94.71 %", "94.60 %"]
    assert cells["Test accuracy"][2::3] == ["94.55 %", "94.62 %"]
    assert cells["Seconds per epoch"][2::3] == ["110.2 (1 thread)", "100.4 (1 thread)"]
    assert cells["Epochs"][2::3] == ["50", "50"]
    assert cells["Random erasing"][0::3] == ["off", "off"], "report 000 had no random erasing"
    assert cells["Random erasing"][2::3] == ["0.25 of the images"] * 2
    assert cells["Label smoothing"][0::3] == ["off", "off"] and cells["Label smoothing"][2::3] == ["0.1", "0.1"]
    assert (
        "Preset `lab2025_tuned` trains the same network, unchanged, for 50 epochs" in report
        and "its best validation accuracy is 0.22 points above report 000's with NumPy and 0.41 points above "
        "report 000's with PyTorch, and it reaches 94.55 % with NumPy and 94.62 % with PyTorch on the official "
        "test images."
        in report
    )


def test_tuned_preset_must_be_its_row_and_its_row_must_have_run(run, tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(run, root, ignore=shutil.ignore_patterns("reports"))
    (root / "reports/experiments").mkdir(parents=True)
    assert load_run(paths(root)).report000.tuned is None, "no table yet: no tuned column"
    write_tuned_series(root / "reports/experiments", [{**TUNED_ROW, "row": "other"}])
    with pytest.raises(ReportError, match=r"recipes_long.csv has no row erase_smooth_50: run it"):
        load_run(paths(root))
    config = yaml.safe_load((root / "experiments.yaml").read_text())
    config["presets"]["lab2025_tuned"]["epochs"] = 60
    (root / "experiments.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ReportError, match=r"preset lab2025_tuned does not set what row erase_smooth_50 of series"):
        load_run(paths(root))


def test_report001_row_by_row_with_each_measure_named(report):
    header, *_ = report[report.index("report 001's Table 1 beside") :].splitlines()[2:3]
    assert "PyTorch" not in header, "a NumPy-only series shows no PyTorch columns"
    assert "Report 001 (leaderboard top-1)" in header and "NumPy official test acc." in header
    rows = {row.split("|")[1].strip(): row for row in table_after(report, "report 001's Table 1 beside")}
    reference = yaml.safe_load((REPO / "experiments.yaml").read_text())["series"]["report001"]["reference"]
    assert list(rows) == list(reference) == list(SERIES_VAL)
    assert [reference[row] for row in rows] == [88.83, 89.31, 89.79, 90.00, 90.17]
    for row, line in rows.items():
        measure = "hold-out" if row in ("baseline", "step_lr") else "rotating fold"
        expected = f"| {reference[row]:.2f} % | {measure} | {SERIES_VAL[row]:.2f} % | {SERIES_TEST[row]:.2f} % |"
        assert expected in line, line
    assert "the accuracy on the official test images, the measure to compare" in report and "quick runs" not in report


def test_report_without_experiments_has_no_such_section_and_one_table_less(run, tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(run, root, ignore=shutil.ignore_patterns("reports"))
    loaded = load_run(paths(root))
    assert loaded.experiments == {} and loaded.report001 is None
    text = render_markdown(replace(loaded, experiments={}), tsne_map(loaded.features, loaded.feature_labels, seed=0))
    assert "## 11 Experiments" not in text and "## 10 Parameters of the run" in text
    tables = [n for n, _ in captions(text)["Table"]]
    assert tables == list(range(1, len(CONTENTS) - len(FIGURES) - 1))
    assert "once the series `report001` has run" in text


def test_a_quick_series_table_is_used_and_said_to_be_quick(run, tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(run, root, ignore=shutil.ignore_patterns("reports"))
    write_series(root / "reports/experiments", "report001-quick")
    loaded = load_run(paths(root))
    assert loaded.report001.quick and loaded.report001.table.name == "report001-quick.md"
    text = render_markdown(loaded, tsne_map(loaded.features, loaded.feature_labels, seed=0))
    assert "These are quick runs" in text


def test_feature_map_is_seeded_and_measures_neighbours(loaded):
    run_inputs, _ = loaded
    features, labels = run_inputs.features[::2], run_inputs.feature_labels[::2]
    first, second = (tsne_map(features, labels, seed=0) for _ in range(2))
    np.testing.assert_array_equal(first.points, second.points)
    assert first.points.shape == (len(labels), 2)
    assert set(first.purity) == set(CLASS_NAMES) and all(0 <= v <= 1 for v in first.purity.values())


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("evaluation/torch/confusion.csv", "confusion.csv not found: run the evaluate_torch stage"),
        ("evaluation/cross.json", "cross.json not found: run the compare stage"),
        ("evaluation/numpy/features.npz", "features.npz not found: run the evaluate_numpy stage"),
        ("experiments.yaml", "experiments.yaml not found"),
    ],
)
def test_a_failed_report_names_its_input_and_leaves_the_previous_one_intact(run, tmp_path, missing, message):
    root = tmp_path / "repo"
    shutil.copytree(run, root)
    before = {path: path.read_bytes() for path in (root / "reports").rglob("*") if path.is_file()}
    (root / missing).unlink()
    result = run_report(root)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    after = {path: path.read_bytes() for path in (root / "reports").rglob("*") if path.is_file()}
    assert after == before
    assert not [p.name for p in (root / "reports").iterdir() if p.name.startswith(".")], "staging left behind"


def test_the_report_imports_neither_torch_nor_the_training_code():
    code = "import sys, stages.report; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'"
    code += " or m.startswith(('lablib.train', 'lablib.optim', 'lablib.evaluate'))))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_text_and_tables_take_their_labels_without_matplotlib():
    """Imported without the package's ``__init__`` (which loads the figures for write_report), the text
    and the tables pull in neither matplotlib nor the figures' module."""
    code = (
        "import sys, types, lablib; package = types.ModuleType('lablib.report'); "
        "package.__path__ = [lablib.__path__[0] + '/report']; sys.modules['lablib.report'] = package; "
        "import lablib.report.text, lablib.report.tables; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib' or m == 'lablib.report.figures'))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_stage_help():
    result = CliRunner().invoke(report_main, ["--help"])
    assert result.exit_code == 0 and "report.md" in result.output


def seeded_table(folder: Path, stem: str, values: dict[str, dict[str, list[float]]], reference=None) -> None:
    """A series table over seeds as `python -m lablib.experiments table` writes it, NumPy only: per row the
    best validation and test accuracies (%) of each seed."""
    lines = [
        {
            "row": row,
            "seed": seed,
            "overrides": "(preset)",
            "targets": "evaluate_numpy",
            "jobs": 2,
            "threads per job": 1,
            "numpy val acc %": val,
            "numpy test acc %": test,
            "numpy s/epoch": 12.5,
        }
        for row, measured in values.items()
        for seed, (val, test) in enumerate(zip(measured["val"], measured["test"], strict=True))
    ]
    per_seed = pd.DataFrame(lines)
    table = summarise(per_seed, {row: len(measured["val"]) for row, measured in values.items()}, reference)
    write_tables(per_seed, table, folder, stem, f"Series {stem}")


def seeds_table(folder: Path) -> None:
    """Series `seeds` as the tests read it: the shipped default over 5 seeds and the tuned preset over 3."""
    seeded_table(
        folder,
        "seeds",
        {
            "default": {"val": [94.2, 94.5, 94.3, 94.6, 94.4], "test": [94.0, 94.1, 94.2, 94.3, 94.1]},
            "lab2025_tuned": {"val": [94.6, 94.7, 94.8], "test": [94.7, 94.8, 94.9]},
        },
    )


def test_the_reports_figures_are_judged_against_the_spread_over_seeds(run, tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(run, root)
    folder = root / "reports/experiments"
    reference = yaml.safe_load((REPO / "experiments.yaml").read_text())["series"]["report001"]["reference"]
    last = {"val": [94.8, 94.9, 95.0, 94.7, 94.9], "test": [89.7, 89.9, 89.8, 90.0, 89.6]}
    rows = {
        row: {"val": [SERIES_VAL[row]] * 5, "test": [SERIES_TEST[row] + d for d in (-0.2, -0.1, 0, 0.1, 0.2)]}
        for row in SERIES_VAL
    }
    rows["width20_30"] = last
    seeded_table(folder, "report001", rows, reference)
    seeds_table(folder)
    loaded = load_run(paths(root))
    text = render_markdown(loaded, tsne_map(loaded.features, loaded.feature_labels, seed=0))

    table7 = {row.split("|")[1].strip(): row for row in table_after(text, "report 001's Table 1 beside")}
    assert (
        "| 90.17 % | rotating fold | 94.86 ± 0.11 % (94.70–95.00, 5 seeds) | 89.80 ± 0.16 % (89.60–90.00, 5 seeds) |"
        in table7["width20_30"]
    )
    noise = {row.split("|")[1].strip(): row for row in table_after(text, "report 001's figures against our official")}
    assert noise["width20_30"] == (
        "| width20_30 | 90.17 % | 89.80 ± 0.16 % (89.60–90.00, 5 seeds) | +0.37 | 2.11 | not distinguishable | "
        "0.35 | not distinguishable |"
    )
    assert "public part of 200 of the official test images and grades it on the private 9,800" in text
    assert "Measured on the public part, none of the figures is distinguishable from our runs" in text
    assert "`baseline` to `step_lr`: report 001 +0.48 points, we +0.78 ± 0.00 (+0.78 to +0.78, 5 seeds)" in text
    assert "`shuffle_16` to `width20_30`: report 001 +0.17 points, we +0.19 ± 0.23" in text

    table6 = {
        row.split("|")[1].strip(): [c.strip() for c in row.split("|")[2:-1]]
        for row in table_after(text, "report 000's published results")
    }
    assert table6["Best validation accuracy over seeds"][:3] == [
        "",
        "94.40 ± 0.16 % (94.20–94.60, 5 seeds)",
        "94.70 ± 0.10 % (94.60–94.80, 3 seeds)",
    ]
    assert table6["Test accuracy over seeds"][3:] == ["", "", ""], "the seeds ran NumPy only"
    assert (
        "against the shipped default over 5 seeds (NumPy, row `default` of series `seeds`: 94.40 ± 0.16 % "
        "(94.20–94.60, 5 seeds)), report 000's NumPy 94.49 % is 0.09 points above our mean (noise 0.29 points: our "
        "mean 0.07, one run's seed 0.16, sampling 0.23): not distinguishable" in text
    )
    assert "This is one run: over 5 seeds the shipped default reaches 94.14 ± 0.11 % (94.00–94.30) with NumPy" in text


def test_identical_twins_show_one_confusion_matrix(run, tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(run, root)
    shutil.copy2(root / "evaluation/numpy/confusion.csv", root / "evaluation/torch/confusion.csv")
    cross = {**FAKE_CROSS, "trained_models_agreement": 1.0}
    (root / "evaluation/cross.json").write_text(json.dumps(cross))
    loaded = load_run(paths(root))
    assert confusion_frameworks(loaded) == ("numpy",)
    text = render_markdown(loaded, tsne_map(loaded.features, loaded.feature_labels, seed=0))
    assert "confusion_torch.png" not in text and "confusion_numpy.png" in text
    assert "The PyTorch model's matrix, its accuracy per class and its confusions are the same, cell for cell" in text
    assert "| Class | NumPy |" in text
    assert all(row.startswith("| NumPy |") for row in table_after(text, "the most frequent confusions"))
    assert [n for n, _ in captions(text)["Figure"]] == list(range(1, len(FIGURES)))


def test_misclassified_images_are_the_most_frequent_mistakes_in_test_order(loaded):
    run_inputs, _ = loaded
    (t, p, count, indices), *_ = misclassified(
        run_inputs.confusion["numpy"], run_inputs.predicted["numpy"], run_inputs.test_labels
    )
    assert (CLASS_NAMES[t], CLASS_NAMES[p], count) == most_confused(run_inputs.confusion["numpy"], k=1)[0]
    assert len(indices) == count and np.all(np.diff(indices) > 0)
    assert np.all(run_inputs.test_labels[indices] == t) and np.all(run_inputs.predicted["numpy"][indices] == p)


def test_predictions_out_of_test_order_are_refused(run, tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(run, root)
    table = pd.read_csv(root / "evaluation/numpy/confusion.csv")
    table.iloc[::-1].to_csv(root / "evaluation/numpy/confusion.csv", index=False)
    with pytest.raises(ReportError, match="does not list the test images in their order"):
        load_run(paths(root))


def test_the_curves_are_read_not_only_drawn(report):
    assert "Training accuracy passes validation accuracy for good at epoch" in report or (
        "stays below validation accuracy to the last epoch" in report
    )
    assert "whose least possible value is their own entropy, 0.500" in report
    assert "The two frameworks' curves lie on one another" in report
    assert "random erasing (0.25) included" in report and "random erasing (Zhong et al. 2017" in report


def test_report000_ablation_says_it_has_not_run_then_reads_its_table(run, report, tmp_path):
    assert "has not been run yet; `make series-report000` runs it" in report
    root = tmp_path / "repo"
    shutil.copytree(run, root)
    folder = root / "reports/experiments"
    seeded_table(
        folder,
        "report000",
        {
            "no_center_loss": {"val": [94.2, 94.3, 94.4], "test": [94.05, 93.85, 93.85]},
            "no_augmentation": {"val": [93.1, 93.2, 93.3], "test": [92.9, 93.0, 93.1]},
            "no_balancing": {"val": [94.2, 94.3, 94.4], "test": [94.1, 94.0, 94.2]},
        },
    )
    loaded = load_run(paths(root))
    text = render_markdown(loaded, tsne_map(loaded.features, loaded.feature_labels, seed=0))
    assert "has not been run yet" not in text
    assert "which has not run; `make series-seeds` runs it" in text, "no default over seeds: nothing to measure by"

    seeds_table(folder)
    loaded = load_run(paths(root))
    text = render_markdown(loaded, tsne_map(loaded.features, loaded.feature_labels, seed=0))
    assert "the default itself is row `default` of series `seeds` (94.14 ± 0.11 % (94.00–94.30, 5 seeds)" in text
    # Cost 94.14 - 93.00 = 1.14 points, noise sqrt(0.114^2 / 5 + 0.1^2 / 3) = 0.077 points.
    assert (
        "without augmentation (`no_augmentation`, `augment.enabled=False`) the test accuracy is 93.00 ± 0.10 % "
        "(92.90–93.10, 3 seeds), +1.14 points of cost, beyond 2 times its noise of 0.08 points: it helps; seed by "
        "seed (0, 1, 2): +1.10, +1.10, +1.10 points" in text
    )
    assert "without center loss (`no_center_loss`, `center_loss.weight=0.0`)" in text
    # Against the default's 5 seeds: 0.22 points beyond 2 x 0.08; seed by seed the costs -0.05, +0.25, +0.35
    # average 0.18 with a standard error of 0.21 / sqrt(3) = 0.12: within 2 x 0.12.
    assert (
        "+0.22 points of cost, beyond 2 times its noise of 0.08 points against the default's 5 seeds but not seed "
        "by seed (0, 1, 2: -0.05, +0.25, +0.35, +0.18 on average, noise 0.12): borderline, not established" in text
    )
    assert (
        "Of report 000's reasons, removing augmentation costs accuracy beyond the noise; the others' credit is "
        "not established by these runs. These are 3-epoch trainings" in text
    ), "the fake run trains 3 epochs"
    assert "The section beside the course reports reads this table against report 000's claims." in text


def test_rows_with_the_same_settings_and_other_numbers_are_explained(run, tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(run, root)
    folder = root / "reports/experiments"
    rows = {row: {"val": [SERIES_VAL[row]] * 2, "test": [SERIES_TEST[row]] * 2} for row in SERIES_VAL}
    seeded_table(folder, "report001", rows)
    lr = pd.DataFrame(
        [
            {"row": f"lr_{rate}", "numpy val acc %": val, "numpy test acc %": test, "numpy s/epoch": 17.0}
            for rate, val, test in ((0.001, 92.0, 88.5), (0.005, 94.9, 89.85), (0.01, 96.0, 89.7))
        ]
    )
    lr.to_csv(folder / "report001_lr.csv", index=False)
    (folder / "report001_lr.md").write_text("### Series report001_lr, run on commit abc1234\n\n| row |\n| --- |\n")
    config = yaml.safe_load((root / "experiments.yaml").read_text())
    config["series"]["report001_lr"]["rows"] = {f"lr_{rate}": {"lr": rate} for rate in (0.001, 0.005, 0.01)}
    (root / "experiments.yaml").write_text(yaml.safe_dump(config))
    loaded = load_run(paths(root))
    text = render_markdown(loaded, tsne_map(loaded.features, loaded.feature_labels, seed=0))
    assert (
        "Rows that set exactly what row `width20_30` of series `report001` sets with seed 0 report other numbers: "
        "row `lr_0.005` of series `report001_lr` (commit abc1234) gives 94.90 / 89.85 %, against 92.50 / 89.88 %"
    ) in text
    assert "preset `lab2023` leaves label smoothing to `params.yaml`" in text, "params.yaml sets 0.1, the preset none"
    assert "The rotating fold's accuracy overstates the test accuracy by 6.30 points at `lr=0.01`" in text
    assert "contradicts report 001's claim that its K-fold counters over-fitting" in text
