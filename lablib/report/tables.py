"""The report's Markdown tables, each from the run's numbers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lablib.data.fashion_mnist import CLASS_NAMES, FILES
from lablib.models.numpy_model import Classifier
from lablib.models.summary import summary
from lablib.params import FRAMEWORKS, TrainParams
from lablib.report.inputs import Run
from lablib.report.labels import FRAMEWORK_LABELS, OPTIMIZER_NAMES, VALIDATION_MEASURES
from lablib.report.mistakes import confusion_frameworks, most_confused
from lablib.report.prose import number, percent, spread
from lablib.report.series_inputs import Report001
from lablib.report.settings import schedule_rule


def results_table(run: Run) -> str:
    """Per framework: validation (best and final), test, best epoch, speed."""
    lines = [
        "| Framework | Best val. acc. | Best epoch | Final val. acc. | Test acc. | Test loss | s/epoch | images/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for fw in run.frameworks:
        t, e = run.train[fw], run.evaluation[fw]
        lines.append(
            f"| {FRAMEWORK_LABELS[fw]} | {percent(t['best_val_acc'])} | {t['best_epoch']} | "
            f"{percent(t['final_val_acc'])} | {percent(e['test_acc'])} | {e['test_loss']:.4f} | "
            f"{number(t['mean_epoch_seconds'])} | {t['images_per_second']:,.0f} |"
        )
    return "\n".join(lines)


def per_class_table(run: Run) -> str:
    """Accuracy per class, a column per framework whose confusion matrix the report shows."""
    shown = confusion_frameworks(run)
    lines = [
        "| Class | " + " | ".join(FRAMEWORK_LABELS[fw] for fw in shown) + " |",
        "| --- |" + " ---: |" * len(shown),
    ]
    for c, name in enumerate(CLASS_NAMES):
        cells = " | ".join(percent(run.evaluation[fw]["per_class_acc"][name]) for fw in shown)
        lines.append(f"| {c}: {name} | {cells} |")
    return "\n".join(lines)


def confused_table(run: Run) -> str:
    lines = ["| Framework | True class | Predicted as | Images |", "| --- | --- | --- | ---: |"]
    for fw in confusion_frameworks(run):
        for actual, predicted, count in most_confused(run.confusion[fw]):
            lines.append(f"| {FRAMEWORK_LABELS[fw]} | {actual} | {predicted} | {count} |")
    return "\n".join(lines)


def layers_table(model: Classifier) -> str:
    """Report 000's Table 1 for ``model``, with each convolution's and pooling's kernel, stride and padding."""
    rows = summary(model)
    lines = [
        "| Layer | Kernel | Stride | Padding | Parameters | Input shape | Output shape |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for layer, row in zip([*model.features, *model.classifier], rows, strict=True):
        window = [getattr(layer, name, None) for name in ("kernel_size", "stride", "padding")]
        kernel, stride, padding = ("" if value is None else str(value) for value in window)
        if kernel:
            kernel = f"{kernel}×{kernel}"
        lines.append(
            f"| {row.layer} | {kernel} | {stride} | {padding} | {row.parameters:,} | {_shape(row.input_shape)} | "
            f"{_shape(row.output_shape)} |"
        )
    lines.append(f"| **Total** | | | | **{sum(row.parameters for row in rows):,}** | | |")
    return "\n".join(lines)


def _shape(shape: tuple[int, ...]) -> str:
    """``(32, 28, 28)``, and ``(4096)`` for one axis, as report 000's Table 1 writes it."""
    return f"({', '.join(str(d) for d in shape)})"


def parameters_table(changed: Mapping[str, tuple[Any, Any]]) -> str:
    """The parameters in which the run differs from report 000's (preset ``lab2025``): key, this run's value
    and the preset's."""
    lines = ["| Parameter | This run | Report 000 (preset `lab2025`) |", "| --- | --- | --- |"]
    lines += [f"| `{key}` | {_value(ours)} | {_value(theirs)} |" for key, (ours, theirs) in changed.items()]
    return "\n".join(lines)


def _value(value: Any) -> str:
    return "null" if value is None else f"{value}"


def cross_table(run: Run) -> str:
    lines = [
        "| Weights | NumPy model acc. | PyTorch model acc. | Same prediction | Largest logit difference |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for fw in FRAMEWORKS:
        entry = run.cross[f"{fw}_weights"]
        lines.append(
            f"| trained with {FRAMEWORK_LABELS[fw]} (`models/{fw}.npz`) | {percent(entry['numpy_acc'])} | "
            f"{percent(entry['torch_acc'])} | {percent(entry['agreement'])} | {entry['max_abs_logit_diff']:.2g} |"
        )
    return "\n".join(lines)


def provenance_table(provenance: dict[str, Any]) -> str:
    if provenance.get("source") == "course_csv":  # the course's files have no published hash
        lines = ["| File | SHA-256 |", "| --- | --- |"]
        lines += [f"| `{name}` | `{digest}` |" for name, digest in provenance["sha256"].items()]
        return "\n".join(lines)
    lines = ["| File | SHA-256 of the decompressed bytes | Published hash |", "| --- | --- | --- |"]
    for name, digest in provenance["sha256"].items():
        official = FILES.get(name)
        verdict = "matches" if official and official.sha256 == digest else "**does not match**"
        lines.append(f"| `{name}` | `{digest}` | {verdict} |")
    return "\n".join(lines)


def _settings(train: TrainParams) -> dict[str, str]:
    """The hyper-parameters report 000 lists in its 5.2, and its techniques (2.4, 2.5, 3.3, 3.4)."""
    return {
        "Model": f"`{train.model}`",
        "Epochs": f"{train.epochs}",
        "Optimiser": OPTIMIZER_NAMES[train.optimizer],
        "Batch size": f"{train.batch_size}",
        "Learning-rate schedule": schedule_rule(train),
        "Center-loss weight": f"{train.center_loss_weight:g}",
        "Augmentation": "on" if train.augment.enabled else "off",
        "Random erasing": f"{train.augment.erase:g} of the images"
        if train.augment.enabled and train.augment.erase
        else "off",
        "Label smoothing": f"{train.label_smoothing:g}" if train.label_smoothing else "off",
        "Sampling": train.sampling,
    }


def report000_table(run: Run) -> str:
    """Report 000's published results and hyper-parameters beside this run's, per framework that ran,
    and the tuned preset's where its series has run."""
    ref, tuned, ran = run.report000, run.report000.tuned, run.frameworks
    columns = {fw: [_settings(ref.params.train_for(fw)), _settings(run.params.train_for(fw))] for fw in ran}
    rows = {
        "Best validation accuracy (hold-out)": {
            fw: [
                f"{percent(ref.best_val_acc[fw])} (epoch {ref.best_epoch[fw]})",
                f"{percent(run.train[fw]['best_val_acc'])} (epoch {run.train[fw]['best_epoch']})",
            ]
            for fw in ran
        },
        "Test accuracy": {fw: ["not reported", percent(run.evaluation[fw]["test_acc"])] for fw in ran},
        "Seconds per epoch": {
            fw: ["–".join(number(s) for s in ref.epoch_seconds[fw]), number(run.train[fw]["mean_epoch_seconds"])]
            for fw in ran
        },
    }
    who = ["Report 000", "This run"]
    if tuned is not None:
        who.append(f"`{tuned.preset}`")
        for fw in ran:
            columns[fw].append(_settings(tuned.params.train_for(fw)))
            rows["Best validation accuracy (hold-out)"][fw].append(_maybe_percent(tuned.best_val_acc[fw]))
            rows["Test accuracy"][fw].append(_maybe_percent(tuned.test_acc[fw]))
            seconds = tuned.epoch_seconds[fw]
            threads = f" ({tuned.threads} thread{'s' if tuned.threads > 1 else ''})"
            rows["Seconds per epoch"][fw].append("" if seconds is None else number(seconds) + threads)
    # The spread over seeds of the shipped default ("This run" column) and of the tuned preset.
    seeded = [None, ref.default_spread, *([ref.tuned_spread] if tuned is not None else [])]
    if any(seeded):
        for name, measure in (("Best validation accuracy", "best_val_acc"), ("Test accuracy", "test_acc")):
            rows[f"{name} over seeds"] = {
                fw: ["" if one is None else spread(getattr(one, measure)[fw]) for one in seeded] for fw in ran
            }
    for setting in columns["numpy"][0]:
        rows[setting] = {fw: [column[setting] for column in columns[fw]] for fw in ran}
    header = [f"{column}, {FRAMEWORK_LABELS[fw]}" for fw in ran for column in who]
    lines = ["| | " + " | ".join(header) + " |", "| --- |" + " ---: |" * len(header)]
    lines += [
        f"| {name} | " + " | ".join(cell for fw in ran for cell in cells[fw]) + " |" for name, cells in rows.items()
    ]
    return "\n".join(lines)


def report001_table(table: Report001) -> str:
    """Report 001's Table 1, row by row, beside this project's run of each row: best validation accuracy
    (with the scheme it was measured by) and official test accuracy, for each framework that ran."""
    ran = [fw for fw in FRAMEWORKS if any(row.test_acc[fw] is not None for row in table.rows)]
    header = ["Row", "Report 001 (leaderboard top-1)", "Validated on"]
    for fw in ran:
        header += [f"{FRAMEWORK_LABELS[fw]} best val. acc.", f"{FRAMEWORK_LABELS[fw]} official test acc."]
    lines = ["| " + " | ".join(header) + " |", "| --- | ---: | --- |" + " ---: |" * (2 * len(ran))]
    for row in table.rows:
        cells = [row.row, f"{row.reference:.2f} %", VALIDATION_MEASURES[row.validation]]
        for fw in ran:
            cells += [spread(row.best_val_acc[fw]), spread(row.test_acc[fw])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _maybe_percent(fraction: float | None) -> str:
    return "" if fraction is None else percent(fraction)
