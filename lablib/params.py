"""params.yaml, read and checked in one place.

Every stage loads its parameters through :func:`load_params`, so a wrong value is refused before any
work starts, with one message that names the key and the values it accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from lablib.errors import LabError
from lablib.rng import MAX_SEED

FRAMEWORKS = ("numpy", "torch")
MODELS = ("lab2025_cnn", "lab2023_cnn")  # the built-in models; lablib/models/specs.py builds them
# A model of one's own: a spec file in SPEC_DIR whose layers may come from Python files in LAYER_DIR.
# dvc.yaml lists SPEC_DIR as a dependency of the stages that build a model, LAYER_DIR of those that
# build the NumPy model (a layer of one's own has no PyTorch twin).
SPEC_DIR = "mymodels"
LAYER_DIR = "mylayers"
SPEC_SUFFIXES = (".yaml", ".yml")
INITS = ("pytorch", "normal_fan_in")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "multistep", "cosine", "onecycle")
SPLITS = ("stratified", "course")
VALIDATIONS = ("holdout", "kfold", "rotating")
SAMPLINGS = ("balanced", "shuffle", "sequential")
DEVICES = ("auto", "cpu", "cuda")


class ParamsError(LabError, ValueError):
    """A parameter that cannot be used; the message names the key and what it accepts."""


@dataclass(frozen=True)
class DataParams:
    source_dir: str | None
    train_csv: str | None  # the course's training CSV file; null: the official files
    test_csv: str | None  # the course's unlabelled test CSV file, set with train_csv
    split: str
    val_per_class: int
    subset: int | None
    kfold: int


@dataclass(frozen=True)
class ScheduleParams:
    name: str
    step_size: int
    gamma: float
    start_epoch: int
    milestones: tuple[int, ...]
    warmup_epochs: int
    pct_start: float


@dataclass(frozen=True)
class AugmentConfig:
    """Switches and strengths; ``params.yaml``'s ``augment:`` section, key for key.

    A strength of 0 switches its transform off. The report gives no magnitudes; the defaults
    (those of ``params.yaml``) stay mild enough that a garment keeps its class: a shift of 2 of
    28 pixels, 10 degrees, a mean moved by at most 5 % of the range and a standard deviation
    scaled by at most ±10 %.
    """

    enabled: bool = True
    shift: int = 2  # pixels, in each direction
    flip: bool = True  # horizontal
    rotate: float = 10.0  # degrees, either way
    brightness: float = 0.05  # added to the mean, on the [-0.5, 0.5] scale
    contrast: float = 0.1  # relative change of the standard deviation
    erase: float = 0.0  # probability of erasing a rectangle of an image
    erase_area: tuple[float, float] = (0.02, 0.33)  # its area, as a fraction of the image: [min, max]

    def __post_init__(self) -> None:
        checks = (
            ("enabled", isinstance(self.enabled, bool), "true or false"),
            ("shift", _is_int(self.shift) and 0 <= self.shift <= 13, "an integer in 0..13"),
            ("flip", isinstance(self.flip, bool), "true or false"),
            ("rotate", _is_number(self.rotate) and 0 <= self.rotate <= 180, "degrees in 0..180"),
            ("brightness", _is_number(self.brightness) and 0 <= self.brightness <= 1, "a number in 0..1"),
            ("contrast", _is_number(self.contrast) and 0 <= self.contrast <= 1, "a number in 0..1"),
            ("erase", _is_number(self.erase) and 0 <= self.erase <= 1, "a probability in 0..1 (0 turns it off)"),
            (
                "erase_area",
                isinstance(self.erase_area, list | tuple)
                and len(self.erase_area) == 2
                and all(_is_number(a) for a in self.erase_area)
                and 0 < self.erase_area[0] <= self.erase_area[1] <= 1,
                "two fractions of the image [min, max] with 0 < min <= max <= 1, like [0.02, 0.33]",
            ),
        )
        for key, ok, wanted in checks:
            if not ok:
                raise ParamsError(f"augment.{key} must be {wanted}; got {getattr(self, key)!r}")
        object.__setattr__(self, "erase_area", tuple(float(a) for a in self.erase_area))

    def geometric(self) -> list[str]:
        """The choices of the geometric step: ``none`` and every transform switched on, in drawing order."""
        switched = (("shift", self.shift > 0), ("flip", self.flip), ("rotate", self.rotate > 0))
        return ["none", *(name for name, on in switched if on)]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class TrainParams:
    """Everything both trainers read; ``for_framework`` applies the per-framework overrides."""

    seed: int
    model: str
    width: int
    init: str
    epochs: int
    batch_size: int
    lr: float
    optimizer: str
    momentum: float
    weight_decay: float
    betas: tuple[float, float]
    schedule: ScheduleParams
    validation: str
    sampling: str
    augment: AugmentConfig
    center_loss_weight: float
    center_loss_alpha: float
    label_smoothing: float
    ema: float  # decay of the exponential moving average of the weights; 0 is off
    device: str

    def for_framework(self, framework: str, overrides: Mapping[str, Any]) -> TrainParams:
        """The parameters one framework trains with: ``torch.lr``/``torch.batch_size`` win when set."""
        if framework != "torch":
            return self
        changes = {key: value for key, value in overrides.items() if value is not None}
        return replace(self, **changes)


@dataclass(frozen=True)
class Params:
    data: DataParams
    train: TrainParams
    torch_overrides: Mapping[str, Any]
    evaluate: Mapping[str, Any]
    raw: Mapping[str, Any]

    def train_for(self, framework: str) -> TrainParams:
        return self.train.for_framework(framework, self.torch_overrides)


class _Reader:
    """Reads one mapping of params.yaml, naming keys by their dotted path in every error.

    An unknown key is refused on entry, before any key is found missing, so that a misspelt key
    (``lerning_rate:`` for ``lr:``) is named as such rather than reported as the key it replaced.
    """

    def __init__(self, raw: Any, keys: tuple[str, ...], prefix: str = "") -> None:
        if not isinstance(raw, Mapping):
            raise ParamsError(f"params.yaml: {prefix.rstrip('.') or 'the file'} must be a mapping, got {raw!r}")
        unknown = sorted(set(raw) - set(keys), key=str)
        if unknown:
            raise ParamsError(
                f"params.yaml: unknown key {prefix}{unknown[0]}; known keys here: {', '.join(sorted(keys))}"
            )
        self.raw = raw
        self.prefix = prefix

    def key(self, name: str) -> str:
        return self.prefix + name

    def get(self, name: str) -> Any:
        if name not in self.raw:
            raise ParamsError(f"params.yaml: {self.key(name)} is missing")
        return self.raw[name]

    def section(self, name: str, keys: tuple[str, ...]) -> _Reader:
        return _Reader(self.get(name), keys, self.key(name) + ".")

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        value = self.get(name)
        if value not in allowed:
            raise ParamsError(f"params.yaml: {self.key(name)} must be one of {', '.join(allowed)}; got {value!r}")
        return value

    def integer(self, name: str, low: int | None = None, high: int | None = None, null: bool = False) -> Any:
        value = self.get(name)
        if value is None and null:
            return None
        ok = _is_int(value)
        ok = ok and (low is None or value >= low) and (high is None or value <= high)
        if not ok:
            raise ParamsError(
                f"params.yaml: {self.key(name)} must be {_range_text('an integer', low, high)}"
                f"{' or null' if null else ''}; got {value!r}"
            )
        return value

    def number(self, name: str, low: float | None = None, high: float | None = None, positive: bool = False) -> float:
        value = self.get(name)
        ok = _is_number(value) and value == value
        ok = ok and (low is None or value >= low) and (high is None or value <= high)
        ok = ok and (not positive or value > 0)
        if not ok:
            wanted = "a number > 0" if positive else _range_text("a number", low, high)
            raise ParamsError(f"params.yaml: {self.key(name)} must be {wanted}; got {value!r}")
        return float(value)

    def boolean(self, name: str) -> bool:
        value = self.get(name)
        if not isinstance(value, bool):
            raise ParamsError(f"params.yaml: {self.key(name)} must be true or false; got {value!r}")
        return value


DATA_KEYS = tuple(f.name for f in fields(DataParams))
SCHEDULE_KEYS = tuple(f.name for f in fields(ScheduleParams))
AUGMENT_KEYS = tuple(f.name for f in fields(AugmentConfig))
TOP_KEYS = (
    "seed",
    "data",
    "model",
    "width",
    "init",
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "momentum",
    "weight_decay",
    "betas",
    "schedule",
    "validation",
    "sampling",
    "label_smoothing",
    "ema",
    "augment",
    "center_loss",
    "torch",
    "evaluate",
)


def _range_text(kind: str, low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{kind} in {low}..{high}"
    if low is not None:
        return f"{kind} >= {low}"
    return kind


def _read_data(r: _Reader) -> DataParams:
    source_dir = r.get("source_dir")
    if source_dir is not None and not isinstance(source_dir, str):
        raise ParamsError(f"params.yaml: data.source_dir must be a directory path or null; got {source_dir!r}")
    csv = {name: r.get(name) for name in ("train_csv", "test_csv")}
    for name, value in csv.items():
        if value is not None and not isinstance(value, str):
            raise ParamsError(f"params.yaml: data.{name} must be the path of a CSV file or null; got {value!r}")
    if (csv["train_csv"] is None) != (csv["test_csv"] is None):
        raise ParamsError(
            "params.yaml: data.train_csv and data.test_csv go together: set both to the course's CSV files, "
            "or both to null for the official files"
        )
    data = DataParams(
        source_dir=source_dir,
        **csv,
        split=r.choice("split", SPLITS),
        val_per_class=r.integer("val_per_class", 1, 5999),
        subset=r.integer("subset", 10, 60000, null=True),
        kfold=r.integer("kfold", 2, 6000),
    )
    return data


def _read_schedule(r: _Reader) -> ScheduleParams:
    milestones = r.get("milestones")
    if not isinstance(milestones, list) or not all(isinstance(m, int) and m > 0 for m in milestones):
        raise ParamsError(f"params.yaml: schedule.milestones must be a list of epochs > 0; got {milestones!r}")
    if milestones != sorted(set(milestones)):
        raise ParamsError(f"params.yaml: schedule.milestones must be increasing; got {milestones!r}")
    schedule = ScheduleParams(
        name=r.choice("name", SCHEDULES),
        step_size=r.integer("step_size", 1),
        gamma=r.number("gamma", positive=True),
        start_epoch=r.integer("start_epoch", 0),
        milestones=tuple(milestones),
        warmup_epochs=r.integer("warmup_epochs", 0),
        pct_start=r.number("pct_start", 0.0, 1.0),
    )
    return schedule


def _read_augment(r: _Reader) -> AugmentConfig:
    values = {name: r.get(name) for name in AUGMENT_KEYS}
    try:
        return AugmentConfig(**values)
    except (TypeError, ValueError) as error:
        raise ParamsError(f"params.yaml: {error}") from None


def _read_model(r: _Reader) -> str:
    """A built-in model's name, or the path of a spec file in SPEC_DIR."""
    model = r.get("model")
    if model in MODELS:
        return model
    if isinstance(model, str) and model.endswith(SPEC_SUFFIXES):
        if Path(model).parent != Path(SPEC_DIR):
            raise ParamsError(
                f"params.yaml: model {model} must be a spec file in {SPEC_DIR}/ ({SPEC_DIR}/NAME.yaml), "
                "where DVC sees it change"
            )
        if not Path(model).is_file():
            raise ParamsError(f"params.yaml: model {model}: there is no such file")
        return model
    raise ParamsError(
        f"params.yaml: model must be one of {', '.join(MODELS)} or a spec file {SPEC_DIR}/NAME.yaml; got {model!r}"
    )


