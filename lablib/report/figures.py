"""The report's figures, drawn with matplotlib's object API (no pyplot state, no display needed).

Each ``plot_*`` function takes plain arrays and returns a :class:`~matplotlib.figure.Figure`;
:func:`draw_figures` makes every figure of the report from the run. Images are ``(N, 28, 28)`` on the
preprocessed [-0.5, 0.5] scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lablib.data.augment import augmentation_examples
from lablib.data.fashion_mnist import CLASS_NAMES, NUM_CLASSES
from lablib.report.analysis import FeatureMap
from lablib.report.inputs import Run
from lablib.report.labels import FRAMEWORK_LABELS
from lablib.report.mistakes import confusion_frameworks, misclassified
from lablib.rng import Stream, generator

PIXEL_RANGE = {"cmap": "gray", "vmin": -0.5, "vmax": 0.5}
AUGMENT_CLASSES = (0, 3, 7, 9)


def _image_grid(fig: Figure, rows: int, cols: int) -> np.ndarray:
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False))
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return axes


def plot_samples(images: np.ndarray, labels: np.ndarray, per_class: int = 8) -> Figure:
    """One row per class holding its first ``per_class`` images (report 000, Figure 1)."""
    fig = Figure(figsize=(per_class * 0.9 + 1.6, NUM_CLASSES * 0.9 + 0.6), layout="constrained")
    axes = _image_grid(fig, NUM_CLASSES, per_class)
    for c, name in enumerate(CLASS_NAMES):
        for ax, index in zip(axes[c], np.flatnonzero(labels == c)[:per_class], strict=False):
            ax.imshow(images[index], **PIXEL_RANGE)
        axes[c, 0].set_ylabel(f"{c}: {name}", rotation=0, ha="right", va="center")
    fig.suptitle("Fashion-MNIST: training images of each class")
    return fig


def plot_augmentation(examples: Mapping[str, np.ndarray], row_labels: Sequence[str] = ()) -> Figure:
    """Each image (a row) as it is, under each transform, and under random draws (report 000, Figure 2).

    ``examples`` is :func:`lablib.data.augment.augmentation_examples`'s result: ``(N, 28, 28)`` per
    transform and ``(k, N, 28, 28)`` for ``random``.
    """
    columns = [(name, value) for name, value in examples.items() if name != "random"]
    columns += [(f"random draw {i + 1}", draw) for i, draw in enumerate(examples.get("random", []))]
    n = len(columns[0][1])
    fig = Figure(figsize=(1.25 * len(columns) + 0.4, 1.25 * n + 0.8), layout="constrained")
    axes = _image_grid(fig, n, len(columns))
    for col, (name, batch) in enumerate(columns):
        axes[0, col].set_title(name, fontsize=9)
        for row in range(n):
            axes[row, col].imshow(batch[row], **PIXEL_RANGE)
    for row, label in enumerate(row_labels):
        axes[row, 0].set_ylabel(label, rotation=0, ha="right", va="center")
    fig.suptitle("Augmentation: each transform alone, then random draws of the whole pipeline")
    return fig


def plot_lr_schedule(curves: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """Learning rate at the start of each epoch, per framework (``{framework: (epochs, lr)}``)."""
    fig = Figure(figsize=(7, 3.8), layout="constrained")
    ax = fig.subplots()
    for (framework, (epochs, lr)), style in zip(curves.items(), ("o-", "x--"), strict=False):
        ax.plot(epochs, lr, style, label=FRAMEWORK_LABELS.get(framework, framework), markersize=5)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("learning rate")
    ax.set_title("Learning-rate schedule used (value at the start of each epoch)")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_training_curves(histories: Mapping[str, Mapping[str, np.ndarray]], fold_length: int | None = None) -> Figure:
    """Loss (left) and accuracy (right) per epoch, train and validation, every framework overlaid: the
    first solid, the second dashed (report 000, Figures 7 and 9). Each history maps ``epoch``,
    ``train_loss``, ``val_loss``, ``train_acc`` and ``val_acc`` (fractions) to arrays. When several folds
    ran one after another, ``fold_length`` epochs each, each fold is drawn apart, dotted lines marking
    where it starts."""
    fig = Figure(figsize=(11.6, 4.6), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    for (framework, h), (line, marker) in zip(histories.items(), (("-", "o"), ("--", "x")), strict=False):
        name = FRAMEWORK_LABELS.get(framework, framework)
        n = len(h["epoch"])
        length = fold_length if fold_length and n > fold_length else n
        for colour, (split, label) in enumerate((("train", "train"), ("val", "validation"))):
            for start in range(0, n, length):
                part = slice(start, start + length)
                style = {
                    "color": f"C{colour}",
                    "linestyle": line,
                    "marker": marker,
                    "markersize": 4,
                    "label": f"{name} {label}" if start == 0 else None,
                }
                loss_ax.plot(h["epoch"][part], h[f"{split}_loss"][part], **style)
                acc_ax.plot(h["epoch"][part], 100 * np.asarray(h[f"{split}_acc"][part]), **style)
        best = int(np.argmax(h["val_acc"]))
        acc_ax.plot(
            h["epoch"][best],
            100 * h["val_acc"][best],
            "k*" if line == "-" else "k+",
            markersize=11,
            label=f"{name} best validation {100 * h['val_acc'][best]:.2f} %",
        )
    n = max(len(h["epoch"]) for h in histories.values())
    length = fold_length if fold_length and n > fold_length else n
    loss_ax.set(title="cross-entropy loss", ylabel="loss")
    acc_ax.set(title="accuracy", ylabel="accuracy (%)")
    for ax in (loss_ax, acc_ax):
        for start in range(length, n, length):
            ax.axvline(start + 0.5, color="grey", linestyle=":", linewidth=0.8)
        ax.set_xlabel("epoch (folds one after another)" if length < n else "epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    labels = (FRAMEWORK_LABELS.get(framework, framework) for framework in histories)
    fig.suptitle(f"Training and validation per epoch: {' and '.join(labels)} overlaid")
    return fig


def plot_misclassified(images: np.ndarray, rows: Sequence[tuple[str, np.ndarray]], per_row: int = 8) -> Figure:
    """Test images the model got wrong, a row per kind of mistake: ``rows`` holds each row's label and the
    indices into ``images`` (``(N, 28, 28)``) of its first ``per_row`` images."""
    fig = Figure(figsize=(per_row * 0.9 + 2.4, len(rows) * 1.0 + 0.6), layout="constrained")
    axes = _image_grid(fig, len(rows), per_row)
    for row, (label, indices) in enumerate(rows):
        for ax, index in zip(axes[row], indices[:per_row], strict=False):
            ax.imshow(images[index], **PIXEL_RANGE)
        for ax in axes[row, len(indices) :]:
            ax.set_axis_off()
        axes[row, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle("Misclassified test images: the most frequent mistakes, true class first")
    return fig


def plot_confusion(matrix: np.ndarray, title: str, class_names: Sequence[str] = CLASS_NAMES) -> Figure:
    """Counts per (true, predicted) class with the row's share as colour (report 000, Figure 6)."""
    matrix = np.asarray(matrix)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(8.2, 7.2), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (t, p), count in np.ndenumerate(matrix):
        if count:
            color = "white" if share[t, p] > 0.5 else "black"
            ax.text(p, t, f"{count}", ha="center", va="center", fontsize=8, color=color)
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class")
    return fig


