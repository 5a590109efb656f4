"""The report's text: a section per part of the run, each figure and table with what it shows.

Sections and subsections are numbered by their position (:mod:`lablib.report.markdown`), figures and
tables by :mod:`lablib.report.contents`; no number is written by hand.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lablib.data.fashion_mnist import CLASS_NAMES, NUM_CLASSES
from lablib.experiments.config import flatten
from lablib.models.numpy_model import Classifier, build_numpy
from lablib.models.specs import get_spec
from lablib.models.summary import summary
from lablib.params import FRAMEWORKS
from lablib.report.analysis import NEIGHBOURS, FeatureMap
from lablib.report.contents import Numbering
from lablib.report.course import beside_the_reports, course_tables
from lablib.report.curves import overfit, parting, relative_gap, smoothed_floor
from lablib.report.glossary import glossary_section
from lablib.report.inputs import Run
from lablib.report.labels import FRAMEWORK_LABELS, SOURCES
from lablib.report.markdown import Section, Subsection, document
from lablib.report.mistakes import confusion_frameworks, misclassified, most_confused
from lablib.report.numpy_core import numpy_core_section
from lablib.report.prose import agreement, number, percent
from lablib.report.series import describe_presets, interpret
from lablib.report.settings import describe_augmentation, describe_schedule, describe_training, validation_images
from lablib.report.tables import (
    confused_table,
    cross_table,
    layers_table,
    parameters_table,
    per_class_table,
    provenance_table,
    results_table,
)
from lablib.rng import placeholder

SILHOUETTE = ("T-shirt/top", "Pullover", "Coat", "Shirt")  # the classes of one silhouette (Figure 1)


def _speed(numpy_seconds: float, torch_seconds: float) -> str:
    """Which framework's epochs were faster, and by how much."""
    ratio = max(numpy_seconds, torch_seconds) / min(numpy_seconds, torch_seconds)
    if ratio < 1.05:  # within a shared machine's variation from run to run
        return "as fast as each other, to within 5 %"
    return f"{FRAMEWORK_LABELS['torch' if numpy_seconds > torch_seconds else 'numpy']} {ratio:.1f}× faster"


def _timing(run: Run) -> str:
    """What the speed columns count, how much epochs varied, and the machine they were measured on."""
    spread = " and ".join(
        f"{number(min(run.history[fw]['epoch_seconds']))}–{number(max(run.history[fw]['epoch_seconds']))} s "
        f"({FRAMEWORK_LABELS[fw]})"
        for fw in run.frameworks
    )
    here = run.machine[run.frameworks[0]]
    engines = [
        f"NumPy {m['numpy_version']} on {m['blas_library']} {m['blas_version']} ({m['blas_kernel']} kernel, "
        f"{m['blas_threads']} threads)"
        if fw == "numpy"
        else f"PyTorch {m['torch_version']} on {'the CPU' if m['torch_device'] == 'cpu' else m['torch_device']} "
        f"({m['torch_threads']} threads)"
        for fw, m in run.machine.items()
    ]
    return (
        "Seconds per epoch count the training steps, the loading of their batches and the validation; images "
        "per second count the training steps and their batches only, so the two columns can rank the "
        f"frameworks differently. Single epochs took {spread}. Both trainings ran on one {here['cpu']} "
        f"({here['cores']} cores): {' and '.join(engines)}."
    )


def _best(run: Run) -> str:
    """Each framework's best validation accuracy and its epoch."""
    return " and ".join(
        f"{percent(run.train[fw]['best_val_acc'])} at epoch {run.train[fw]['best_epoch']} ({FRAMEWORK_LABELS[fw]})"
        for fw in run.frameworks
    )


