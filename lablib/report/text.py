"""The report's text: a section per part of the run, each figure and table with what it shows.

Sections and subsections are numbered by their position, figures and tables by
:mod:`lablib.report.contents`; no number is written by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lablib.models.numpy_model import build_numpy
from lablib.models.specs import get_spec
from lablib.models.summary import summary, summary_markdown
from lablib.params import FRAMEWORKS, Params
from lablib.report.analysis import NEIGHBOURS, FeatureMap
from lablib.report.contents import Numbering
from lablib.report.figures import FRAMEWORK_LABELS
from lablib.report.inputs import Report000, Report001, Run, Seeded, Spread, Tuned
from lablib.report.tables import (
    confused_table,
    cross_table,
    most_confused,
    number,
    per_class_table,
    percent,
    provenance_table,
    report000_table,
    report001_table,
    results_table,
    schedule_rule,
)
from lablib.rng import placeholder

SOURCES = {
    "source_dir": "the folder named by data.source_dir",
    "folder": "a folder named by the user",
    "env": "the folder named by $FASHION_MNIST_DIR",
    "debian": "Debian's package dataset-fashion-mnist",
    "download": "the official download",
    "course_csv": "the course's CSV files",
}


@dataclass(frozen=True)
class Subsection:
    """A ``###`` heading inside a section; its number follows the section's."""

    title: str


@dataclass(frozen=True)
class Section:
    """A ``##`` heading and the paragraphs, figures and tables under it."""

    title: str
    parts: list[str | Subsection]
    numbered: bool = True


def _validation_images(run: Run) -> str:
    if run.params.train.validation == "holdout":
        return f"{run.sizes['val']:,} held-out training images"
    return f"the held-out fold (one of {run.params.data.kfold}) of the {run.sizes['train'] + run.sizes['val']:,} images"


def _speed(numpy_seconds: float, torch_seconds: float) -> str:
    ratio = max(numpy_seconds, torch_seconds) / min(numpy_seconds, torch_seconds)
    if ratio < 1.05:  # within a shared machine's variation from run to run
        return "as fast as each other, to within 5 %"
    return f"{'PyTorch' if numpy_seconds > torch_seconds else 'NumPy'} {ratio:.1f}× faster"


def _agreement(fraction: float) -> str:
    """A share of images for prose: 'every one' when it is all of them."""
    return "every one" if fraction == 1 else percent(fraction)


def _points(difference: float) -> str:
    """A difference of two accuracies, in points, for prose."""
    if abs(difference) < 0.00005:
        return "level with"
    return f"{100 * abs(difference):.2f} points {'above' if difference > 0 else 'below'}"


def describe_schedule(params: Params, frameworks: Sequence[str] = FRAMEWORKS) -> str:
    """The learning-rate schedule in words, with PyTorch's own rate when it trained with one."""
    text = schedule_rule(params.train)
    torch_lr = params.train_for("torch").lr
    if "torch" in frameworks and torch_lr != params.train.lr:
        text += f" (PyTorch's peak or starting rate: {torch_lr:g})"
    return text


