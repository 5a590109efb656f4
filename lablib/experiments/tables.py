"""The series tables: one line per finished experiment, and one per row summarised over its seeds.

A series run with several seeds gets, per row and metric, the mean, the sample standard deviation
(n - 1 in the denominator) and the range over the seeds that have finished, with how many that is.
Both tables are written: ``<series>-seeds.csv`` holds every seed's numbers, and ``<series>.csv`` and
``.md`` the summary computed from exactly those numbers (``summarise`` recomputes it from the CSV).
A series without seeds has one experiment a row and its table shows each number as it is.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lablib.experiments.config import ExperimentError, Row
from lablib.experiments.equivalence import same_code
from lablib.experiments.store import (
    Experiment,
    code_digest,
    expected_params,
    params_digest,
    params_mismatch,
    ran_head_code,
    run_record,
    short_commit,
    stages_run,
)
from lablib.params import FRAMEWORKS

TRAIN_METRICS = "dvclive/{framework}/metrics.json"
TEST_METRICS = "evaluation/{framework}/metrics.json"
STATS = ("sd", "min", "max")
SEEDS = "seeds"
# Decimals of the summary's statistics: the per-seed numbers have two, their mean and spread one more.
DECIMALS = 3


def metric_columns() -> list[str]:
    """The columns of the metrics, per framework: validation and test accuracy in %, seconds per epoch."""
    return [f"{fw} {metric}" for fw in FRAMEWORKS for metric in ("val acc %", "test acc %", "s/epoch")]


def stat_column(metric: str, stat: str) -> str:
    """The summary's column of a statistic over the seeds of a metric column: ``numpy test acc % sd``."""
    return f"{metric} {stat}"


