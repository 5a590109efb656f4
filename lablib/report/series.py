"""Every experiment series read, not only shown: the presets they start from, described once, then a
paragraph a series (what its rows change, from which preset, what the result says with its spread, and
what it does not establish), from its table in reports/experiments and experiments.yaml."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from lablib.experiments.config import preset_run, series_rows, series_spec
from lablib.report.ablation import REPORT000_SERIES
from lablib.report.comparison import Z, difference_noise
from lablib.report.inputs import Run
from lablib.report.labels import FRAMEWORK_LABELS, OPTIMIZER_NAMES, VALIDATION_MEASURES
from lablib.report.prose import percent, spread
from lablib.report.series_inputs import SEED_TABLE, Spread
from lablib.report.series_tables import preset_params, row_changes, row_spread, table_frameworks
from lablib.report.settings import schedule_rule

TECHNIQUES = ("label_smoothing", "augment.erase")  # set by params.yaml unless a preset pins them


def describe_presets(run: Run) -> str:
    """The presets the series start from, once: each as the settings it trains with."""
    presets = run.config["presets"]
    named = "; ".join(f"`{name}`: {_preset_words(run, name)}" for name in presets)
    return (
        "Each series changes a few parameters of a preset of `experiments.yaml`, itself a set of overrides of "
        f"`params.yaml`: {named}."
    )


def inherited_smoothing(run: Run, preset: str) -> float:
    """The label smoothing ``preset`` trains with when it takes it from ``params.yaml`` instead of setting
    it; 0 when it sets it or there is none."""
    if "label_smoothing" in preset_run(run.config, preset, quick=False)[0]:
        return 0.0
    return preset_params(run, preset).train.label_smoothing


def _preset_words(run: Run, preset: str) -> str:
    """A preset's training in one phrase, naming what it leaves to ``params.yaml``'s value."""
    overrides, _ = preset_run(run.config, preset, quick=False)
    if not overrides:
        return "`params.yaml` as it is, the run this report describes"
    params = preset_params(run, preset)
    t, torch = params.train, params.train_for("torch")
    width = f" with {t.width} filters" if t.model == "lab2023_cnn" else ""
    batch = f"{t.batch_size}" + (f" ({torch.batch_size} in PyTorch)" if torch.batch_size != t.batch_size else "")
    words = [
        f"`{t.model}`{width}, {t.epochs} epochs of {OPTIMIZER_NAMES[t.optimizer]} in batches of {batch}",
        schedule_rule(t) + (f" ({torch.lr:g} in PyTorch)" if torch.lr != t.lr else ""),
        f"{VALIDATION_MEASURES[t.validation]} validation",
        f"{t.sampling} sampling",
        "augmentation" + (f" with random erasing {t.augment.erase:g}" if t.augment.erase else "")
        if t.augment.enabled
        else "no augmentation",
        f"center loss {t.center_loss_weight:g}" if t.center_loss_weight else "no center loss",
        f"label smoothing {t.label_smoothing:g}" if t.label_smoothing else "no label smoothing",
    ]
    effective = {"label_smoothing": t.label_smoothing, "augment.erase": t.augment.enabled and t.augment.erase}
    inherited = [f"`{key}`" for key in TECHNIQUES if key not in overrides and effective[key]]
    text = ", ".join(words)
    if inherited:
        them = "it" if len(inherited) == 1 else "them"
        text += f" ({' and '.join(inherited)} from `params.yaml`: the preset does not set {them})"
    return text


def _default_test(run: Run) -> Spread | None:
    """The default's test accuracy over seeds (NumPy), the yardstick of a single run's noise."""
    seeded = run.report000.default_spread
    return None if seeded is None else seeded.test_acc["numpy"]


def _seed_noise(run: Run) -> str:
    ours = _default_test(run)
    if ours is None or ours.sd is None:
        return ""
    return (
        f" The seed alone moves the default's test accuracy by up to {100 * (ours.high - ours.low):.2f} points "
        f"(series `seeds`: {spread(ours)})"
    )


def _recipes(run: Run, series: str, table: pd.DataFrame) -> str:
    fw = table_frameworks(table)[0]
    rows = list(table.index)
    test = {row: row_spread(table, row, fw).mean for row in rows}
    val = {row: row_spread(table, row, fw, "val").mean for row in rows}
    results = "; ".join(
        f"`{row}` ({row_changes(run, series, row)}): {percent(val[row])} validation, {percent(test[row])} test"
        for row in rows
    )
    chosen = max(rows, key=val.get)
    ours = _default_test(run)
    width = max(test.values()) - min(test.values())
    judged = (
        f"{_seed_noise(run)}, more than the {100 * width:.2f} points between these rows: no row is established "
        "as the best, and none as worse."
        if ours is not None and ours.high - ours.low > width
        else f" The rows lie {100 * width:.2f} points apart on the test images."
    )
    return (
        f"Series `{series}` (preset `{series_spec(run.config, series)['preset']}`, {FRAMEWORK_LABELS[fw]} only, "
        f"one seed a row) tried the default's network with and without random erasing and label smoothing: "
        f"{results}.{judged} The default took `{chosen}`, the row with the best validation accuracy; these "
        "single runs do not show that erasing or smoothing helps at this length."
    )


def _recipes_long(run: Run, series: str, table: pd.DataFrame) -> str:
    row = table.index[0]
    measured = " and ".join(
        f"{FRAMEWORK_LABELS[fw]} {percent(row_spread(table, row, fw, 'val').mean)} validation, "
        f"{percent(row_spread(table, row, fw).mean)} test"
        for fw in table_frameworks(table)
    )
    text = (
        f"Series `{series}` trained the default's recipe longer ({row_changes(run, series, row)}, preset "
        f"`{series_spec(run.config, series)['preset']}`, one seed): {measured}."
    )
    seeded = run.report000
    if seeded.default_spread is not None and seeded.tuned_spread is not None:
        short, long = seeded.default_spread.test_acc["numpy"], seeded.tuned_spread.test_acc["numpy"]
        if short is not None and long is not None and short.sd and long.sd:
            gain, noise = long.mean - short.mean, difference_noise(long, short)
            beyond = "beyond" if abs(gain) >= Z * noise else "within"
            text += (
                f" Over seeds (series `seeds`, NumPy) the longer training reaches {spread(long)} against the "
                f"default's {spread(short)}: {100 * gain:+.2f} points, {beyond} {Z:g} times its noise of "
                f"{100 * noise:.2f} points."
            )
    return text + " It does not establish where the gain of longer training stops, nor what other recipes gain."


def _seeds(run: Run, series: str, table: pd.DataFrame) -> str:
    fw = table_frameworks(table)[0]
    rows = "; ".join(
        f"`{row}` over {row_spread(table, row, fw).seeds} seeds: "
        f"{spread(row_spread(table, row, fw, 'val'))} validation, {spread(row_spread(table, row, fw))} test"
        for row in table.index
    )
    return (
        f"Series `{series}` reran presets with several seeds ({FRAMEWORK_LABELS[fw]} only); the seed draws the "
        f"hold-out, the initial weights, the batches and the augmentation: {rows}. This spread is the yardstick "
        "of every single-seed difference in this report: a gap smaller than it is not a finding. It does not "
        "measure the spread of other presets, nor of runs on other machines."
    )


def _report001(run: Run, series: str, table: pd.DataFrame) -> str:
    preset = series_spec(run.config, series)["preset"]
    seeds = int(table["seeds"].max()) if "seeds" in table else 1
    text = (
        f"Series `{series}` rebuilt report 001's Table 1 on preset `{preset}`, each row adding one technique to "
        f"the one before, over {seeds} seed{'s' if seeds > 1 else ''} (the section beside the course reports sets "
        "it beside the report's figures and gains)."
    )
    if smoothing := inherited_smoothing(run, preset):
        text += (
            f" Its rows trained with label smoothing {smoothing:g}: preset `{preset}` does not set it, so they "
            "take `params.yaml`'s; report 001 used plain cross-entropy."
        )
    return text + (
        " It does not establish report 001's own learning rate or initialisation, which the report leaves "
        "unstated: series `report001_lr` and `report001_init` chose ours."
    )


def _report001_lr(run: Run, series: str, table: pd.DataFrame) -> str:
    fw = table_frameworks(table)[0]
    rows = list(table.index)
    val = {row: row_spread(table, row, fw, "val").mean for row in rows}
    test = {row: row_spread(table, row, fw).mean for row in rows}
    rates = ", ".join(f"{percent(val[row])} / {percent(test[row])} ({row_changes(run, series, row)})" for row in rows)
    widest = max(rows, key=lambda row: val[row] - test[row])
    best = max(rows, key=test.get)
    folds = preset_params(run, series_spec(run.config, series)["preset"]).data.kfold
    text = (
        f"Series `{series}` tried {len(rows)} learning rates on preset `{series_spec(run.config, series)['preset']}`, "
        f"one seed each; validation on the rotating fold / test accuracy: {rates}. The rotating fold's accuracy "
        f"overstates the test accuracy by {100 * (val[widest] - test[widest]):.2f} points at "
        f"{row_changes(run, series, widest)} ({percent(val[widest])} against {percent(test[widest])}). Each epoch "
        f"validates on one of {folds} folds and trains on the others, so the fold it validates on was trained on "
        "in the epochs before: the figure measures how well the model remembers images it has seen. This "
        "contradicts report 001's claim that its K-fold counters over-fitting (its abstract and III.B): "
        "rotating validation hides over-fitting instead of measuring it."
    )
    ours = _default_last_row(run)
    if ours is not None and ours.sd:
        noise = ours.sd * math.sqrt(2)  # two single runs
        close = [row for row in rows if row != best and test[best] - test[row] < Z * noise]
        if close:
            text += (
                f" The best test accuracy, {percent(test[best])} at {row_changes(run, series, best)}, is not "
                f"distinguishable from {' or '.join(row_changes(run, series, row) for row in close)}: the difference "
                f"of two single runs has a standard deviation of {100 * noise:.2f} points from the seed alone (our "
                "spread of report 001's last row over seeds)."
            )
    return text


def _default_last_row(run: Run) -> Spread | None:
    """The seed spread of report 001's last row, the system the learning-rate and init series vary."""
    if run.report001 is None:
        return None
    return run.report001.rows[-1].test_acc["numpy"]


