"""What the run's curves and timings say, in sentences: the speed columns and the machine, the best epoch,
over-fitting, the training loss's floor, the twins' agreement and the spread over seeds. The report's
sections (:mod:`lablib.report.text`) quote them."""

from __future__ import annotations

from lablib.data.fashion_mnist import NUM_CLASSES
from lablib.report.curves import overfit, parting, relative_gap, smoothed_floor
from lablib.report.inputs import Run
from lablib.report.labels import FRAMEWORK_LABELS
from lablib.report.prose import number, percent


def speed(numpy_seconds: float, torch_seconds: float) -> str:
    """Which framework's epochs were faster, and by how much."""
    ratio = max(numpy_seconds, torch_seconds) / min(numpy_seconds, torch_seconds)
    if ratio < 1.05:  # within a shared machine's variation from run to run
        return "as fast as each other, to within 5 %"
    return f"{FRAMEWORK_LABELS['torch' if numpy_seconds > torch_seconds else 'numpy']} {ratio:.1f}× faster"


def timing(run: Run) -> str:
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


def best_epochs(run: Run) -> str:
    """Each framework's best validation accuracy and its epoch."""
    return " and ".join(
        f"{percent(run.train[fw]['best_val_acc'])} at epoch {run.train[fw]['best_epoch']} ({FRAMEWORK_LABELS[fw]})"
        for fw in run.frameworks
    )


def overfitting(run: Run) -> str:
    """Where training accuracy passes validation accuracy and how the gap grows, from the first framework."""
    fw = run.frameworks[0]
    found = overfit(run.history[fw])
    best = f"validation accuracy reaches its best, {best_epochs(run)}"
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


def loss_gap(run: Run) -> str:
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


def twins(run: Run) -> str:
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


def not_run(run: Run) -> str:
    """One sentence per framework that did not run, saying why (its training stage's record)."""
    return "".join(f" {FRAMEWORK_LABELS[fw]} did not run: {reason}." for fw, reason in run.not_run.items())


def over_seeds(run: Run) -> str:
    """The shipped default's test accuracy over seeds, beside this run's single one."""
    seeded = run.report000.default_spread
    ours = None if seeded is None else seeded.test_acc["numpy"]
    if ours is None or ours.seeds < 2:
        return ""
    return (
        f" This is one run: over {ours.seeds} seeds the shipped default reaches {100 * ours.mean:.2f} ± "
        f"{100 * ours.sd:.2f} % ({100 * ours.low:.2f}–{100 * ours.high:.2f}) with NumPy (series `{seeded.series}`)."
    )