def _read_train(r: _Reader) -> TrainParams:
    betas = r.get("betas")
    if not (
        isinstance(betas, list) and len(betas) == 2 and all(isinstance(b, int | float) and 0 <= b < 1 for b in betas)
    ):
        raise ParamsError(f"params.yaml: betas must be two numbers in [0, 1), like [0.9, 0.999]; got {betas!r}")
    center = r.section("center_loss", ("weight", "alpha"))
    train = TrainParams(
        seed=r.integer("seed", 0, MAX_SEED),
        model=_read_model(r),
        width=r.integer("width", 1, 512),
        init=r.choice("init", INITS),
        epochs=r.integer("epochs", 1),
        batch_size=r.integer("batch_size", 1),
        lr=r.number("lr", positive=True),
        optimizer=r.choice("optimizer", OPTIMIZERS),
        momentum=r.number("momentum", 0.0, 1.0),
        weight_decay=r.number("weight_decay", 0.0),
        betas=(float(betas[0]), float(betas[1])),
        schedule=_read_schedule(r.section("schedule", SCHEDULE_KEYS)),
        validation=r.choice("validation", VALIDATIONS),
        sampling=r.choice("sampling", SAMPLINGS),
        augment=_read_augment(r.section("augment", AUGMENT_KEYS)),
        center_loss_weight=center.number("weight", 0.0),
        center_loss_alpha=center.number("alpha", 0.0, 1.0),
        label_smoothing=r.number("label_smoothing", 0.0, 0.99),
        ema=r.number("ema", 0.0, 0.99999),
        device="cpu",
    )
    if train.sampling == "balanced" and train.batch_size < 10:
        raise ParamsError(
            f"params.yaml: batch_size must be at least 10 with sampling: balanced "
            f"(batch_size // 10 images of each class); got {train.batch_size}"
        )
    return train


