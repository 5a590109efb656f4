"""The run's settings in words: optimiser, batches, validation, learning-rate schedule and augmentation."""

from __future__ import annotations

from collections.abc import Sequence

from lablib.params import FRAMEWORKS, Params, TrainParams
from lablib.report.inputs import Run


def schedule_rule(train: TrainParams) -> str:
    """One framework's learning-rate schedule in words."""
    s = train.schedule
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
    return text


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
    erasing = (
        f"; then, with probability {a.erase:g}, random erasing (Zhong et al. 2017, which report 000 did not use) "
        f"fills a rectangle of {100 * a.erase_area[0]:g}–{100 * a.erase_area[1]:g} % of the image with noise"
        if a.erase
        else ""
    )
    if not a.enabled:
        return f"Augmentation was off for this run; switched on it would apply {text}{erasing}."
    return f"Each training image went through {text} (report 000, 2.4){erasing}, drawn anew every epoch."


def validation_images(run: Run) -> str:
    """The images the run validated on."""
    if run.params.train.validation == "holdout":
        return f"{run.sizes['val']:,} held-out training images"
    return f"the held-out fold (one of {run.params.data.kfold}) of the {run.sizes['train'] + run.sizes['val']:,} images"