def _report001_init(run: Run, series: str, table: pd.DataFrame) -> str:
    fw = table_frameworks(table)[0]
    rows = list(table.index)
    test = {row: row_spread(table, row, fw).mean for row in rows}
    val = {row: row_spread(table, row, fw, "val").mean for row in rows}
    results = "; ".join(
        f"`{row}` ({row_changes(run, series, row)}): {percent(val[row])} validation, {percent(test[row])} test"
        for row in rows
    )
    images = round(abs(test[rows[0]] - test[rows[-1]]) * run.test_images)
    return (
        f"Series `{series}` compared two initialisations on preset `{series_spec(run.config, series)['preset']}`, "
        f"one seed each: {results}. The test accuracies are {images} test image{'s' if images != 1 else ''} "
        "apart, far inside the seed's spread: the initialisation is not what separates our runs from report "
        "001's figures."
    )


def _same_settings(run: Run) -> str | None:
    """Rows of two series that set the same parameters but report other numbers, and why where it is known:
    a technique ``params.yaml`` supplies and the preset does not pin, changed between the two series' runs."""
    if run.report001 is None or run.report001.per_seed is None:
        return None
    settings = {
        (series, row.row): _without_seed(row.settings)
        for series in ("report001_lr", "report001_init", "report001")
        if series in run.series and series in run.config["series"]
        for row in series_rows(run.config, series, quick=False)
        if row.seed in (None, run.params.train.seed)
    }
    per_seed = run.report001.per_seed.set_index(["row", "seed"])
    seed = run.params.train.seed  # the seed of a row that names none
    sentences, twins = [], []
    for (series, row), values in settings.items():
        twin = next((r for (s, r), v in settings.items() if s == "report001" and v == values), None)
        if series == "report001" or twin is None or (twin, seed) not in per_seed.index:
            continue
        mine, theirs = run.series[series].loc[row], per_seed.loc[(twin, seed)]
        pairs = [(mine[f"numpy {m} acc %"], theirs[f"numpy {m} acc %"]) for m in ("val", "test")]
        if all(a == b for a, b in pairs):
            continue
        twins.append((twin, theirs))
        sentences.append(
            f"row `{row}` of series `{series}` ({_commits(run, series)}) gives {pairs[0][0]:.2f} / {pairs[1][0]:.2f} %"
        )
    if not sentences:
        return None
    twin, theirs = twins[0]
    text = (
        f"Rows that set exactly what row `{twin}` of series `report001` sets with seed {seed} report other "
        f"numbers: " + "; ".join(sentences) + f", against {theirs['numpy val acc %']:.2f} / "
        f"{theirs['numpy test acc %']:.2f} % (validation / test) in series `report001` ({_commits(run, 'report001')})."
    )
    preset = series_spec(run.config, "report001")["preset"]
    if smoothing := inherited_smoothing(run, preset):
        text += (
            f" The settings are the same only on paper: preset `{preset}` leaves label smoothing to `params.yaml`, "
            f"which set none when the earlier series ran and {smoothing:g} since the default took it from series "
            "`recipes`, before series `report001` ran. Series `report001` trained with label smoothing, the "
            f"earlier rows without; pinning `label_smoothing: 0.0` in preset `{preset}`, as report 001 trained, "
            "and running series `report001` again would make them one system."
        )
    return text