def describe_training(params: Params, frameworks: Sequence[str] = FRAMEWORKS) -> str:
    """Optimiser, batches, epochs, extra losses and validation of the run, as one phrase, with PyTorch's
    own batch size when it trained with one."""
    t = params.train
    optimizer = {
        "sgd": f"SGD with momentum {t.momentum:g}",
        "adam": f"Adam (betas {t.betas[0]:g}, {t.betas[1]:g})",
        "adamw": f"AdamW (betas {t.betas[0]:g}, {t.betas[1]:g})",
    }[t.optimizer]
    if t.weight_decay:
        optimizer += f" and weight decay {t.weight_decay:g}"
    sampling = {
        "balanced": f"balanced batches ({t.batch_size // 10} images of each class per batch)",
        "shuffle": f"shuffled batches of {t.batch_size}",
        "sequential": f"batches of {t.batch_size} in a fixed order",
    }[t.sampling]
    validation = {
        "holdout": "validated after every epoch on the fixed stratified hold-out",
        "kfold": f"validated by {params.data.kfold}-fold cross-validation, one model per fold, of which the "
        "best is evaluated",
        "rotating": f"validated each epoch on the next of {params.data.kfold} folds, training on the others "
        "(report 001)",
    }[t.validation]
    extras = []
    if t.center_loss_weight > 0:
        extras.append(f"center loss (weight {t.center_loss_weight:g}, centre rate {t.center_loss_alpha:g})")
    if t.label_smoothing:
        extras.append(f"label smoothing {t.label_smoothing:g}")
    extra = f", with {' and '.join(extras)} besides cross-entropy" if extras else ""
    torch_batch = params.train_for("torch").batch_size
    if "torch" in frameworks and torch_batch != t.batch_size:
        sampling += f" (PyTorch: {torch_batch} images per batch)"
    return f"{optimizer}, {sampling}, {t.epochs} epochs{extra}; {validation}"


def describe_augmentation(params: Params) -> str:
    """The augmentation settings in words."""
    a = params.train.augment
    parts = [f"a shift of up to {a.shift} pixels"] if a.shift else []
    parts += ["a horizontal flip"] if a.flip else []
    parts += [f"a rotation of up to {a.rotate:g}°"] if a.rotate else []
    text = f"one of {', '.join(parts)} or nothing, equally likely" if parts else "no geometric transform"
    text += f", then a change of brightness (±{a.brightness:g}) and contrast (±{100 * a.contrast:g} %)"
    if not a.enabled:
        return f"Augmentation was off for this run; switched on it would apply {text}."
    return f"Each training image went through {text} (report 000, 2.4), drawn anew every epoch."


def _progress(name: str, metrics: dict[str, Any]) -> str:
    """Best and final accuracies of one framework's training, and what their gap says."""
    gap = metrics["final_train_acc"] - metrics["final_val_acc"]
    text = (
        f"{name} reached its best validation accuracy, {percent(metrics['best_val_acc'])}, at epoch "
        f"{metrics['best_epoch']}; after the last epoch training accuracy was {percent(metrics['final_train_acc'])} "
        f"and validation accuracy {percent(metrics['final_val_acc'])}"
    )
    if gap > 0.02:
        return text + f", a gap of {100 * gap:.2f} points: the model fits its training images better than unseen ones."
    if gap < 0:
        return text + (
            ": training accuracy is measured on augmented batches while the weights still change, so it can lie "
            "below validation accuracy."
        )
    return text + ": no sign of over-fitting yet."


def _not_run(run: Run) -> str:
    """One sentence per framework that did not run, saying why (its training stage's record)."""
    return "".join(f" {FRAMEWORK_LABELS[fw]} did not run: {reason}." for fw, reason in run.not_run.items())


def _intro(run: Run, total: int, numbering: Numbering) -> list[str]:
    train = run.params.train
    if run.not_run:
        return [
            "# Fashion-MNIST with a CNN written by hand in NumPy",
            f"This report was generated by `dvc repro` from the run it describes: every number and figure "
            f"below comes from that run. The network `{train.model}` ({total:,} parameters, {numbering['layers']}) "
            f"was trained with this project's NumPy core (forward, backward and optimiser step written by "
            f"hand).{_not_run(run)} The {run.test_images:,} official test images were used only for the final "
            "evaluation.",
            f"**In short:** the NumPy model reaches {percent(run.evaluation['numpy']['test_acc'])} test accuracy.",
        ]
    batches = "the same batches" if run.params.train_for("torch").batch_size == train.batch_size else "the same data"
    return [
        "# Fashion-MNIST with a CNN written by hand in NumPy, and its PyTorch twin",
        f"This report was generated by `dvc repro` from the run it describes: every number and figure "
        f"below comes from that run. The network `{train.model}` ({total:,} parameters, {numbering['layers']}) "
        f"was trained twice, from the same initial weights on {batches}: once with this project's NumPy "
        f"core (forward, backward and optimiser step written by hand), once with PyTorch. The "
        f"{run.test_images:,} official test images were used only for the final evaluation.",
        f"**In short:** the NumPy model reaches {percent(run.evaluation['numpy']['test_acc'])} test accuracy and the "
        f"PyTorch model {percent(run.evaluation['torch']['test_acc'])}. Loaded with the same weights, the two "
        f"implementations predict the same class for {_agreement(run.cross['min_agreement'])} of the "
        f"test images.",
    ]


