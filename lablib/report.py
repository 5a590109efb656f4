"""The generated report: every figure and table of the two course reports, from the run just made.

:func:`load_run` reads what the pipeline wrote (parameters, DVCLive logs, evaluation, provenance),
:func:`make_figures` draws the figures, :func:`render_markdown` writes the text around them, and
:func:`write_report` replaces ``report.md`` and ``figures/`` only once everything has been produced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.manifold import TSNE
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from lablib import figures
from lablib.atomic import staged_dir, staged_file
from lablib.data.augment import augmentation_examples
from lablib.data.fashion_mnist import CLASS_NAMES, FILES
from lablib.errors import LabError
from lablib.evaluate import confusion_matrix
from lablib.models.numpy_model import build_numpy
from lablib.models.specs import get_spec
from lablib.models.summary import summary, summary_markdown
from lablib.params import FRAMEWORKS, Params, load_params
from lablib.rng import Stream, generator, placeholder, tsne_seed

NAMES = figures.FRAMEWORK_LABELS
CLASS_INDEX = {name: i for i, name in enumerate(CLASS_NAMES)}
TSV = {
    "train_loss": "train/loss.tsv",
    "train_acc": "train/acc.tsv",
    "val_loss": "val/loss.tsv",
    "val_acc": "val/acc.tsv",
    "lr": "lr.tsv",
}
FIGURES = {
    "samples": "samples.png",
    "augmentation": "augmentation.png",
    "lr_schedule": "lr_schedule.png",
    "curves": "curves.png",
    "confusion_numpy": "confusion_numpy.png",
    "confusion_torch": "confusion_torch.png",
    "tsne": "tsne.png",
}
SOURCES = {
    "source_dir": "the folder named by data.source_dir",
    "folder": "a folder named by the user",
    "env": "the folder named by $FASHION_MNIST_DIR",
    "debian": "Debian's package dataset-fashion-mnist",
    "download": "the official download",
}
AUGMENT_CLASSES = (0, 3, 7, 9)
NEIGHBOURS = 10


class ReportError(LabError):
    """An input of the report that is missing or unreadable."""


@dataclass(frozen=True)
class RunPaths:
    """Where the pipeline's stages wrote what the report reads."""

    params: Path = Path("params.yaml")
    prepared: Path = Path("data/prepared")
    raw: Path = Path("data/raw")
    live: Path = Path("dvclive")
    evaluation: Path = Path("evaluation")
    experiments: Path = Path("reports/experiments")


@dataclass(frozen=True)
class Run:
    """Everything one run produced that the report shows."""

    params: Params
    params_text: str
    train: dict[str, dict[str, Any]]
    history: dict[str, dict[str, np.ndarray]]
    evaluation: dict[str, Any]
    confusion: dict[str, np.ndarray]
    features: np.ndarray
    feature_labels: np.ndarray
    provenance: dict[str, Any]
    train_images: np.ndarray
    train_labels: np.ndarray
    sizes: dict[str, int]
    experiments: dict[str, str]


@dataclass(frozen=True)
class FeatureMap:
    """The t-SNE map of the features and, per class, the share of each point's nearest neighbours
    (in the features themselves) that belong to its class."""

    points: np.ndarray
    labels: np.ndarray
    purity: dict[str, float]
    perplexity: float


