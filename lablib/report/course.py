"""The section beside the course's reports 000 and 001: their published figures against this run's, the
tuned preset's and this project's runs of report 001's table, judged against the spread over seeds."""

from __future__ import annotations

from lablib.params import FRAMEWORKS
from lablib.report.contents import Numbering
from lablib.report.inputs import Report000, Report001, Run, Seeded, Spread, Tuned
from lablib.report.labels import FRAMEWORK_LABELS
from lablib.report.markdown import Section, Subsection
from lablib.report.prose import percent, points
from lablib.report.settings import validation_images
from lablib.report.tables import report000_table, report001_table


def beside_the_reports(run: Run, numbering: Numbering) -> Section:
    """The section setting this run beside report 000 and, once its series has run, report 001."""
    return Section("Beside the course reports", [*_report000(run, numbering), *_report001(run.report001, numbering)])


def _report000(run: Run, numbering: Numbering) -> list[str | Subsection]:
    ref = run.report000
    gaps = " and ".join(
        f"{points(run.train[fw]['best_val_acc'] - ref.best_val_acc[fw])} report 000's with {FRAMEWORK_LABELS[fw]} "
        f"(best epoch {run.train[fw]['best_epoch']}, against its {ref.best_epoch[fw]})"
        for fw in run.frameworks
    )
    hardware = "Its NumPy epochs ran on a CPU" + (
        ", its PyTorch epochs on a GPU." if "torch" in run.frameworks else "."
    )
    tuned = ref.tuned
    caption = (
        "report 000's published results (its 4.2) and hyper-parameters (its 5.2, preset `lab2025`) beside this run's"
    )
    if tuned is not None:
        caption += f" and preset `{tuned.preset}`'s (series `{tuned.series}`, row `{tuned.row}`)"
    return [
        Subsection("Report 000"),
        numbering.table("report000", caption + ".", report000_table(run)),
        f"Report 000 trained `lab2025_cnn` and measured validation accuracy after every epoch on a fixed hold-out "
        f"of 10,000 of the 60,000 training images (its 2.2), as this run did on {validation_images(run)}; it "
        f"reports no test accuracy. {hardware} This run's best validation accuracy is {gaps}.",
        *([] if tuned is None else [_tuned(tuned, ref)]),
        *_report000_spread(ref),
    ]


def against(figure: float, ours: Spread) -> str:
    """Where a report's figure lies against our seeds: inside, above or below their range, and how many
    standard deviations from their mean."""
    where = "above" if figure > ours.high else "below" if figure < ours.low else "inside"
    text = f"{where} the range of our {ours.seeds} seeds ({100 * ours.low:.2f}–{100 * ours.high:.2f} %)"
    if not ours.sd:
        return f"{text}, whose mean is {percent(ours.mean)}"
    z = (figure - ours.mean) / ours.sd
    return (
        f"{text}, {abs(z):.1f} standard deviations {'above' if z > 0 else 'below'} their mean of {percent(ours.mean)}"
    )


def _spread_sentence(name: str, seeded: Seeded, ref: Report000) -> str | None:
    """What report 000's best validation accuracy is against one preset's spread over seeds, per framework."""
    parts = []
    for fw in FRAMEWORKS:
        ours = seeded.best_val_acc[fw]
        if ours is None or ours.seeds < 2:
            continue
        figure = ref.best_val_acc[fw]
        verdict = (
            "so the difference is within the spread of seeds, not a win or a loss one can tell from them"
            if ours.low <= figure <= ours.high
            else "every seed beats it"
            if figure < ours.low
            else "no seed reaches it"
        )
        parts.append(
            f"with {FRAMEWORK_LABELS[fw]}, report 000's {percent(figure)} lies {against(figure, ours)}: {verdict}"
        )
    if not parts:
        return None
    return (
        f"Against the best validation accuracy of {name} over seeds (row `{seeded.row}` of series "
        f"`{seeded.series}`, `reports/experiments/{seeded.series}.md`): " + "; ".join(parts) + "."
    )


def _report000_spread(ref: Report000) -> list[str]:
    named = [("the shipped default", ref.default_spread)]
    if ref.tuned is not None:
        named.append((f"preset `{ref.tuned.preset}`", ref.tuned_spread))
    sentences = [_spread_sentence(name, seeded, ref) for name, seeded in named if seeded is not None]
    return [" ".join(sentence for sentence in sentences if sentence)] if any(sentences) else []


def _tuned(tuned: Tuned, ref: Report000) -> str:
    ran = [fw for fw in FRAMEWORKS if tuned.test_acc[fw] is not None]
    gaps = " and ".join(
        f"{points(tuned.best_val_acc[fw] - ref.best_val_acc[fw])} report 000's with {FRAMEWORK_LABELS[fw]}"
        for fw in ran
    )
    tests = " and ".join(f"{percent(tuned.test_acc[fw])} with {FRAMEWORK_LABELS[fw]}" for fw in ran)
    return (
        f"Preset `{tuned.preset}` trains the same network, unchanged, for {tuned.params.train.epochs} epochs "
        f"(`python -m lablib.experiments preset {tuned.preset}`; its numbers are those of row `{tuned.row}` of "
        f"series `{tuned.series}`, `reports/experiments/{tuned.series}.md`): its best validation accuracy is "
        f"{gaps}, and it reaches {tests} on the official test images."
    )


def _report001(table: Report001 | None, numbering: Numbering) -> list[str | Subsection]:
    if table is None:
        return [
            Subsection("Report 001"),
            "Report 001's Table 1 is set beside this project's runs of it, row by row, once the series "
            "`report001` has run (`make series-report001`).",
        ]
    quick = (
        " These are quick runs (a subset and two epochs): they show the series working, not the accuracy "
        "the report's settings reach."
        if table.quick
        else ""
    )
    return [
        Subsection("Report 001"),
        numbering.table(
            "report001",
            f"report 001's Table 1 beside this project's run of each row (series `report001`, "
            f"`reports/experiments/{table.table.name}`).",
            report001_table(table),
        ),
        "Report 001's figures are the top-1 accuracy its course leaderboard gave each system. Beside each, "
        "this project's run of that row gives two measures: the best validation accuracy, on the fixed "
        "hold-out or, for the rows validated as report 001 did, on the rotating fold (each fold is trained "
        "on in the other epochs, so that figure is optimistic), and the accuracy on the official test images, "
        f"the measure to compare with the report's.{quick}",
        *_report001_spread(table),
    ]


def _report001_spread(table: Report001) -> list[str]:
    """Each of report 001's figures against our seeds' official test accuracy, and whether its last row is
    still above our mean."""
    sentences = []
    for fw in FRAMEWORKS:
        judged = [(row, row.test_acc[fw]) for row in table.rows]
        judged = [(row, ours) for row, ours in judged if ours is not None and ours.seeds > 1]
        if not judged:
            continue
        for row, ours in judged:
            sentences.append(
                f"`{row.name}`: the report's {row.reference:.2f} % lies {against(row.reference / 100, ours)}."
            )
        last, ours = judged[-1]
        if last is table.rows[-1]:
            gap = points(ours.mean - last.reference / 100)
            still = "still " if ours.mean < last.reference / 100 else ""
            sentences.append(
                f"On average over its {ours.seeds} seeds, {FRAMEWORK_LABELS[fw]}'s run of the last row is {still}"
                f"{gap} the report's {last.reference:.2f} %."
            )
    if not sentences:
        return []
    return ["Against the spread of this project's official test accuracy over seeds: " + " ".join(sentences)]