def _results(run: Run, numbering: Numbering) -> Section:
    seconds = {fw: run.train[fw]["mean_epoch_seconds"] for fw in run.frameworks}
    took = " and ".join(f"{number(seconds[fw])} s with {FRAMEWORK_LABELS[fw]}" for fw in run.frameworks)
    if len(seconds) == len(FRAMEWORKS):
        took += f" ({_speed(seconds['numpy'], seconds['torch'])})"
    parts: list[str | Subsection] = [
        numbering.table("results", "validation and test accuracy, and speed, per framework.", results_table(run)),
        f"Validation accuracy is measured after every epoch on {_validation_images(run)}; test accuracy "
        f"once, on the {run.test_images:,} test images, with the weights after the last epoch "
        f"(for k-fold, of the best fold). An epoch took {took}.",
    ]
    kfold = {fw: run.train[fw].get("kfold") for fw in run.frameworks}
    if all(kfold.values()):
        spread = " and ".join(
            f"{percent(kfold[fw]['mean_val_acc'])} ± {100 * kfold[fw]['std_val_acc']:.2f} points "
            f"({FRAMEWORK_LABELS[fw]})"
            for fw in run.frameworks
        )
        parts.append(f"Over the folds, the mean final validation accuracy is {spread}.")
    return Section("Results", parts)


def _data(run: Run, numbering: Numbering) -> Section:
    return Section(
        "Data",
        [
            Subsection("Fashion-MNIST"),
            f"Fashion-MNIST (Zalando Research) holds 60,000 training and 10,000 test images of clothing, "
            f"28×28 grey pixels in ten classes. This run trained on {run.sizes['train']:,} images and validated "
            f"on {run.sizes['val']:,}, both drawn from the 60,000 training images{_split_text(run)}; "
            "pixels are scaled to [-0.5, 0.5] (report 000, 2.3).",
            numbering.figure("samples", "the first eight training images of each class"),
            f"{numbering['samples']} shows why the task is not trivial: T-shirt/top, Pullover, Coat and Shirt share "
            "one silhouette and differ in details such as collars, buttons and sleeve length.",
            Subsection("Augmentation"),
            describe_augmentation(run.params),
            numbering.figure(
                "augmentation", "four training images under each transform alone, then three random draws"
            ),
            Subsection("Provenance"),
            _provenance_text(run.provenance),
            provenance_table(run.provenance),
        ],
    )


def _split_text(run: Run) -> str:
    if run.params.data.split == "course":
        return " (the last 10,000 of them validate, as the course splits them)"
    return " with every class equally represented"


def _provenance_text(provenance: dict[str, Any]) -> str:
    """Where the data came from and how it was checked: the official files or the course's CSV files."""
    source = provenance.get("source", "unknown")
    if source != "course_csv":
        return (
            f"The files came from {SOURCES.get(source, source)} (`{provenance.get('location', '')}`). "
            "Before anything was written, the fetch stage checked the SHA-256 of each file's decompressed "
            "bytes against the published value:"
        )
    labels = (
        "Its test file has no labels; they were taken from the official test images, each matched to its row."
        if provenance.get("test_labels") == "official"
        else "Its test file has no labels, and no official files were at hand to match: no test accuracy."
    )
    return (
        f"The images came from {SOURCES[source]}: a training file (a label, then 784 pixel values a row) and a "
        f"test file (784 pixel values a row). The fetch stage checked every value (labels 0-9, pixels 0-255) "
        f"and the row counts before anything was written. {labels} The SHA-256 of each file as read:"
    )


