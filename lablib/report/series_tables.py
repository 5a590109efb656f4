"""What a series' table and its entry in experiments.yaml say of a row: the frameworks the table holds, a
row's spread over seeds, the parameters a row changes, and the parameters a preset trains with. Shared by
:mod:`lablib.report.series` and :mod:`lablib.report.ablation`."""

from __future__ import annotations

import pandas as pd

from lablib.experiments.config import preset_run, series_spec
from lablib.params import FRAMEWORKS, Params, parse_params
from lablib.report.inputs import Run
from lablib.report.series_inputs import Spread, read_spread, with_overrides


def preset_params(run: Run, preset: str) -> Params:
    """This run's parameters under ``preset``'s overrides."""
    overrides, _ = preset_run(run.config, preset, quick=False)
    return parse_params(with_overrides(run.params.raw, overrides))


def table_frameworks(table: pd.DataFrame) -> list[str]:
    """The frameworks a series' table has test accuracies of, in the project's order."""
    return [fw for fw in FRAMEWORKS if f"{fw} test acc %" in table]


def row_spread(table: pd.DataFrame, row: str, fw: str, measure: str = "test") -> Spread | None:
    """Row ``row``'s ``measure`` accuracy (``test`` or ``val``) with ``fw`` over its seeds."""
    return read_spread(table.loc[row], f"{fw} {measure} acc %")


def row_changes(run: Run, series: str, row: str) -> str:
    """The parameters row ``row`` of ``series`` sets (its seeds apart), in Markdown; ``nothing`` for none."""
    overrides = dict(series_spec(run.config, series)["rows"][row] or {})
    overrides.pop("seeds", None)
    return ", ".join(f"`{key}={value}`" for key, value in overrides.items()) or "nothing"
