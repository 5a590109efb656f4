"""Seeds as a dimension of a series: the experiments a row becomes, and the table's mean and spread over them,
recomputed from the per-seed rows (those committed in reports/experiments among them)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lablib.experiments.config import ExperimentError, series_rows
from lablib.experiments.tables import SEEDS, markdown, stat_column, summarise, write_tables

REPO = Path(__file__).resolve().parents[1]
CONFIG = {
    "presets": {"p": {"lr": 0.1, "targets": ["evaluate_numpy"]}},
    "quick": {"epochs": 1},
    "series": {
        "s": {
            "preset": "p",
            "seeds": [0, 1],
            "rows": {"a": {}, "b": {"width": 8, "seeds": [3, 4, 5]}},
            "reference": {"a": 90.0},
        },
        "plain": {"preset": "p", "rows": {"c": {"lr": 0.2}}},
    },
}


def per_seed(values: dict[str, list[float]]) -> pd.DataFrame:
    """A per-seed table as ``seed_table`` makes it, NumPy only, with the given test accuracies per row."""
    lines = []
    for row, accuracies in values.items():
        for seed, acc in enumerate(accuracies):
            lines.append(
                {
                    "row": row,
                    "seed": seed,
                    "overrides": "(preset)",
                    "targets": "evaluate_numpy",
                    "jobs": 1,
                    "threads per job": 1 + seed % 2,
                    "numpy val acc %": acc + 1,
                    "numpy test acc %": acc,
                    "numpy s/epoch": 10.0,
                    "torch val acc %": None,
                    "torch test acc %": None,
                    "torch s/epoch": None,
                }
            )
    return pd.DataFrame(lines)


def test_a_row_is_one_experiment_per_seed_the_rows_seeds_winning():
    rows = series_rows(CONFIG, "s", quick=True)
    assert [(r.row, r.seed, r.name) for r in rows] == [
        ("a", 0, "s-a-seed0-quick"),
        ("b", 3, "s-b-seed3-quick"),
        ("a", 1, "s-a-seed1-quick"),
        ("b", 4, "s-b-seed4-quick"),
        ("b", 5, "s-b-seed5-quick"),
    ], "seed by seed: a series stopped part way has every row with as many seeds as it can"
    assert dict(rows[2].settings) == {"lr": 0.1, "epochs": 1, "seed": 1}
    assert dict(rows[1].overrides) == {"width": 8} and rows[1].settings["seed"] == 3
    (plain,) = series_rows(CONFIG, "plain", quick=False)
    assert (plain.seed, plain.name, "seed" in plain.settings) == (None, "plain-c", False)


@pytest.mark.parametrize(
    ("seeds", "message"),
    [([], "seeds must be a list of distinct integers >= 0, got []"), ([1, 1], "got [1, 1]"), ([-1], "got [-1]")],
)
def test_bad_seeds_are_named(seeds, message):
    config = {**CONFIG, "series": {"s": {"preset": "p", "rows": {"a": {"seeds": seeds}}}}}
    with pytest.raises(ExperimentError, match="series s, row a: .*" + re.escape(message)):
        series_rows(config, "s", quick=False)


def test_a_row_cannot_set_seed_and_seeds():
    config = {**CONFIG, "series": {"s": {"preset": "p", "seeds": [0], "rows": {"a": {"seed": 2, "seeds": [1]}}}}}
    with pytest.raises(ExperimentError, match="sets both seed and seeds"):
        series_rows(config, "s", quick=False)


def test_summary_has_mean_sd_and_range_over_the_finished_seeds():
    seeds = per_seed({"a": [89.5, 90.1, 89.9], "b": [91.0]})
    table = summarise(seeds, {"a": 5, "b": 3}, {"a": 90.0}).set_index("row")
    a = table.loc["a"]
    assert a[SEEDS] == 3 and a[f"{SEEDS} named"] == 5
    assert a["numpy test acc %"] == pytest.approx(np.mean([89.5, 90.1, 89.9]), abs=5e-4)
    assert a[stat_column("numpy test acc %", "sd")] == pytest.approx(np.std([89.5, 90.1, 89.9], ddof=1), abs=5e-4)
    assert (a[stat_column("numpy test acc %", "min")], a[stat_column("numpy test acc %", "max")]) == (89.5, 90.1)
    assert a["threads per job"] == "1, 2" and a["jobs"] == 1
    assert a["report %"] == 90.0 and pd.isna(table.loc["b", "report %"])
    b = table.loc["b"]
    assert b[SEEDS] == 1 and pd.isna(b[stat_column("numpy test acc %", "sd")]) and b["numpy test acc %"] == 91.0
    assert not any(column.startswith("torch") for column in table), "a framework that never ran shows columns"
    assert "targets" in table, "NumPy-only rows name their targets"


def test_markdown_shows_mean_sd_range_and_the_seeds_left():
    table = summarise(per_seed({"a": [89.5, 90.1, 89.9], "b": [91.0]}), {"a": 5, "b": 1}, None)
    lines = markdown(table).splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[:3] == ["row", "overrides", "targets"] and "numpy test acc % sd" not in header
    a = [cell.strip() for cell in lines[2].strip("|").split("|")]
    assert a[header.index(SEEDS)] == "3 of 5"
    assert a[header.index("numpy test acc %")] == "89.83 ± 0.31 (89.50–90.10)"
    b = [cell.strip() for cell in lines[3].strip("|").split("|")]
    assert (b[header.index(SEEDS)], b[header.index("numpy test acc %")]) == ("1", "91.00")


def test_a_series_without_seeds_shows_each_number_as_it_is():
    table = summarise(per_seed({"c": [88.12]}), {"c": 1}, None)
    assert SEEDS not in table and not any(column.endswith(" sd") for column in table)
    assert table.loc[0, "numpy test acc %"] == 88.12
    assert "88.12" in markdown(table) and "±" not in markdown(table)


def test_written_tables_recompute_from_their_per_seed_rows(tmp_path):
    seeds = per_seed({"a": [89.51, 90.13, 89.87, 90.02], "b": [91.0, 90.5]})
    table = summarise(seeds, {"a": 4, "b": 2}, None)
    paths = write_tables(seeds, table, tmp_path, "s", "Series s")
    assert sorted(path.name for path in paths) == ["s-seeds.csv", "s.csv", "s.md"]
    recomputed = summarise(pd.read_csv(tmp_path / "s-seeds.csv"), {"a": 4, "b": 2}, None)
    pd.testing.assert_frame_equal(recomputed, pd.read_csv(tmp_path / "s.csv"), check_dtype=False)
    assert not list(tmp_path.glob(".*")), "a temporary file was left behind"


@pytest.mark.parametrize("path", sorted((REPO / "reports/experiments").glob("*-seeds.csv")), ids=lambda p: p.stem)
def test_committed_series_tables_recompute_from_their_per_seed_rows(path):
    summary = pd.read_csv(path.with_name(path.name.removesuffix("-seeds.csv") + ".csv"))
    seeds = summary.set_index("row")[f"{SEEDS} named"].to_dict()
    reference = summary.set_index("row")["report %"].to_dict() if "report %" in summary else None
    recomputed = summarise(pd.read_csv(path), seeds, reference)
    pd.testing.assert_frame_equal(recomputed, summary, check_dtype=False)