def _without_seed(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in settings.items() if key != "seed"}


def _commits(run: Run, series: str) -> str:
    """The commits a series ran on, as its table's title names them."""
    found = re.search(r"run on (commits? [^\n(]+)", run.experiments.get(series, ""))
    return found.group(1).strip().rstrip(",") if found else "its table names no commit"


INTERPRETERS: dict[str, Callable[[Run, str, pd.DataFrame], str]] = {
    "recipes": _recipes,
    "recipes_long": _recipes_long,
    "seeds": _seeds,
    "report001": _report001,
    "report001_lr": _report001_lr,
    "report001_init": _report001_init,
    REPORT000_SERIES: lambda run, series, table: (
        "The section beside the course reports reads this table against report 000's claims."
    ),
}


def interpret(run: Run) -> dict[str, list[str]]:
    """The paragraphs that follow each series' table, by series name: what it says, and for the series
    whose rows repeat another's, why their numbers differ."""
    paragraphs: dict[str, list[str]] = {}
    for name, table in run.series.items():
        if name.endswith(SEED_TABLE) or name.endswith("-quick") or name not in INTERPRETERS:
            continue
        if name not in run.config.get("series", {}):
            continue
        paragraphs[name] = [INTERPRETERS[name](run, name, table)]
    if (mismatch := _same_settings(run)) is not None:
        shown = [name for name in run.experiments if name in ("report001_init", "report001_lr")]
        paragraphs.setdefault(shown[-1] if shown else "report001", []).append(mismatch)
    return paragraphs