def _overfitting(run: Run) -> str:
    """Where training accuracy passes validation accuracy and how the gap grows, from the first framework."""
    fw = run.frameworks[0]
    found = overfit(run.history[fw])
    best = f"validation accuracy reaches its best, {_best(run)}"
    if found.epoch is None:
        return (
            "Training accuracy, measured on augmented batches while the weights still change, stays below "
            f"validation accuracy to the last epoch: no sign of over-fitting; {best}."
        )
    trend = "grows" if found.final_gap > found.first_gap else "does not grow"
    return (
        f"Training accuracy passes validation accuracy for good at epoch {found.epoch} ({100 * found.first_gap:.2f} "
        f"points above it) and the gap {trend}, to {100 * found.final_gap:.2f} points after the last epoch "
        f"({FRAMEWORK_LABELS[fw]}): the model fits its training images better than unseen ones, the start of "
        f"over-fitting, while {best}."
    )


def _loss_gap(run: Run) -> str:
    """Why the training loss sits above the validation loss: label smoothing's floor and the augmentation."""
    train, h = run.params.train, run.history[run.frameworks[0]]
    final_train, final_val = h["train_loss"][-1], h["val_loss"][-1]
    if final_train <= final_val:
        return ""
    erased = ", some erased," if train.augment.enabled and train.augment.erase else ""
    images = f"augmented images{erased}" if train.augment.enabled else "the training images"
    if not train.label_smoothing:
        return (
            f"The training loss ends at {final_train:.3f}, above the validation loss ({final_val:.3f}): it is "
            f"measured on {images} in training mode while the weights change."
        )
    floor = smoothed_floor(train.label_smoothing)
    return (
        f"The training loss ends at {final_train:.3f} against {final_val:.3f} for validation, as it should: it is "
        f"the cross-entropy against targets smoothed by {train.label_smoothing:g} (a share of "
        f"{train.label_smoothing / NUM_CLASSES:g} on each wrong class), whose least possible value is their own "
        f"entropy, {floor:.3f}, and it is measured on {images} in training mode; the validation loss is the "
        f"plain cross-entropy on unaltered images. Above its floor, the training loss ends "
        f"{final_train - floor:.3f} high."
    )


def _twins(run: Run) -> str:
    """Where the two frameworks' curves part and meet again."""
    if len(run.frameworks) < 2:
        return ""
    first, second = (run.history[fw] for fw in run.frameworks)
    loss = relative_gap(first["train_loss"], second["train_loss"])
    val = parting(first, second, "val_acc")
    if val.first is None:
        return (
            f"The two frameworks' curves lie on one another: training losses within a relative {loss:.0e}, the "
            "same validation accuracy at every epoch."
        )
    end = (
        f"meet again after the last epoch ({percent(first['val_acc'][-1])} both)"
        if val.meet_at_end
        else f"end {100 * abs(first['val_acc'][-1] - second['val_acc'][-1]):.2f} points apart"
    )
    return (
        f"The two frameworks' curves lie on one another: their training losses agree to a relative {loss:.0e} at "
        f"every epoch, float32 rounding. Their validation accuracies part from epoch {val.first}, where a "
        f"difference in the last bits of the weights moves a few borderline images, differ by at most "
        f"{100 * val.largest:.2f} points (epoch {val.at}), and {end}."
    )


def _not_run(run: Run) -> str:
    """One sentence per framework that did not run, saying why (its training stage's record)."""
    return "".join(f" {FRAMEWORK_LABELS[fw]} did not run: {reason}." for fw, reason in run.not_run.items())


def _over_seeds(run: Run) -> str:
    """The shipped default's test accuracy over seeds, beside this run's single one."""
    seeded = run.report000.default_spread
    ours = None if seeded is None else seeded.test_acc["numpy"]
    if ours is None or ours.seeds < 2:
        return ""
    return (
        f" This is one run: over {ours.seeds} seeds the shipped default reaches {100 * ours.mean:.2f} ± "
        f"{100 * ours.sd:.2f} % ({100 * ours.low:.2f}–{100 * ours.high:.2f}) with NumPy (series `{seeded.series}`)."
    )


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
            f"**In short:** the NumPy model reaches {percent(run.evaluation['numpy']['test_acc'])} test accuracy."
            f"{_over_seeds(run)}",
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
        f"PyTorch model {percent(run.evaluation['torch']['test_acc'])}.{_over_seeds(run)} Loaded with the same "
        f"weights, the two implementations predict the same class for {agreement(run.cross['min_agreement'])} "
        f"of the test images.",
    ]