def plot_feature_map(points: np.ndarray, labels: np.ndarray, title: str) -> Figure:
    """A 2-D embedding (t-SNE) of the features, one colour per class, with a legend (report 000, Figure 5)."""
    fig = Figure(figsize=(8.6, 6.6), layout="constrained")
    ax = fig.subplots()
    colours = [f"C{c}" for c in range(NUM_CLASSES)]
    for c, name in enumerate(CLASS_NAMES):
        chosen = labels == c
        ax.scatter(points[chosen, 0], points[chosen, 1], s=7, color=colours[c], label=f"{c}: {name}", alpha=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), markerscale=2.5, frameon=False)
    return fig


def draw_figures(run: Run, fmap: FeatureMap) -> dict[str, Figure]:
    """Every figure of the report, keyed as :data:`lablib.report.contents.FIGURES`: a confusion matrix
    per framework that ran."""
    train = run.params.train
    per_class = [np.flatnonzero(run.train_labels == c)[:8] for c in range(NUM_CLASSES)]
    shown = np.sort(np.concatenate(per_class))
    originals = np.stack([run.train_images[per_class[c][0]] for c in AUGMENT_CLASSES])
    rng = generator(train.seed, Stream.AUGMENT_EXAMPLES)
    examples = augmentation_examples(originals, rng, train.augment, n_variants=3)
    first_run = slice(0, train.epochs)
    rates = {fw: (h["epoch"][first_run], h["lr"][first_run]) for fw, h in run.history.items()}
    made = {
        "samples": plot_samples(run.train_images[shown][:, 0], run.train_labels[shown]),
        "augmentation": plot_augmentation(examples, [CLASS_NAMES[c] for c in AUGMENT_CLASSES]),
        "lr_schedule": plot_lr_schedule(rates),
        "curves": plot_training_curves(run.history, fold_length=train.epochs),
        "tsne": plot_feature_map(
            fmap.points,
            fmap.labels,
            f"t-SNE of the {run.features.shape[1]:,}-wide features of {len(fmap.labels):,} test images",
        ),
    }
    for fw in confusion_frameworks(run):
        accuracy = run.evaluation[fw]["test_acc"]
        made[f"confusion_{fw}"] = plot_confusion(
            run.confusion[fw],
            f"{FRAMEWORK_LABELS[fw]} model on {run.test_images:,} test images: accuracy {100 * accuracy:.2f} %",
        )
    mistakes = misclassified(run.confusion["numpy"], run.predicted["numpy"], run.test_labels)
    made["misclassified"] = plot_misclassified(
        run.test_pixels[:, 0],
        [(f"{CLASS_NAMES[t]} as\n{CLASS_NAMES[p]} ({count})", indices) for t, p, count, indices in mistakes],
    )
    return made