def seed_table(
    rows: Sequence[Row], experiments: Sequence[Experiment], params_path: Path, earlier: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One line per finished experiment of ``rows``: its row, seed, overrides, targets, jobs and threads,
    each metric its targets produced, and what identifies its run (the commit, and digests of the code and
    the parameters it ran).

    An experiment is taken from ``experiments`` where one of its name ran the code HEAD holds (on this
    commit or an earlier one), or else from ``earlier``, the per-seed table written before, when that line
    ran the same code and parameters on another commit: so the seeds of a series can run over several
    sessions. A row none of whose experiments has finished is an error.
    """
    finished = [exp for exp in experiments if exp.finished]
    stages_of: dict[tuple[str, ...], set[str]] = {}
    codes: dict[tuple[str, ...], str] = {}
    lines = []
    for name in dict.fromkeys(row.row for row in rows):
        of_row = [row for row in rows if row.row == name]
        found = 0
        for row in of_row:
            expected = expected_params(params_path, row.settings)
            code = codes.setdefault(row.targets, code_digest(row.targets))
            same = [exp for exp in finished if exp.name == row.name and ran_head_code(exp, row.targets)]
            exp = next((exp for exp in same if params_mismatch(exp, expected) is None), same[0] if same else None)
            if exp is None:
                line = carried(earlier, row, code, params_digest(expected))
                if line is not None:
                    lines.append(line)
                    found += 1
                continue
            mismatch = params_mismatch(exp, expected)
            if mismatch:
                raise ExperimentError(f"experiment {row.name} ran other parameters ({mismatch}); run the series again")
            record = run_record(exp.rev)
            stages = stages_of.setdefault(row.targets, stages_run(row.targets))
            line: dict[str, Any] = {
                "row": row.row,
                "seed": exp.params.get("seed"),
                "overrides": ", ".join(f"{k}={v}" for k, v in row.overrides.items()) or "(preset)",
                "targets": " ".join(row.targets) or "all",
                "jobs": record.get("jobs"),
                "threads per job": record.get("threads"),
            }
            for framework in FRAMEWORKS:
                train, test = TRAIN_METRICS.format(framework=framework), TEST_METRICS.format(framework=framework)
                trained, tested = f"train_{framework}" in stages, f"evaluate_{framework}" in stages
                line[f"{framework} val acc %"] = _percent(exp.metrics.get(f"{train}:best_val_acc") if trained else None)
                line[f"{framework} test acc %"] = _percent(exp.metrics.get(f"{test}:test_acc") if tested else None)
                line[f"{framework} s/epoch"] = _round(
                    exp.metrics.get(f"{train}:mean_epoch_seconds") if trained else None, 2
                )
            line.update({"commit": short_commit(exp.baseline), "code": code, "params": params_digest(expected)})
            lines.append(line)
            found += 1
        if not found:
            raise ExperimentError(
                f"experiment {', '.join(row.name for row in of_row)} not found in dvc exp show; run the series "
                "first (or `dvc exp pull origin -A` where it ran elsewhere)"
            )
    return pd.DataFrame(lines)


def carried(earlier: pd.DataFrame | None, row: Row, code: str, params: str) -> dict[str, Any] | None:
    """The line of ``earlier`` (a per-seed table) that ran ``row`` with this code (the same digest, or one the
    record of equivalent code links to it) and these parameters (its seed among them), if any."""
    if earlier is None or earlier.empty:
        return None
    ran_code = earlier["code"].map(lambda recorded: same_code(recorded, code))
    same = earlier[(earlier["row"] == row.row) & ran_code & (earlier["params"] == params)]
    return None if same.empty else same.iloc[-1].to_dict()


def read_earlier(out_dir: Path, stem: str) -> pd.DataFrame | None:
    """The per-seed table written before, ``<stem>-seeds.csv`` in ``out_dir`` (None when there is none)."""
    path = out_dir / f"{stem}-seeds.csv"
    return pd.read_csv(path, dtype={"commit": str, "code": str, "params": str}) if path.is_file() else None


def commits(per_seed: pd.DataFrame) -> str:
    """The commits the experiments of a table ran on, for its title: ``commit abc1234`` or ``commits a, b
    (the same code)``."""
    ran = list(dict.fromkeys(per_seed["commit"]))
    return f"commit {ran[0]}" if len(ran) == 1 else f"commits {', '.join(ran)} (the same code)"


def summarise(per_seed: pd.DataFrame, seeds: Mapping[str, int], reference: Mapping[str, float] | None) -> pd.DataFrame:
    """The series table from the per-seed one: one line per row (in order), each metric's mean over the row's
    seeds and, where ``seeds`` (the seeds named per row) names more than one for any row, their count,
    standard deviation and range. Columns no row has a number for are left out, and ``targets`` when every
    row runs the whole pipeline."""
    spread = any(count > 1 for count in seeds.values())
    metrics = [column for column in metric_columns() if column in per_seed and per_seed[column].notna().any()]
    lines = []
    for name, group in per_seed.groupby("row", sort=False):
        first = group.iloc[0]
        line: dict[str, Any] = {"row": name, "overrides": first["overrides"], "targets": first["targets"]}
        if spread:
            line[SEEDS] = len(group)
            line[f"{SEEDS} named"] = seeds[name]
        line["jobs"] = _one_or_all(group["jobs"])
        line["threads per job"] = _one_or_all(group["threads per job"])
        for metric in metrics:
            values = group[metric].dropna()
            line[metric] = _round(values.mean(), DECIMALS) if len(values) else None
            if spread:
                sd = values.std(ddof=1) if len(values) > 1 else None
                line[stat_column(metric, "sd")] = _round(sd, DECIMALS)
                line[stat_column(metric, "min")] = values.min() if len(values) else None
                line[stat_column(metric, "max")] = values.max() if len(values) else None
        if reference is not None:
            line["report %"] = reference.get(name)
        lines.append(line)
    table = pd.DataFrame(lines).dropna(axis="columns", how="all")
    return table.drop(columns="targets") if (table["targets"] == "all").all() else table


def markdown(table: pd.DataFrame) -> str:
    """The summary as Markdown: with seeds, each metric as ``mean ± sd (min–max)`` and the seeds as
    ``finished of named``; without, every number as it is."""
    if SEEDS not in table:
        return table.to_markdown(index=False, floatfmt=".2f")
    shown = pd.DataFrame({"row": table["row"]})
    for column in table.columns.drop("row"):
        if column.endswith(tuple(f" {stat}" for stat in STATS)) or column == f"{SEEDS} named":
            continue
        if column == SEEDS:
            shown[column] = [
                f"{n}" if n == named else f"{n} of {named}"
                for n, named in zip(table[SEEDS], table[f"{SEEDS} named"], strict=True)
            ]
        elif stat_column(column, "sd") in table:
            shown[column] = [_spread_cell(line, column) for _, line in table.iterrows()]
        else:
            shown[column] = table[column]
    return shown.to_markdown(index=False, floatfmt=".2f")


def _spread_cell(line: pd.Series, metric: str) -> str:
    mean, sd = line[metric], line[stat_column(metric, "sd")]
    if pd.isna(mean):
        return ""
    if pd.isna(sd):
        return f"{mean:.2f}"
    low, high = line[stat_column(metric, "min")], line[stat_column(metric, "max")]
    return f"{mean:.2f} ± {sd:.2f} ({low:.2f}–{high:.2f})"


def write_tables(per_seed: pd.DataFrame, table: pd.DataFrame, out_dir: Path, stem: str, title: str) -> list[Path]:
    """``<stem>.csv`` and ``<stem>.md`` (the summary) and, for a series with seeds, ``<stem>-seeds.csv``
    in ``out_dir``, each replaced atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        out_dir / f"{stem}.csv": table.to_csv(index=False),
        out_dir / f"{stem}.md": f"### {title}\n\n{markdown(table)}\n",
    }
    if SEEDS in table:
        files[out_dir / f"{stem}-seeds.csv"] = per_seed.to_csv(index=False)
    for path, text in files.items():
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.replace(tmp, path)
    return list(files)


def _one_or_all(values: pd.Series) -> Any:
    """The one value a column holds for a row's seeds, or all of them (``1, 2``) when they differ."""
    distinct = list(dict.fromkeys(values.dropna()))
    if len(distinct) == 1:
        return distinct[0]
    return ", ".join(str(value) for value in distinct) or None


def _percent(value: Any) -> float | None:
    return None if value is None else round(100 * float(value), 2)


def _round(value: Any, decimals: int) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), decimals)