def _model(run: Run, rows: list[Any], numbering: Numbering) -> Section:
    train = run.params.train
    role = (
        "The 256-wide output of the second Linear block is the feature vector the center loss acts on "
        f"and {numbering['tsne']} maps."
        if train.model == "lab2025_cnn"
        else f"Its convolution has {train.width} filters."
    )
    return Section(
        "Model",
        [
            f"`{train.model}` as the NumPy core builds it{_twin(run)}. {role}",
            numbering.table("layers", "layers, parameters and shapes (report 000, Table 1).", summary_markdown(rows)),
        ],
    )


def _twin(run: Run) -> str:
    """What the Model section says of the PyTorch twin, when it was built."""
    if "torch" not in run.frameworks:
        return ""
    return (
        "; the PyTorch twin is built from the same description and has the same layers, parameters and state-dict keys"
    )


def _training(run: Run, numbering: Numbering) -> Section:
    train = run.params.train
    lr = run.history["numpy"]["lr"][: train.epochs]
    restart = " (each fold starts the schedule again)" if train.validation == "kfold" else ""
    progress = " ".join(_progress(FRAMEWORK_LABELS[fw], run.train[fw]) for fw in run.frameworks)
    who = "Both frameworks" if len(run.frameworks) == len(FRAMEWORKS) else "The NumPy model"
    sides = FRAMEWORK_LABELS[run.frameworks[0]]
    if len(run.frameworks) > 1:
        sides = " and ".join(
            f"{FRAMEWORK_LABELS[fw]} ({side})" for fw, side in zip(run.frameworks, ("left", "right"), strict=True)
        )
    return Section(
        "Training",
        [
            f"{who} trained with {describe_training(run.params, run.frameworks)}.",
            Subsection("Learning-rate schedule"),
            numbering.figure("lr_schedule", "the learning rate at the start of each epoch, as logged during training"),
            f"The schedule was {describe_schedule(run.params, run.frameworks)}. {numbering['lr_schedule']} plots "
            f"the rate the training loop actually used: {lr[0]:.3g} in the first epoch, {lr.max():.3g} at most, "
            f"{lr[-1]:.3g} in the last{restart}.",
            Subsection("Loss and accuracy"),
            numbering.figure(
                "curves",
                f"cross-entropy and accuracy per epoch on the training and validation images, {sides}",
            ),
            progress,
        ],
    )


def _test(run: Run, numbering: Numbering) -> Section:
    sentences = []
    for fw in run.frameworks:
        per_class = run.evaluation[fw]["per_class_acc"]
        hardest, easiest = min(per_class, key=per_class.get), max(per_class, key=per_class.get)
        sentence = (
            f"For {FRAMEWORK_LABELS[fw]} the hardest class is {hardest} ({percent(per_class[hardest])} correct), the "
            f"easiest {easiest} ({percent(per_class[easiest])})"
        )
        if confused := most_confused(run.confusion[fw], k=1):
            ((actual, predicted, count),) = confused
            sentence += f"; the most frequent mistake is {actual} taken for {predicted} ({count} images)"
        sentences.append(sentence + ".")
    return Section(
        "Test set",
        [
            *(
                numbering.figure(
                    f"confusion_{fw}", f"confusion matrix of the {FRAMEWORK_LABELS[fw]} model on the test images"
                )
                for fw in run.frameworks
            ),
            "Rows are the true classes and columns the predictions; the colour is the share of the row. "
            + " ".join(sentences),
            numbering.table("per_class", "accuracy per class on the test images.", per_class_table(run)),
            numbering.table("confusions", "the most frequent confusions.", confused_table(run)),
        ],
    )