def _results(run: Run, numbering: Numbering) -> Section:
    seconds = {fw: run.train[fw]["mean_epoch_seconds"] for fw in run.frameworks}
    took = " and ".join(f"{number(seconds[fw])} s with {FRAMEWORK_LABELS[fw]}" for fw in run.frameworks)
    if len(seconds) == len(FRAMEWORKS):
        took += f" ({_speed(seconds['numpy'], seconds['torch'])})"
    parts: list[str | Subsection] = [
        numbering.table("results", "validation and test accuracy, and speed, per framework.", results_table(run)),
        f"Validation accuracy is measured after every epoch on {validation_images(run)}; test accuracy "
        f"once, on the {run.test_images:,} test images, with the weights after the last epoch "
        f"(for k-fold, of the best fold). An epoch took {took}. {_timing(run)}",
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
            f"{numbering['samples']} shows why the task is not trivial: {', '.join(SILHOUETTE[:-1])} and "
            f"{SILHOUETTE[-1]} share one silhouette and differ in details such as collars, buttons and sleeve length.",
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


def _model(run: Run, model: Classifier, numbering: Numbering) -> Section:
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
            numbering.table(
                "layers",
                "layers, kernels, strides, paddings, parameters and shapes (report 000, Table 1).",
                layers_table(model),
            ),
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
    who = "Both frameworks" if len(run.frameworks) == len(FRAMEWORKS) else "The NumPy model"
    sides = " and ".join(
        f"{FRAMEWORK_LABELS[fw]} ({style})" for fw, style in zip(run.frameworks, ("solid", "dashed"), strict=False)
    )
    augmented = ""
    if train.augment.enabled:
        erasing = f", random erasing ({train.augment.erase:g}) included" if train.augment.erase else ""
        augmented = f" Every training image was augmented as section 2.2 describes{erasing}."
    return Section(
        "Training",
        [
            f"{who} trained with {describe_training(run.params, run.frameworks)}.{augmented}",
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
            " ".join(part for part in (_overfitting(run), _loss_gap(run), _twins(run)) if part),
        ],
    )


def _test(run: Run, numbering: Numbering) -> Section:
    shown = confusion_frameworks(run)
    sentences = []
    for fw in shown:
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
    if len(shown) < len(run.frameworks):
        others = " and ".join(FRAMEWORK_LABELS[fw] for fw in run.frameworks if fw not in shown)
        sentences.append(
            f"The {others} model's matrix, its accuracy per class and its confusions are the same, cell for cell: "
            f"the two trained models predict the same class for every test image ({numbering['cross']}), so they "
            "are shown once."
        )
    mistakes = misclassified(run.confusion["numpy"], run.predicted["numpy"], run.test_labels)
    listed = ", ".join(f"{CLASS_NAMES[t]} taken for {CLASS_NAMES[p]} ({count})" for t, p, count, _ in mistakes)
    return Section(
        "Test set",
        [
            *(
                numbering.figure(
                    f"confusion_{fw}", f"confusion matrix of the {FRAMEWORK_LABELS[fw]} model on the test images"
                )
                for fw in shown
            ),
            "Rows are the true classes and columns the predictions; the colour is the share of the row. "
            + " ".join(sentences),
            numbering.figure("misclassified", "the first test images of the most frequent mistakes, NumPy model"),
            f"{numbering['misclassified']} shows, in test order, the first images of the NumPy model's "
            f"{len(mistakes)} most frequent mistakes: {listed}.{_silhouette(mistakes, numbering)}",
            numbering.table("per_class", "accuracy per class on the test images.", per_class_table(run)),
            numbering.table("confusions", "the most frequent confusions.", confused_table(run)),
        ],
    )


def _silhouette(mistakes: list[tuple[int, int, int, Any]], numbering: Numbering) -> str:
    """Whether every mistake shown is between classes of the one silhouette of Figure 1."""
    if not all(CLASS_NAMES[t] in SILHOUETTE and CLASS_NAMES[p] in SILHOUETTE for t, p, _, _ in mistakes):
        return ""
    return f" Each is between two of the classes that share one silhouette ({numbering['samples']})."


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
    same = " and ".join(agreement(value) for value in sorted(agreements, reverse=True))
    largest = max(cross[f"{fw}_weights"]["max_abs_logit_diff"] for fw in FRAMEWORKS)
    logits = "float32 rounding only" if largest < 1e-3 else "more than float32 rounding explains"
    return Section(
        "NumPy and PyTorch on the same weights",
        [
            "Each trained weight file was loaded into both implementations and run on the test images.",
            numbering.table("cross", "cross-evaluation.", cross_table(run)),
            f"On the same weights the two implementations predict the same class for {same} of the "
            f"{run.test_images:,} test images (the compare stage requires at least 99.9 %); their "
            f"logits differ by at most {largest:.2g}, {logits}. The two trained models themselves, which started "
            f"from the same weights, agree on {percent(cross['trained_models_agreement'])} of the images.",
        ],
    )


def _parameters(run: Run, numbering: Numbering) -> Section:
    """The parameters in which the run differs from report 000's, with a link to the whole file."""
    ours, theirs = flatten(run.params.raw), flatten(run.report000.params.raw)
    changed = {key: (value, theirs.get(key)) for key, value in ours.items() if value != theirs.get(key)}
    return Section(
        "Parameters of the run",
        [
            f"The run read [`params.yaml`](../params.yaml), whose comments describe every parameter. "
            f"{numbering['parameters']} lists the {len(changed)} in which it differs from report 000's settings "
            f"(preset `lab2025`, its 5.2); the other {len(ours) - len(changed)} are the same in both.",
            numbering.table(
                "parameters", "the run's parameters that differ from report 000's.", parameters_table(changed)
            ),
        ],
    )


def _experiments(run: Run) -> Section:
    """Each series' table, then what it says; report 000's ablation named while it has not run."""
    paragraphs = interpret(run)
    parts: list[str | Subsection] = [
        "Tables of the experiment series (`python -m lablib.experiments series NAME`), from "
        "`reports/experiments/`. Their seconds per epoch ran several trainings at a time on a shared machine: "
        "they are not a speed measurement.",
        describe_presets(run),
    ]
    for name, table in run.experiments.items():
        parts += [table, *paragraphs.get(name, [])]
    return Section("Experiments", parts)


def render_markdown(run: Run, fmap: FeatureMap) -> str:
    """The report's text: every figure with what it shows, the tables, the parameters and the provenance."""
    train = run.params.train
    excluded = [f"confusion_{fw}" for fw in run.not_run] + ["cross"] * (run.cross is None)
    included = [f"confusion_{fw}" for fw in confusion_frameworks(run)] + course_tables(run)
    numbering = Numbering(included=included, excluded=excluded)
    model = build_numpy(get_spec(train.model, train.width), rng=placeholder())
    total = sum(row.parameters for row in summary(model))
    sections = [
        _results(run, numbering),
        _data(run, numbering),
        _model(run, model, numbering),
        _training(run, numbering),
        _test(run, numbering),
        _features(run, fmap, numbering),
        numpy_core_section(model, train.batch_size, run.cross is not None),
        _cross(run, numbering),
        beside_the_reports(run, numbering),
        _parameters(run, numbering),
    ]
    if run.experiments:
        sections.append(_experiments(run))
    sections += [
        glossary_section(),
        Section(
            "Reproducing",
            [
                "`make repro` (or `dvc repro`) reruns the stages whose inputs changed and regenerates this report; "
                "`dvc exp run -S key=value` runs a variant and `dvc metrics diff` compares it with this run."
            ],
            numbered=False,
        ),
    ]
    return document(_intro(run, total, numbering), sections)
