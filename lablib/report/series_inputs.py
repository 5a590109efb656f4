"""Reading the experiment series: their tables in reports/experiments, a row's spread over seeds, and the
course reports' published figures (``published`` in experiments.yaml) set beside them.

A missing or inconsistent table raises :class:`ReportError`, naming the series and the command that writes it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lablib.experiments.config import preset_run, series_rows
from lablib.experiments.tables import SEEDS, stat_column
from lablib.params import FRAMEWORKS, Params, parse_params
from lablib.report.errors import ReportError

REPORT001_SERIES = "report001"
SEED_TABLE = "-seeds"  # the suffix of a series' per-seed table


@dataclass(frozen=True)
class Spread:
    """One metric over the seeds of a series row (fractions): the mean, the sample standard deviation
    (``None`` with one seed), the range, and how many seeds finished."""

    mean: float
    sd: float | None
    low: float
    high: float
    seeds: int


@dataclass(frozen=True)
class Seeded:
    """A series row's best validation and test accuracies over its seeds (``None`` per framework where it did
    not run): a preset's spread where the row runs that preset."""

    series: str
    row: str
    best_val_acc: dict[str, Spread | None]
    test_acc: dict[str, Spread | None]


@dataclass(frozen=True)
class Tuned:
    """The preset that trains report 000's network better than report 000 did, as the row of the series
    that chose it measured it (fractions and seconds; ``None`` where a framework did not run)."""

    preset: str
    series: str
    row: str
    params: Params
    best_val_acc: dict[str, float | None]
    test_acc: dict[str, float | None]
    epoch_seconds: dict[str, float | None]
    threads: int


@dataclass(frozen=True)
class Report000:
    """Report 000's published results (``published.report000`` in experiments.yaml), per framework, the
    hyper-parameters of its 5.2 (preset ``lab2025``) applied to this run's parameters, and the tuned
    preset's results (``None`` until its series has a table), and the spread over seeds of the shipped
    default and of the tuned preset (each ``None`` until its series has a table)."""

    params: Params
    best_val_acc: dict[str, float]
    best_epoch: dict[str, int]
    epoch_seconds: dict[str, tuple[float, float]]
    tuned: Tuned | None
    default_spread: Seeded | None
    tuned_spread: Seeded | None


@dataclass(frozen=True)
class SeriesRow(Seeded):
    """One row of report 001's Table 1: this project's runs of it over their seeds, the report's figure (%)
    and the row's validation scheme."""

    reference: float
    validation: str


@dataclass(frozen=True)
class Report001:
    """Report 001's Table 1 beside this project's series of it, read from its table in reports/experiments."""

    table: Path
    quick: bool
    rows: list[SeriesRow]
    per_seed: pd.DataFrame | None


def read_experiments(folder: Path) -> dict[str, str]:
    """The Markdown tables of the experiment series, by name; none when the folder is absent."""
    return {path.stem: path.read_text().strip() for path in sorted(folder.glob("*.md"))}


def read_series_tables(folder: Path) -> dict[str, pd.DataFrame]:
    """The series' summary tables (``<series>.csv``) by name, each indexed by row, and their per-seed tables
    (``<series>-seeds.csv``) by the same name with ``-seeds``."""
    tables = {path.stem: pd.read_csv(path) for path in sorted(folder.glob("*.csv"))}
    return {name: table if name.endswith(SEED_TABLE) else table.set_index("row") for name, table in tables.items()}


def with_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a params mapping with ``-S``-style dotted overrides (``torch.lr: 0.001``) applied."""
    params = copy.deepcopy(dict(raw))
    for dotted, value in overrides.items():
        *parents, key = dotted.split(".")
        node = params
        for parent in parents:
            node = node[parent]
        node[key] = value
    return params


def read_report000(config: Mapping[str, Any], params: Params, folder: Path) -> Report000:
    """Report 000's published results and, as :class:`Params`, this run's parameters under its preset;
    the tuned preset's results from its series table in ``folder``."""
    try:
        published = config["published"]["report000"]
        spread = published["spread"]
        return Report000(
            params=parse_params(with_overrides(params.raw, config["presets"][published["preset"]])),
            best_val_acc={fw: published["best_val_acc"][fw] / 100 for fw in FRAMEWORKS},
            best_epoch={fw: published["best_epoch"][fw] for fw in FRAMEWORKS},
            epoch_seconds={fw: tuple(published["epoch_seconds"][fw]) for fw in FRAMEWORKS},
            tuned=read_tuned(config, params, published["tuned"], folder),
            default_spread=read_seeded(config, params, "default", spread["series"], spread["default"], folder),
            tuned_spread=read_seeded(
                config, params, published["tuned"]["preset"], spread["series"], spread["tuned"], folder
            ),
        )
    except KeyError as error:
        raise ReportError(f"experiments.yaml: published.report000 lacks {error}; restore it from git") from None