def _features(run: Run, fmap: FeatureMap, numbering: Numbering) -> Section:
    width, n = run.features.shape[1], len(fmap.labels)
    ordered = sorted(fmap.purity.items(), key=lambda item: item[1])
    mixed = ", ".join(f"{name} ({percent(value)})" for name, value in ordered[:3])
    clean = ", ".join(f"{name} ({percent(value)})" for name, value in ordered[::-1][:2])
    return Section(
        "Features",
        [
            numbering.figure("tsne", f"t-SNE map of the {width}-wide features of {n:,} test images, by true class"),
            f"The NumPy model turned {n:,} test images, drawn evenly from the ten classes, into {width}-wide "
            f"feature vectors; t-SNE (scikit-learn, perplexity {fmap.perplexity:g}, PCA initialisation, seed "
            f"{run.params.train.seed}) placed them in the plane so that neighbours stay neighbours (report 000, "
            f"Figure 5). A class that forms its own island is easy to tell apart. Of the {NEIGHBOURS} nearest "
            f"neighbours of an image in the feature space, {percent(float(np.mean(list(fmap.purity.values()))))} "
            f"share its class on average; the most mixed classes are {mixed}, the cleanest {clean}.",
        ],
    )


def _cross(run: Run, numbering: Numbering) -> Section:
    cross = run.cross
    if cross is None:
        return Section(
            "NumPy and PyTorch on the same weights", [f"The cross-evaluation was not run: {run.cross_not_run}."]
        )
    agreements = {cross[f"{fw}_weights"]["agreement"] for fw in FRAMEWORKS}
    agreement = " and ".join(_agreement(value) for value in sorted(agreements, reverse=True))
    largest = max(cross[f"{fw}_weights"]["max_abs_logit_diff"] for fw in FRAMEWORKS)
    logits = "float32 rounding only" if largest < 1e-3 else "more than float32 rounding explains"
    return Section(
        "NumPy and PyTorch on the same weights",
        [
            "Each trained weight file was loaded into both implementations and run on the test images.",
            numbering.table("cross", "cross-evaluation.", cross_table(run)),
            f"On the same weights the two implementations predict the same class for {agreement} of the "
            f"{run.test_images:,} test images (the compare stage requires at least 99.9 %); their "
            f"logits differ by at most {largest:.2g}, {logits}. The two trained models themselves, which started "
            f"from the same weights, agree on {percent(cross['trained_models_agreement'])} of the images.",
        ],
    )


def _report000(run: Run, numbering: Numbering) -> list[str | Subsection]:
    ref = run.report000
    gaps = " and ".join(
        f"{_points(run.train[fw]['best_val_acc'] - ref.best_val_acc[fw])} report 000's with {FRAMEWORK_LABELS[fw]} "
        f"(best epoch {run.train[fw]['best_epoch']}, against its {ref.best_epoch[fw]})"
        for fw in run.frameworks
    )
    hardware = "Its NumPy epochs ran on a CPU" + (
        ", its PyTorch epochs on a GPU." if "torch" in run.frameworks else "."
    )
    tuned = ref.tuned
    caption = (
        "report 000's published results (its 4.2) and hyper-parameters (its 5.2, preset `lab2025`) beside this run's"
    )
    if tuned is not None:
        caption += f" and preset `{tuned.preset}`'s (series `{tuned.series}`, row `{tuned.row}`)"
    return [
        Subsection("Report 000"),
        numbering.table("report000", caption + ".", report000_table(run)),
        f"Report 000 trained `lab2025_cnn` and measured validation accuracy after every epoch on a fixed hold-out "
        f"of 10,000 of the 60,000 training images (its 2.2), as this run did on {_validation_images(run)}; it "
        f"reports no test accuracy. {hardware} This run's best validation accuracy is {gaps}.",
        *([] if tuned is None else [_tuned(tuned, ref)]),
        *_report000_spread(ref),
    ]