def _read_torch(r: _Reader) -> dict[str, Any]:
    return {
        "lr": r.number("lr", positive=True) if r.get("lr") is not None else None,
        "batch_size": r.integer("batch_size", 1, null=True),
        "device": r.choice("device", DEVICES),
    }


def parse_params(raw: Any) -> Params:
    """Check a params mapping (as loaded from params.yaml) and return it typed."""
    r = _Reader(raw, TOP_KEYS)
    data = _read_data(r.section("data", DATA_KEYS))
    train = _read_train(r)
    torch_overrides = _read_torch(r.section("torch", ("lr", "batch_size", "device")))
    evaluate = {"feature_samples": r.section("evaluate", ("feature_samples",)).integer("feature_samples", 10, 10000)}
    if train.validation in ("kfold", "rotating") and data.kfold < 2:
        raise ParamsError(f"params.yaml: data.kfold must be at least 2 for validation: {train.validation}")
    return Params(data=data, train=train, torch_overrides=torch_overrides, evaluate=evaluate, raw=raw)


def load_params(path: str | Path = "params.yaml") -> Params:
    """Load and check params.yaml; raises :class:`ParamsError` with one clear message."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path} not found: run the stage from the repository root") from None
    except yaml.YAMLError as error:
        raise ParamsError(f"{path} is not valid YAML: {error}") from None
    return parse_params(raw)