def _read_json(path: Path, made_by: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportError(f"{path} not found: run the {made_by} stage first (dvc repro)") from None
    except json.JSONDecodeError as error:
        raise ReportError(f"{path} is not valid JSON ({error}); run the {made_by} stage again") from None


def _read_npy(path: Path, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None)
    except FileNotFoundError:
        raise ReportError(f"{path} not found: run the preprocess stage first (dvc repro)") from None


def read_history(live_dir: Path) -> dict[str, np.ndarray]:
    """Per-epoch metrics of one DVCLive log: ``epoch`` (from 1) and each key of :data:`TSV`."""
    history: dict[str, np.ndarray] = {}
    for key, name in TSV.items():
        path = live_dir / "plots" / "metrics" / name
        try:
            table = pd.read_csv(path, sep="\t")
        except FileNotFoundError:
            raise ReportError(f"{path} not found: run the training stages first (dvc repro)") from None
        history[key] = table[Path(name).stem].to_numpy(dtype=np.float64)
        history["epoch"] = table["step"].to_numpy() + 1
    return history


def read_confusion(path: Path) -> np.ndarray:
    """The confusion matrix of an ``actual,predicted`` CSV of class names."""
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise ReportError(f"{path} not found: run the evaluate stage first (dvc repro)") from None
    actual, predicted = (table[column].map(CLASS_INDEX).to_numpy() for column in ("actual", "predicted"))
    return confusion_matrix(actual, predicted)


def read_features(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The sampled test images' features and labels the evaluate stage saved."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return archive["features"], archive["labels"]
    except FileNotFoundError:
        raise ReportError(f"{path} not found: run the evaluate stage first (dvc repro)") from None


def read_experiments(folder: Path) -> dict[str, str]:
    """The Markdown tables of the experiment series, by name; none when the folder is absent."""
    return {path.stem: path.read_text().strip() for path in sorted(folder.glob("*.md"))}


def load_run(paths: RunPaths) -> Run:
    """Read every input of the report; a missing one raises :class:`ReportError` naming its stage."""
    features, feature_labels = read_features(paths.evaluation / "numpy" / "features.npz")
    evaluation: dict[str, Any] = {
        fw: _read_json(paths.evaluation / fw / "metrics.json", f"evaluate_{fw}") for fw in FRAMEWORKS
    }
    evaluation["cross"] = _read_json(paths.evaluation / "cross.json", "compare")
    evaluation["test_images"] = evaluation["numpy"]["test_images"]
    return Run(
        params=load_params(paths.params),
        params_text=paths.params.read_text(),
        train={fw: _read_json(paths.live / fw / "metrics.json", f"train_{fw}") for fw in FRAMEWORKS},
        history={fw: read_history(paths.live / fw) for fw in FRAMEWORKS},
        evaluation=evaluation,
        confusion={fw: read_confusion(paths.evaluation / fw / "confusion.csv") for fw in FRAMEWORKS},
        features=features,
        feature_labels=feature_labels,
        provenance=_read_json(paths.raw / "provenance.json", "fetch"),
        train_images=_read_npy(paths.prepared / "train_images.npy", mmap=True),
        train_labels=_read_npy(paths.prepared / "train_labels.npy"),
        sizes={split: len(_read_npy(paths.prepared / f"{split}_labels.npy")) for split in ("train", "val")},
        experiments=read_experiments(paths.experiments),
    )


def feature_map(features: np.ndarray, labels: np.ndarray, seed: int) -> FeatureMap:
    """t-SNE (scikit-learn, PCA initialisation, fixed seed) of ``features``, and each class's share
    of same-class neighbours among the :data:`NEIGHBOURS` nearest points in the features themselves.

    Runs on one thread: the Barnes-Hut gradient then sums in one order on every machine, and OpenMP
    threads on a busy machine wait on each other (40 s instead of 0.3 s for 100 points on two cores).
    """
    n = len(features)
    perplexity = float(min(30.0, (n - 1) / 3))
    k = min(NEIGHBOURS, n - 1)
    with threadpool_limits(limits=1):
        tsne = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=tsne_seed(seed))
        points = tsne.fit_transform(features)
        _, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    same = (labels[neighbours[:, 1:]] == labels[:, None]).mean(axis=1)
    purity = {CLASS_NAMES[c]: float(same[labels == c].mean()) for c in np.unique(labels)}
    return FeatureMap(points, labels, purity, perplexity)


def make_figures(run: Run, fmap: FeatureMap) -> dict[str, Figure]:
    """Every figure of the report, keyed as :data:`FIGURES`."""
    train = run.params.train
    per_class = [np.flatnonzero(run.train_labels == c)[:8] for c in range(len(CLASS_NAMES))]
    shown = np.sort(np.concatenate(per_class))
    originals = np.stack([run.train_images[index[0]] for index in (per_class[c] for c in AUGMENT_CLASSES)])
    examples = augmentation_examples(
        originals, generator(train.seed, Stream.AUGMENT_EXAMPLES), train.augment, n_variants=3
    )
    first_run = slice(0, train.epochs)
    test_images = run.evaluation["test_images"]
    made = {
        "samples": figures.sample_images(run.train_images[shown][:, 0], run.train_labels[shown]),
        "augmentation": figures.augmentation_examples(examples, [CLASS_NAMES[c] for c in AUGMENT_CLASSES]),
        "lr_schedule": figures.lr_schedule(
            {fw: (h["epoch"][first_run], h["lr"][first_run]) for fw, h in run.history.items()}
        ),
        "curves": figures.training_curves(run.history, fold_length=train.epochs),
        "tsne": figures.feature_map(
            fmap.points,
            fmap.labels,
            f"t-SNE of the {run.features.shape[1]:,}-wide features of {len(fmap.labels):,} test images",
        ),
    }
    for fw in FRAMEWORKS:
        accuracy = run.evaluation[fw]["test_acc"]
        made[f"confusion_{fw}"] = figures.confusion_matrix(
            run.confusion[fw], f"{NAMES[fw]} model on {test_images:,} test images: accuracy {_pct(accuracy)}"
        )
    return made


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.2f} %"