def against(figure: float, ours: Spread) -> str:
    """Where a report's figure lies against our seeds: inside, above or below their range, and how many
    standard deviations from their mean."""
    where = "above" if figure > ours.high else "below" if figure < ours.low else "inside"
    text = f"{where} the range of our {ours.seeds} seeds ({100 * ours.low:.2f}–{100 * ours.high:.2f} %)"
    if not ours.sd:
        return f"{text}, whose mean is {percent(ours.mean)}"
    z = (figure - ours.mean) / ours.sd
    return (
        f"{text}, {abs(z):.1f} standard deviations {'above' if z > 0 else 'below'} their mean of {percent(ours.mean)}"
    )


def _spread_sentence(name: str, seeded: Seeded, ref: Report000) -> str | None:
    """What report 000's best validation accuracy is against one preset's spread over seeds, per framework."""
    parts = []
    for fw in FRAMEWORKS:
        ours = seeded.best_val_acc[fw]
        if ours is None or ours.seeds < 2:
            continue
        figure = ref.best_val_acc[fw]
        verdict = (
            "so the difference is within the spread of seeds, not a win or a loss one can tell from them"
            if ours.low <= figure <= ours.high
            else "every seed beats it"
            if figure < ours.low
            else "no seed reaches it"
        )
        parts.append(
            f"with {FRAMEWORK_LABELS[fw]}, report 000's {percent(figure)} lies {against(figure, ours)}: {verdict}"
        )
    if not parts:
        return None
    return (
        f"Against the best validation accuracy of {name} over seeds (row `{seeded.row}` of series "
        f"`{seeded.series}`, `reports/experiments/{seeded.series}.md`): " + "; ".join(parts) + "."
    )


def _report000_spread(ref: Report000) -> list[str]:
    named = [("the shipped default", ref.default_spread)]
    if ref.tuned is not None:
        named.append((f"preset `{ref.tuned.preset}`", ref.tuned_spread))
    sentences = [_spread_sentence(name, seeded, ref) for name, seeded in named if seeded is not None]
    return [" ".join(sentence for sentence in sentences if sentence)] if any(sentences) else []


def _tuned(tuned: Tuned, ref: Report000) -> str:
    ran = [fw for fw in FRAMEWORKS if tuned.test_acc[fw] is not None]
    gaps = " and ".join(
        f"{_points(tuned.best_val_acc[fw] - ref.best_val_acc[fw])} report 000's with {FRAMEWORK_LABELS[fw]}"
        for fw in ran
    )
    tests = " and ".join(f"{percent(tuned.test_acc[fw])} with {FRAMEWORK_LABELS[fw]}" for fw in ran)
    return (
        f"Preset `{tuned.preset}` trains the same network, unchanged, for {tuned.params.train.epochs} epochs "
        f"(`python -m lablib.experiments preset {tuned.preset}`; its numbers are those of row `{tuned.row}` of "
        f"series `{tuned.series}`, `reports/experiments/{tuned.series}.md`): its best validation accuracy is "
        f"{gaps}, and it reaches {tests} on the official test images."
    )


def _report001(table: Report001 | None, numbering: Numbering) -> list[str | Subsection]:
    if table is None:
        return [
            Subsection("Report 001"),
            "Report 001's Table 1 is set beside this project's runs of it, row by row, once the series "
            "`report001` has run (`make series-report001`).",
        ]
    quick = (
        " These are quick runs (a subset and two epochs): they show the series working, not the accuracy "
        "the report's settings reach."
        if table.quick
        else ""
    )
    return [
        Subsection("Report 001"),
        numbering.table(
            "report001",
            f"report 001's Table 1 beside this project's run of each row (series `report001`, "
            f"`reports/experiments/{table.table.name}`).",
            report001_table(table),
        ),
        "Report 001's figures are the top-1 accuracy its course leaderboard gave each system. Beside each, "
        "this project's run of that row gives two measures: the best validation accuracy, on the fixed "
        "hold-out or, for the rows validated as report 001 did, on the rotating fold (each fold is trained "
        "on in the other epochs, so that figure is optimistic), and the accuracy on the official test images, "
        f"the measure to compare with the report's.{quick}",
        *_report001_spread(table),
    ]