def read_tuned(config: Mapping[str, Any], params: Params, entry: Mapping[str, str], folder: Path) -> Tuned | None:
    """The tuned preset and its series row's results; ``None`` when the series has no table yet.

    The preset must set exactly what the row set, or the table's numbers would not be the preset's.
    """
    preset, series, row = entry["preset"], entry["series"], entry["row"]
    tuned = _preset_of_row(config, params, preset, series, row)
    measured = _series_row(folder, series, row)
    if measured is None:
        return None
    return Tuned(
        preset=preset,
        series=series,
        row=row,
        params=parse_params(tuned),
        best_val_acc={fw: _fraction(measured.get(f"{fw} val acc %")) for fw in FRAMEWORKS},
        test_acc={fw: _fraction(measured.get(f"{fw} test acc %")) for fw in FRAMEWORKS},
        epoch_seconds={fw: _number(measured.get(f"{fw} s/epoch")) for fw in FRAMEWORKS},
        threads=int(measured["threads per job"]),
    )


def _series_row(folder: Path, series: str, row: str) -> pd.Series | None:
    """Row ``row`` of series ``series``'s table in ``folder``; ``None`` while the series has no table."""
    path = folder / f"{series}.csv"
    if not path.is_file():
        return None
    table = pd.read_csv(path).set_index("row")
    if row not in table.index:
        raise ReportError(f"{path} has no row {row}: run it (python -m lablib.experiments series {series})")
    return table.loc[row]


def _preset_of_row(config: Mapping[str, Any], params: Params, preset: str, series: str, row: str) -> dict[str, Any]:
    """The parameters of ``preset`` applied to this run's, checked to be what row ``row`` of ``series`` sets
    (its seed apart): otherwise the report would show the row's results as the preset's."""
    rows = {r.row: r for r in series_rows(config, series, quick=False)}
    if row not in rows:
        raise ReportError(f"experiments.yaml: published.report000 names row {row}, which series {series} lacks")
    overrides, _ = preset_run(config, preset, quick=False)
    settings = {key: value for key, value in rows[row].settings.items() if key != "seed"}
    raw = with_overrides(params.raw, overrides)
    if raw != with_overrides(params.raw, settings):
        raise ReportError(
            f"experiments.yaml: preset {preset} does not set what row {row} of series {series} set; make them "
            "the same, or the report would show the row's results as the preset's"
        )
    return raw


def read_seeded(
    config: Mapping[str, Any], params: Params, preset: str, series: str, row: str, folder: Path
) -> Seeded | None:
    """Preset ``preset``'s spread over seeds, from row ``row`` of ``series``'s table; ``None`` until it has one."""
    _preset_of_row(config, params, preset, series, row)
    measured = _series_row(folder, series, row)
    if measured is None:
        return None
    return Seeded(series, row, *_spreads(measured))


def _spreads(measured: pd.Series) -> tuple[dict[str, Spread | None], dict[str, Spread | None]]:
    """A series row's best validation and test accuracies over its seeds, per framework."""
    val, test = ({fw: read_spread(measured, f"{fw} {m} acc %") for fw in FRAMEWORKS} for m in ("val", "test"))
    return val, test


def read_spread(line: pd.Series, column: str) -> Spread | None:
    """A metric of a series table's row (in %) over its seeds, as fractions; one seed where the table has no
    spread columns; ``None`` where the row has no such metric."""
    mean = _fraction(line.get(column))
    if mean is None:
        return None
    if stat_column(column, "sd") not in line:
        return Spread(mean, None, mean, mean, 1)
    sd = _fraction(line.get(stat_column(column, "sd")))
    low, high = (_fraction(line.get(stat_column(column, stat))) for stat in ("min", "max"))
    return Spread(mean, sd, mean if low is None else low, mean if high is None else high, int(line[SEEDS]))


def read_report001(config: Mapping[str, Any], folder: Path) -> Report001 | None:
    """Report 001's Table 1 beside the series ``report001`` as its table in ``folder`` holds it (the full-length
    table when both it and the quick one exist); ``None`` when the series has not been run."""
    candidates = [folder / f"{REPORT001_SERIES}{suffix}.csv" for suffix in ("", "-quick")]
    path = next((candidate for candidate in candidates if candidate.is_file()), None)
    if path is None:
        return None
    quick = path.stem.endswith("-quick")
    table = pd.read_csv(path).set_index("row")
    reference = config["series"][REPORT001_SERIES]["reference"]
    settings = {row.row: row.settings for row in series_rows(config, REPORT001_SERIES, quick)}
    rows = []
    for name, figure in reference.items():
        if name not in table.index:
            raise ReportError(f"{path} has no row {name}: rewrite it (python -m lablib.experiments table report001)")
        spreads = _spreads(table.loc[name])
        rows.append(
            SeriesRow(
                REPORT001_SERIES, name, *spreads, reference=float(figure), validation=settings[name]["validation"]
            )
        )
    seeds = path.with_name(f"{path.stem}{SEED_TABLE}.csv")
    return Report001(path.with_suffix(".md"), quick, rows, pd.read_csv(seeds) if seeds.is_file() else None)


def _fraction(percent: Any) -> float | None:
    value = _number(percent)
    return None if value is None else value / 100


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
