"""``experiments.yaml`` read into presets and rows: what each experiment sets, runs and is called.

A preset, a series or a row maps parameters to values in ``dvc exp run -S`` form, with two reserved
keys: ``targets`` (the DVC stages to run; the row's wins over the series', the series' over the
preset's) and ``seeds`` (on a series or a row, the row's winning: the values of ``seed`` to run it with,
each its own experiment ``<series>-<row>-seed<k>``). A row without seeds runs ``params.yaml``'s seed
as ``<series>-<row>``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lablib.errors import LabError

RESERVED = ("targets", "seeds")


class ExperimentError(LabError):
    """A preset or series that cannot be run or tabled."""


@dataclass(frozen=True)
class Row:
    """One experiment of a series: its row, its seed (None: ``params.yaml``'s), its experiment's name,
    the overrides the table shows, all it sets, and the DVC stages it runs."""

    row: str
    seed: int | None
    name: str
    overrides: Mapping[str, Any]
    settings: Mapping[str, Any]
    targets: tuple[str, ...]


def load_experiments(path: Path = Path("experiments.yaml")) -> dict[str, Any]:
    if not path.is_file():
        raise ExperimentError(f"{path} not found: run from the repository root")
    return yaml.safe_load(path.read_text())


def set_args(overrides: Mapping[str, Any]) -> list[str]:
    """``-S key=value`` arguments, values written as YAML so that null, booleans and lists survive."""
    args = []
    for key, value in overrides.items():
        text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
        args += ["-S", f"{key}={text}"]
    return args


def experiment_name(series: str, row: str, quick: bool, seed: int | None = None) -> str:
    return f"{series}-{row}{'' if seed is None else f'-seed{seed}'}{'-quick' if quick else ''}"


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys, the form ``-S`` overrides take."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def split_spec(
    spec: Mapping[str, Any], where: str
) -> tuple[dict[str, Any], tuple[str, ...] | None, tuple[int, ...] | None]:
    """A preset, series or row's parameter overrides, its ``targets`` and its ``seeds`` (None when not named)."""
    overrides = {key: value for key, value in spec.items() if key not in RESERVED}
    targets, seeds = spec.get("targets"), spec.get("seeds")
    if targets is not None and not (isinstance(targets, list) and all(isinstance(t, str) for t in targets)):
        raise ExperimentError(f"experiments.yaml: {where}: targets must be a list of DVC stage names, got {targets!r}")
    if seeds is not None and not (
        isinstance(seeds, list)
        and seeds
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
        and len(set(seeds)) == len(seeds)
    ):
        raise ExperimentError(
            f"experiments.yaml: {where}: seeds must be a list of distinct integers >= 0, got {seeds!r}"
        )
    if seeds is not None and "seed" in overrides:
        raise ExperimentError(f"experiments.yaml: {where}: sets both seed and seeds; keep one")
    return overrides, None if targets is None else tuple(targets), None if seeds is None else tuple(seeds)


def preset_run(config: Mapping[str, Any], preset: str, quick: bool) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A preset's overrides (with the quick ones under ``--quick``) and its DVC targets."""
    presets = config["presets"]
    if preset not in presets:
        raise ExperimentError(f"experiments.yaml: no preset {preset!r}; presets: {', '.join(presets)}")
    overrides, targets, seeds = split_spec(presets[preset] or {}, f"preset {preset}")
    if seeds is not None:
        raise ExperimentError(f"experiments.yaml: preset {preset} names seeds; name them on a series or a row")
    return {**overrides, **(config["quick"] if quick else {})}, targets or ()


def series_spec(config: Mapping[str, Any], series: str) -> Mapping[str, Any]:
    if series not in config["series"]:
        raise ExperimentError(f"experiments.yaml: no series {series!r}; series: {', '.join(config['series'])}")
    return config["series"][series]


def series_rows(config: Mapping[str, Any], series: str, quick: bool, only: Sequence[str] = ()) -> list[Row]:
    """The experiments of a series (of the rows named in ``only`` when given): each row once per seed,
    seed by seed."""
    spec = series_spec(config, series)
    unknown = [row for row in only if row not in spec["rows"]]
    if unknown:
        raise ExperimentError(
            f"series {series} has no row {', '.join(map(repr, unknown))}; rows: {', '.join(spec['rows'])}"
        )
    preset, preset_targets = preset_run(config, spec["preset"], quick=False)
    _, series_targets, series_seeds = split_spec(
        {key: spec[key] for key in RESERVED if key in spec}, f"series {series}"
    )
    per_row = []
    for row, row_spec in spec["rows"].items():
        if only and row not in only:
            continue
        overrides, row_targets, row_seeds = split_spec(row_spec or {}, f"series {series}, row {row}")
        targets = next(t for t in (row_targets, series_targets, preset_targets) if t is not None)
        settings = {**preset, **overrides, **(config["quick"] if quick else {})}
        per_row.append(
            [
                Row(
                    row=row,
                    seed=seed,
                    name=experiment_name(series, row, quick, seed),
                    overrides=overrides,
                    settings=settings if seed is None else {**settings, "seed": seed},
                    targets=targets,
                )
                for seed in row_seeds or series_seeds or (None,)
            ]
        )
    # Seed by seed: every row's first seed, then every row's second, so that a series stopped part way has
    # as many rows with as many seeds as it can.
    return [row for round_ in itertools.zip_longest(*per_row) for row in round_ if row is not None]