def _report001_spread(table: Report001) -> list[str]:
    """Each of report 001's figures against our seeds' official test accuracy, and whether its last row is
    still above our mean."""
    sentences = []
    for fw in FRAMEWORKS:
        judged = [(row, row.test_acc[fw]) for row in table.rows]
        judged = [(row, ours) for row, ours in judged if ours is not None and ours.seeds > 1]
        if not judged:
            continue
        for row, ours in judged:
            sentences.append(
                f"`{row.name}`: the report's {row.reference:.2f} % lies {against(row.reference / 100, ours)}."
            )
        last, ours = judged[-1]
        if last is table.rows[-1]:
            gap = _points(ours.mean - last.reference / 100)
            still = "still " if ours.mean < last.reference / 100 else ""
            sentences.append(
                f"On average over its {ours.seeds} seeds, {FRAMEWORK_LABELS[fw]}'s run of the last row is {still}"
                f"{gap} the report's {last.reference:.2f} %."
            )
    if not sentences:
        return []
    return ["Against the spread of this project's official test accuracy over seeds: " + " ".join(sentences)]


def _beside_the_reports(run: Run, numbering: Numbering) -> Section:
    return Section("Beside the course reports", [*_report000(run, numbering), *_report001(run.report001, numbering)])


def _numbered(sections: list[Section]) -> list[str]:
    """The sections' Markdown, each heading numbered by its position."""
    parts: list[str] = []
    counter = 0
    for section in sections:
        if section.numbered:
            counter += 1
            parts.append(f"## {counter} {section.title}")
        else:
            parts.append(f"## {section.title}")
        sub = 0
        for part in section.parts:
            if isinstance(part, Subsection):
                sub += 1
                parts.append(f"### {counter}.{sub} {part.title}")
            else:
                parts.append(part)
    return parts


def render_markdown(run: Run, fmap: FeatureMap) -> str:
    """The report's text: every figure with what it shows, the tables, the parameters and the provenance."""
    train = run.params.train
    excluded = [f"confusion_{fw}" for fw in run.not_run] + ["cross"] * (run.cross is None)
    numbering = Numbering(included=["report001"] if run.report001 else [], excluded=excluded)
    rows = summary(build_numpy(get_spec(train.model, train.width), rng=placeholder()))
    total = sum(row.parameters for row in rows)
    sections = [
        _results(run, numbering),
        _data(run, numbering),
        _model(run, rows, numbering),
        _training(run, numbering),
        _test(run, numbering),
        _features(run, fmap, numbering),
        _cross(run, numbering),
        _beside_the_reports(run, numbering),
        Section(
            "Parameters of the run",
            ["`params.yaml` as this run read it:", f"```yaml\n{run.params_text.strip()}\n```"],
        ),
    ]
    if run.experiments:
        sections.append(
            Section(
                "Experiments",
                [
                    "Tables of the experiment series (`python -m lablib.experiments series NAME`), from "
                    "`reports/experiments/`:",
                    *run.experiments.values(),
                ],
            )
        )
    sections.append(
        Section(
            "Reproducing",
            [
                "`make repro` (or `dvc repro`) reruns the stages whose inputs changed and regenerates this report; "
                "`dvc exp run -S key=value` runs a variant and `dvc metrics diff` compares it with this run."
            ],
            numbered=False,
        )
    )
    return "\n\n".join([*_intro(run, total, numbering), *_numbered(sections)]) + "\n"