def _num(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"


def _validation_images(run: Run) -> str:
    if run.params.train.validation == "holdout":
        return f"{run.sizes['val']:,} held-out training images"
    return f"the held-out fold (one of {run.params.data.kfold}) of the {run.sizes['train'] + run.sizes['val']:,} images"


def _speed(numpy_seconds: float, torch_seconds: float) -> str:
    if numpy_seconds >= torch_seconds:
        return f"PyTorch {numpy_seconds / torch_seconds:.1f}× faster"
    return f"NumPy {torch_seconds / numpy_seconds:.1f}× faster"


def _agreement(fraction: float) -> str:
    """A share of images for prose: 'every one' when it is all of them."""
    return "every one" if fraction == 1 else _pct(fraction)


def _figure(number: int, key: str, caption: str) -> str:
    return f"![Figure {number}: {caption}](figures/{FIGURES[key]})\n\n*Figure {number}: {caption}*"


def describe_schedule(params: Params) -> str:
    """The learning-rate schedule in words."""
    train, s = params.train, params.train.schedule
    rules = {
        "constant": f"a constant learning rate of {train.lr:g}",
        "step": f"a learning rate of {train.lr:g}, multiplied by {s.gamma:g} every {s.step_size} epochs"
        + (f" after epoch {s.start_epoch}" if s.start_epoch else ""),
        "multistep": f"a learning rate of {train.lr:g}, multiplied by {s.gamma:g} at epochs "
        + ", ".join(str(m) for m in s.milestones),
        "cosine": f"cosine annealing from {train.lr:g} towards zero",
        "onecycle": f"one cycle, stepped after every batch: rising to the peak {train.lr:g} over the first "
        f"{100 * s.pct_start:g} % of the steps, then annealing to nearly zero",
    }
    text = rules[s.name]
    if s.warmup_epochs and s.name in ("step", "multistep", "cosine"):
        text += f", after {s.warmup_epochs} epochs of linear warm-up"
    torch_lr = params.train_for("torch").lr
    if torch_lr != train.lr:
        text += f" (PyTorch's peak or starting rate: {torch_lr:g})"
    return text


def describe_training(params: Params) -> str:
    """Optimiser, batches, epochs, extra losses and validation of the run, as one phrase."""
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
    if torch_batch != t.batch_size:
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


def results_table(run: Run) -> str:
    """Per framework: validation (best and final), test, best epoch, speed."""
    lines = [
        "| Framework | Best val. acc. | Best epoch | Final val. acc. | Test acc. | Test loss | s/epoch | images/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for fw in FRAMEWORKS:
        t, e = run.train[fw], run.evaluation[fw]
        lines.append(
            f"| {NAMES[fw]} | {_pct(t['best_val_acc'])} | {t['best_epoch']} | {_pct(t['final_val_acc'])} | "
            f"{_pct(e['test_acc'])} | {e['test_loss']:.4f} | {_num(t['mean_epoch_seconds'])} | "
            f"{t['images_per_second']:,.0f} |"
        )
    return "\n".join(lines)


def per_class_table(run: Run) -> str:
    lines = ["| Class | NumPy | PyTorch |", "| --- | ---: | ---: |"]
    for c, name in enumerate(CLASS_NAMES):
        cells = " | ".join(_pct(run.evaluation[fw]["per_class_acc"][name]) for fw in FRAMEWORKS)
        lines.append(f"| {c}: {name} | {cells} |")
    return "\n".join(lines)


def confused_table(run: Run) -> str:
    lines = ["| Framework | True class | Predicted as | Images |", "| --- | --- | --- | ---: |"]
    for fw in FRAMEWORKS:
        for pair, count in run.evaluation[fw]["most_confused"].items():
            actual, predicted = pair.split(" -> ")
            lines.append(f"| {NAMES[fw]} | {actual} | {predicted} | {count} |")
    return "\n".join(lines)


def cross_table(run: Run) -> str:
    cross = run.evaluation["cross"]
    lines = [
        "| Weights | NumPy model acc. | PyTorch model acc. | Same prediction | Largest logit difference |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for fw in FRAMEWORKS:
        entry = cross[f"{fw}_weights"]
        lines.append(
            f"| trained with {NAMES[fw]} (`models/{fw}.npz`) | {_pct(entry['numpy_acc'])} | "
            f"{_pct(entry['torch_acc'])} | {_pct(entry['agreement'])} | {entry['max_abs_logit_diff']:.2g} |"
        )
    return "\n".join(lines)


def provenance_table(provenance: dict[str, Any]) -> str:
    lines = ["| File | SHA-256 of the decompressed bytes | Published hash |", "| --- | --- | --- |"]
    for name, digest in provenance["sha256"].items():
        official = FILES.get(name)
        verdict = "matches" if official and official.sha256 == digest else "**does not match**"
        lines.append(f"| `{name}` | `{digest}` | {verdict} |")
    return "\n".join(lines)


def _intro(run: Run, total: int) -> list[str]:
    ev, train = run.evaluation, run.params.train
    batches = "the same batches" if run.params.train_for("torch").batch_size == train.batch_size else "the same data"
    return [
        "# Fashion-MNIST with a CNN written by hand in NumPy, and its PyTorch twin",
        f"This report was generated by `dvc repro` from the run it describes: every number and figure "
        f"below comes from that run. The network `{train.model}` ({total:,} parameters, Table 2) was "
        f"trained twice, from the same initial weights on {batches}: once with this project's NumPy "
        f"core (forward, backward and optimiser step written by hand), once with PyTorch. The "
        f"{ev['test_images']:,} official test images were used only for the final evaluation.",
        f"**In short:** the NumPy model reaches {_pct(ev['numpy']['test_acc'])} test accuracy and the "
        f"PyTorch model {_pct(ev['torch']['test_acc'])}. Loaded with the same weights, the two "
        f"implementations predict the same class for {_agreement(ev['cross']['min_agreement'])} of the "
        f"test images.",
    ]


def _results(run: Run) -> list[str]:
    seconds = {fw: run.train[fw]["mean_epoch_seconds"] for fw in FRAMEWORKS}
    parts = [
        "## 1 Results",
        "*Table 1: validation and test accuracy, and speed, per framework.*",
        results_table(run),
        f"Validation accuracy is measured after every epoch on {_validation_images(run)}; test accuracy "
        f"once, on the {run.evaluation['test_images']:,} test images, with the weights after the last epoch "
        f"(for k-fold, of the best fold). An epoch took {_num(seconds['numpy'])} s with NumPy and "
        f"{_num(seconds['torch'])} s with PyTorch ({_speed(seconds['numpy'], seconds['torch'])}).",
    ]
    kfold = {fw: run.train[fw].get("kfold") for fw in FRAMEWORKS}
    if all(kfold.values()):
        spread = " and ".join(
            f"{_pct(kfold[fw]['mean_val_acc'])} ± {100 * kfold[fw]['std_val_acc']:.2f} points ({NAMES[fw]})"
            for fw in FRAMEWORKS
        )
        parts.append(f"Over the folds, the mean final validation accuracy is {spread}.")
    return parts


def _data(run: Run) -> list[str]:
    source = run.provenance.get("source", "unknown")
    return [
        "## 2 Data",
        "### 2.1 Fashion-MNIST",
        f"Fashion-MNIST (Zalando Research) holds 60,000 training and 10,000 test images of clothing, "
        f"28×28 grey pixels in ten classes. This run trained on {run.sizes['train']:,} images and validated "
        f"on {run.sizes['val']:,}, both drawn from the 60,000 training images with every class equally "
        f"represented; pixels are scaled to [-0.5, 0.5] (report 000, 2.3).",
        _figure(1, "samples", "the first eight training images of each class"),
        "Figure 1 shows why the task is not trivial: T-shirt/top, Pullover, Coat and Shirt share one "
        "silhouette and differ in details such as collars, buttons and sleeve length.",
        "### 2.2 Augmentation",
        describe_augmentation(run.params),
        _figure(2, "augmentation", "four training images under each transform alone, then three random draws"),
        "### 2.3 Provenance",
        f"The files came from {SOURCES.get(source, source)} (`{run.provenance.get('location', '')}`). "
        f"Before anything was written, the fetch stage checked the SHA-256 of each file's decompressed "
        f"bytes against the published value:",
        provenance_table(run.provenance),
    ]


def _model(run: Run, rows: list[Any], total: int) -> list[str]:
    train = run.params.train
    role = (
        "The 256-wide output of the second Linear block is the feature vector the center loss acts on "
        "and Figure 7 maps."
        if train.model == "lab2025_cnn"
        else f"Its convolution has {train.width} filters."
    )
    return [
        "## 3 Model",
        f"`{train.model}` as the NumPy core builds it; the PyTorch twin is built from the same description "
        f"and has the same layers, parameters and state-dict keys. {role}",
        "*Table 2: layers, parameters and shapes (report 000, Table 1).*",
        summary_markdown(rows),
    ]


def _progress(name: str, metrics: dict[str, Any]) -> str:
    """Best and final accuracies of one framework's training, and what their gap says."""
    gap = metrics["final_train_acc"] - metrics["final_val_acc"]
    text = (
        f"{name} reached its best validation accuracy, {_pct(metrics['best_val_acc'])}, at epoch "
        f"{metrics['best_epoch']}; after the last epoch training accuracy was {_pct(metrics['final_train_acc'])} "
        f"and validation accuracy {_pct(metrics['final_val_acc'])}"
    )
    if gap > 0.02:
        return text + f", a gap of {100 * gap:.2f} points: the model fits its training images better than unseen ones."
    if gap < 0:
        return text + (
            ": training accuracy is measured on augmented batches while the weights still change, so it can lie "
            "below validation accuracy."
        )
    return text + ": no sign of over-fitting yet."


def _training(run: Run) -> list[str]:
    train = run.params.train
    lr = run.history["numpy"]["lr"][: train.epochs]
    restart = " (each fold starts the schedule again)" if train.validation == "kfold" else ""
    progress = " ".join(_progress(NAMES[fw], run.train[fw]) for fw in FRAMEWORKS)
    return [
        "## 4 Training",
        f"Both frameworks trained with {describe_training(run.params)}.",
        "### 4.1 Learning-rate schedule",
        _figure(3, "lr_schedule", "the learning rate at the start of each epoch, as logged during training"),
        f"The schedule was {describe_schedule(run.params)}. Figure 3 plots the rate the training loop "
        f"actually used: {lr[0]:.3g} in the first epoch, {lr.max():.3g} at most, {lr[-1]:.3g} in the "
        f"last{restart}.",
        "### 4.2 Loss and accuracy",
        _figure(
            4,
            "curves",
            "cross-entropy and accuracy per epoch on the training and validation images, NumPy (left) and "
            "PyTorch (right)",
        ),
        progress,
    ]


def _test(run: Run) -> list[str]:
    ev = run.evaluation
    sentences = []
    for fw in FRAMEWORKS:
        per_class = ev[fw]["per_class_acc"]
        hardest, easiest = min(per_class, key=per_class.get), max(per_class, key=per_class.get)
        sentence = (
            f"For {NAMES[fw]} the hardest class is {hardest} ({_pct(per_class[hardest])} correct), the "
            f"easiest {easiest} ({_pct(per_class[easiest])})"
        )
        if ev[fw]["most_confused"]:
            pair, count = next(iter(ev[fw]["most_confused"].items()))
            actual, predicted = pair.split(" -> ")
            sentence += f"; the most frequent mistake is {actual} taken for {predicted} ({count} images)"
        sentences.append(sentence + ".")
    return [
        "## 5 Test set",
        _figure(5, "confusion_numpy", "confusion matrix of the NumPy model on the test images"),
        _figure(6, "confusion_torch", "confusion matrix of the PyTorch model on the test images"),
        "Rows are the true classes and columns the predictions; the colour is the share of the row. "
        + " ".join(sentences),
        "*Table 3: accuracy per class on the test images.*",
        per_class_table(run),
        "*Table 4: the most frequent confusions.*",
        confused_table(run),
    ]


def _features(run: Run, fmap: FeatureMap) -> list[str]:
    width, n = run.features.shape[1], len(fmap.labels)
    ordered = sorted(fmap.purity.items(), key=lambda item: item[1])
    mixed = ", ".join(f"{name} ({_pct(value)})" for name, value in ordered[:3])
    clean = ", ".join(f"{name} ({_pct(value)})" for name, value in ordered[::-1][:2])
    return [
        "## 6 Features",
        _figure(7, "tsne", f"t-SNE map of the {width}-wide features of {n:,} test images, by true class"),
        f"The NumPy model turned {n:,} test images, drawn evenly from the ten classes, into {width}-wide "
        f"feature vectors; t-SNE (scikit-learn, perplexity {fmap.perplexity:g}, PCA initialisation, seed "
        f"{run.params.train.seed}) placed them in the plane so that neighbours stay neighbours (report 000, "
        f"Figure 5). A class that forms its own island is easy to tell apart. Of the {NEIGHBOURS} nearest "
        f"neighbours of an image in the feature space, {_pct(float(np.mean(list(fmap.purity.values()))))} "
        f"share its class on average; the most mixed classes are {mixed}, the cleanest {clean}.",
    ]


def _cross(run: Run) -> list[str]:
    cross = run.evaluation["cross"]
    agreements = {cross[f"{fw}_weights"]["agreement"] for fw in FRAMEWORKS}
    agreement = " and ".join(_agreement(value) for value in sorted(agreements, reverse=True))
    largest = max(cross[f"{fw}_weights"]["max_abs_logit_diff"] for fw in FRAMEWORKS)
    logits = "float32 rounding only" if largest < 1e-3 else "more than float32 rounding explains"
    return [
        "## 7 NumPy and PyTorch on the same weights",
        "Each trained weight file was loaded into both implementations and run on the test images.",
        "*Table 5: cross-evaluation.*",
        cross_table(run),
        f"On the same weights the two implementations predict the same class for {agreement} of the "
        f"{run.evaluation['test_images']:,} test images (the evaluate stage requires at least 99.9 %); their "
        f"logits differ by at most {largest:.2g}, {logits}. The two trained models themselves, which started "
        f"from the same weights, agree on {_pct(cross['trained_models_agreement'])} of the images.",
    ]


def render_markdown(run: Run, fmap: FeatureMap) -> str:
    """The report's text: every figure with what it shows, the tables, the parameters and the provenance."""
    train = run.params.train
    rows = summary(build_numpy(get_spec(train.model, train.width), rng=placeholder()))
    total = sum(row.parameters for row in rows)
    parts = [
        *_intro(run, total),
        *_results(run),
        *_data(run),
        *_model(run, rows, total),
        *_training(run),
        *_test(run),
        *_features(run, fmap),
        *_cross(run),
        "## 8 Parameters of the run",
        "`params.yaml` as this run read it:",
        f"```yaml\n{run.params_text.strip()}\n```",
    ]
    if run.experiments:
        parts += [
            "## 9 Experiments",
            "Tables of the experiment series (`python -m lablib.experiments series NAME`), from "
            "`reports/experiments/`:",
            *run.experiments.values(),
        ]
    parts += [
        "## Reproducing",
        "`make repro` (or `dvc repro`) reruns the stages whose inputs changed and regenerates this report; "
        "`dvc exp run -S key=value` runs a variant and `dvc metrics diff` compares it with this run.",
    ]
    return "\n\n".join(parts) + "\n"


def write_report(paths: RunPaths, out: Path, dpi: int = 110) -> list[Path]:
    """Write ``out/report.md`` and ``out/figures/*.png``; on any error both stay as they were."""
    run = load_run(paths)
    fmap = feature_map(run.features, run.feature_labels, run.params.train.seed)
    made = make_figures(run, fmap)
    text = render_markdown(run, fmap)
    with staged_dir(out / "figures") as staging, staged_file(out / "report.md") as markdown:
        for key, fig in made.items():
            fig.savefig(staging / FIGURES[key], dpi=dpi)
        markdown.write_text(text)
    return [out / "report.md", *(out / "figures" / name for name in FIGURES.values())]
