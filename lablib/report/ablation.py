"""Report 000's ablation (series ``report000``) read against report 000's claims. The report credits center
loss, augmentation and balanced sampling with its accuracy, so the series removes each from the default,
one at a time. A removal's cost is judged against the default's own spread over seeds (series ``seeds``) and
seed by seed, on the seeds both ran: a few seeds' difference is established only beyond the noise both ways."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import pandas as pd

from lablib.experiments.config import series_spec
from lablib.report.comparison import Z, difference_noise
from lablib.report.inputs import Run
from lablib.report.labels import FRAMEWORK_LABELS
from lablib.report.prose import spread
from lablib.report.series_inputs import SEED_TABLE, Seeded
from lablib.report.series_tables import preset_params, row_changes, row_spread, table_frameworks

REPORT000_SERIES = "report000"
# What report 000 says of each technique its ablation removes, by the parameter the row changes.
REPORT000_CLAIMS = {
    "center_loss.weight": ("center loss", "its 3.3 adds it to make each class's features compact"),
    "augment.enabled": ("augmentation", "its 2.4 credits it with 1 to 2 points of accuracy"),
    "sampling": ("balanced sampling", "its 2.5 uses it so that the model favours no class"),
}


def _report000(run: Run, series: str, table: pd.DataFrame) -> str:
    fw = table_frameworks(table)[0]
    seeded = run.report000.default_spread
    base = None if seeded is None else seeded.test_acc[fw]
    preset = series_spec(run.config, series)["preset"]
    if base is None or not base.sd:
        return (
            f"Series `{series}` measures each removal against the default over seeds (series `seeds`, row "
            "`default`), which has not run; `make series-seeds` runs it."
        )
    judged, established = [], []
    for row in table.index:
        overrides = dict(series_spec(run.config, series)["rows"][row] or {})
        key = next((key for key in overrides if key in REPORT000_CLAIMS), None)
        ours = row_spread(table, row, fw)
        if key is None or ours is None:
            continue
        technique, claim = REPORT000_CLAIMS[key]
        cost, noise = base.mean - ours.mean, difference_noise(base, ours)
        seeds, paired = _paired_costs(run, seeded, series, row, fw)
        unpaired_beyond = ours.sd is not None and abs(cost) >= Z * noise
        paired_beyond = paired is None or (paired.sd is not None and abs(paired.mean) >= Z * _mean_noise(paired))
        if ours.sd is None:
            verdict = "one seed, with no spread of its own to judge it by"
        elif unpaired_beyond and paired_beyond:
            verdict = f"beyond {Z:g} times its noise of {100 * noise:.2f} points: " + (
                "it helps" if cost > 0 else "it hurts"
            )
            established.append((technique, cost > 0))
        elif unpaired_beyond:
            verdict = (
                f"beyond {Z:g} times its noise of {100 * noise:.2f} points against the default's {base.seeds} seeds "
                f"but not seed by seed ({seeds}: {_costs(paired)}, {100 * paired.mean:+.2f} on average, noise "
                f"{100 * _mean_noise(paired):.2f}): borderline, not established"
            )
        else:
            verdict = f"within {Z:g} times its noise of {100 * noise:.2f} points: not established"
        if paired is not None and "seed by seed" not in verdict:
            verdict += f"; seed by seed ({seeds}): {_costs(paired)} points"
        judged.append(
            f"without {technique} (`{row}`, {row_changes(run, series, row)}) the test accuracy is {spread(ours)}, "
            f"{100 * cost:+.2f} points of cost, {verdict} ({claim})"
        )
    return (
        f"Series `{series}` removed, one at a time, the techniques report 000 credits, from preset `{preset}`, "
        f"on seeds the default already ran; the default itself is row `{seeded.row}` of series `{seeded.series}` "
        f"({spread(base)} test accuracy, {FRAMEWORK_LABELS[fw]}): {'; '.join(judged)}. "
        f"{_report000_claims(established, preset_params(run, preset).train.epochs)}"
    )


@dataclass(frozen=True)
class PairedCosts:
    """A removal's cost on each seed the default also ran, their mean and standard deviation (fractions)."""

    costs: list[float]
    mean: float
    sd: float | None


def _paired_costs(run: Run, seeded: Seeded, series: str, row: str, fw: str) -> tuple[str, PairedCosts | None]:
    """The cost seed by seed, on the seeds both the default and the row ran: the seeds named, and the costs
    (fractions); ``None`` where a per-seed table is missing or they share no seed."""
    column = f"{fw} test acc %"
    default, removed = run.series.get(f"{seeded.series}{SEED_TABLE}"), run.series.get(f"{series}{SEED_TABLE}")
    if default is None or removed is None:
        return "", None
    mine = default[default["row"] == seeded.row].set_index("seed")[column]
    theirs = removed[removed["row"] == row].set_index("seed")[column]
    seeds = [seed for seed in theirs.index if seed in mine.index]
    if not seeds:
        return "", None
    costs = [(mine[seed] - theirs[seed]) / 100 for seed in seeds]
    sd = statistics.stdev(costs) if len(costs) > 1 else None
    return ", ".join(str(seed) for seed in seeds), PairedCosts(costs, statistics.fmean(costs), sd)


def _mean_noise(paired: PairedCosts) -> float:
    """The standard error of the mean paired cost."""
    return (paired.sd or 0.0) / math.sqrt(len(paired.costs))


def _costs(paired: PairedCosts | None) -> str:
    return "" if paired is None else ", ".join(f"{100 * cost:+.2f}" for cost in paired.costs)


def _report000_claims(established: list[tuple[str, bool]], epochs: int) -> str:
    """What the removals mean for report 000's claims, at the default's length."""
    said = [f"removing {technique} {'costs' if helps else 'gains'} accuracy" for technique, helps in established]
    if not said:
        head = "None of report 000's reasons is established by these runs: each removal stays within the noise"
    else:
        head = "Of report 000's reasons, " + " and ".join(said) + " beyond the noise"
        if len(established) < len(REPORT000_CLAIMS):
            head += "; the others' credit is not established by these runs"
    return (
        f"{head}. These are {epochs}-epoch trainings of the default recipe (random erasing and label smoothing "
        "included); report 000 trained 200 epochs without either, where a technique may weigh otherwise."
    )


def report000_ablation(run: Run) -> str | None:
    """Report 000's ablation read against its claims once its table exists, and until then that it has not
    run and which command runs it; ``None`` when experiments.yaml has no such series."""
    if REPORT000_SERIES not in run.config.get("series", {}):
        return None
    if REPORT000_SERIES in run.series:
        return _report000(run, REPORT000_SERIES, run.series[REPORT000_SERIES])
    rows = ", ".join(f"`{row}`" for row in series_spec(run.config, REPORT000_SERIES)["rows"])
    return (
        f"Report 000's ablation, series `{REPORT000_SERIES}` (rows {rows}: each removes one technique report 000 "
        "credits), has not been run yet; `make series-report000` runs it. Until it has, this report reproduces "
        "report 000's numbers without testing its reasons: center loss, augmentation and balanced sampling."
    )
