"""The section beside the course's reports 000 and 001: their published figures against this run's, the
tuned preset's and this project's runs of report 001's table, each comparison with every noise we can
name (:mod:`lablib.report.comparison`), and report 001's gains from row to row beside ours."""

from __future__ import annotations

from lablib.params import FRAMEWORKS
from lablib.report.ablation import report000_ablation
from lablib.report.comparison import (
    PRIVATE_IMAGES,
    PUBLIC_IMAGES,
    REPORT000_HOLDOUT,
    Comparison,
    Z,
    compare,
    paired_gains,
    verdict,
)
from lablib.report.contents import Numbering
from lablib.report.inputs import Run
from lablib.report.labels import FRAMEWORK_LABELS
from lablib.report.markdown import Section, Subsection
from lablib.report.prose import percent, points, spread
from lablib.report.series import inherited_smoothing
from lablib.report.series_inputs import REPORT001_SERIES, Report000, Report001, Spread, Tuned
from lablib.report.settings import validation_images
from lablib.report.tables import report000_table, report001_table


def beside_the_reports(run: Run, numbering: Numbering) -> Section:
    """The section setting this run beside report 000 and, once its series has run, report 001."""
    return Section("Beside the course reports", [*_report000(run, numbering), *_report001(run, numbering)])


def course_tables(run: Run) -> list[str]:
    """The optional tables of this section that the run has: report 001's, and its noise once seeds ran."""
    if run.report001 is None:
        return []
    return ["report001", *(["report001_noise"] if _judged(run.report001) else [])]


def _report000(run: Run, numbering: Numbering) -> list[str | Subsection]:
    ref = run.report000
    gaps = " and ".join(
        f"{points(run.train[fw]['best_val_acc'] - ref.best_val_acc[fw])} report 000's with {FRAMEWORK_LABELS[fw]} "
        f"(best epoch {run.train[fw]['best_epoch']}, against its {ref.best_epoch[fw]})"
        for fw in run.frameworks
    )
    tuned = ref.tuned
    caption = (
        "report 000's published results (its 4.2) and hyper-parameters (its 5.2, preset `lab2025`) beside this run's"
    )
    if tuned is not None:
        caption += f" and preset `{tuned.preset}`'s (series `{tuned.series}`, row `{tuned.row}`)"
    epochs = run.params.train.epochs
    return [
        Subsection("Report 000"),
        numbering.table("report000", caption + ".", report000_table(run)),
        f"Report 000 trained `lab2025_cnn` and measured validation accuracy after every epoch on the course's "
        f"fixed hold-out of {REPORT000_HOLDOUT:,} of the 60,000 training images (its 2.2); this run validated on "
        f"{validation_images(run)} of its own drawing: other images. Its figure is the best epoch of a "
        f"{ref.params.train.epochs}-epoch log, ours of {epochs} epochs; both are maxima over epochs, which favour "
        f"the longer log. It reports no test accuracy. This run's best validation accuracy is {gaps}.",
        _speed_caveat(run),
        *([] if tuned is None else [_tuned(tuned, ref)]),
        *_report000_spread(ref),
        *([ablation] if (ablation := report000_ablation(run)) else []),
    ]


def _speed_caveat(run: Run) -> str:
    """Why Table 6's seconds per epoch compare machines, not implementations."""
    here = run.machine[run.frameworks[0]]
    text = (
        "Its seconds per epoch come from other machines: its NumPy epochs ran on a CPU it does not name"
        + (", its PyTorch epochs on a GPU" if "torch" in run.frameworks else "")
        + f"; this run's on one {here['cpu']} ({here['cores']} cores, {here.get('blas_threads', '?')} BLAS threads)"
    )
    tuned = run.report000.tuned
    if tuned is not None and tuned.series in run.series:
        jobs = int(run.series[tuned.series].loc[tuned.row, "jobs"])
        if jobs > 1:
            text += (
                f", and preset `{tuned.preset}`'s in {jobs} trainings at a time of {tuned.threads} thread"
                f"{'s' if tuned.threads > 1 else ''} each"
            )
    return text + ". The row compares machines, not the implementations."


def _report000_spread(ref: Report000) -> list[str]:
    """Report 000's best validation accuracy against each preset's spread over seeds, with every noise."""
    named = [("the shipped default", ref.default_spread)]
    if ref.tuned is not None:
        named.append((f"preset `{ref.tuned.preset}`", ref.tuned_spread))
    parts = []
    for name, seeded in named:
        for fw in FRAMEWORKS:
            ours = None if seeded is None else seeded.best_val_acc[fw]
            if ours is None or ours.seeds < 2 or not ours.sd:
                continue
            figure = ref.best_val_acc[fw]
            parts.append(
                f"against {name} over {ours.seeds} seeds ({FRAMEWORK_LABELS[fw]}, row `{seeded.row}` of series "
                f"`{seeded.series}`: {spread(ours)}), report 000's {FRAMEWORK_LABELS[fw]} {percent(figure)} is "
                f"{verdict(compare(figure, ours, REPORT000_HOLDOUT))}"
            )
    if not parts:
        return []
    return [
        "Each comparison with report 000's figure counts our mean's noise, the seed noise of its one run "
        "(estimated by our spread) and the sampling error of its hold-out of "
        f"{REPORT000_HOLDOUT:,} images: " + "; ".join(parts) + "."
    ]


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


def _report001(run: Run, numbering: Numbering) -> list[str | Subsection]:
    table = run.report001
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
    judged = _judged(table)
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
        f"the measure to compare with the report's.{quick}{_smoothed(run)}",
        *(
            [
                f"The leaderboard scores an upload on a public part of {PUBLIC_IMAGES:,} of the official test "
                f"images and grades it on the private {PRIVATE_IMAGES:,}; the report does not say which part its "
                f"figures come from, so {numbering['report001_noise']} judges each both ways, counting our mean's "
                "noise, the seed noise of the report's one run (estimated by our spread) and the sampling error "
                f"of the part.",
                numbering.table(
                    "report001_noise",
                    "report 001's figures against our official test accuracy over seeds, with every noise.",
                    noise_table(judged),
                ),
                _noise_summary(judged),
            ]
            if judged
            else []
        ),
        *_gains(table),
    ]


def _smoothed(run: Run) -> str:
    smoothing = inherited_smoothing(run, run.config["series"][REPORT001_SERIES]["preset"])
    if not smoothing:
        return ""
    return (
        f" Our rows trained with label smoothing {smoothing:g}, which report 001 did not use; the Experiments "
        "section shows what that changes."
    )


def _judged(table: Report001) -> list[tuple[str, float, Spread, Comparison, Comparison]]:
    """Each row's figure against our NumPy test accuracy over seeds, on the public and on the private part."""
    judged = []
    for row in table.rows:
        ours = row.test_acc["numpy"]
        if ours is None or ours.seeds < 2 or not ours.sd:
            continue
        figure = row.reference / 100
        public, private = (compare(figure, ours, images) for images in (PUBLIC_IMAGES, PRIVATE_IMAGES))
        judged.append((row.row, figure, ours, public, private))
    return judged


def _noise_summary(judged: list[tuple[str, float, Spread, Comparison, Comparison]]) -> str:
    differences = [c.difference for _, _, _, c, _ in judged]
    public = [name for name, _, _, c, _ in judged if c.distinguishable]
    private = [name for name, _, _, _, c in judged if c.distinguishable]

    def rows(names: list[str]) -> str:
        if not names:
            return "none of the figures is distinguishable from our runs"
        if len(names) == len(judged):
            return "every figure stands out of the noise"
        return f"only {', '.join(f'`{n}`' for n in names)} stand{'s' if len(names) == 1 else ''} out of the noise"

    return (
        f"Measured on the public part, {rows(public)}; on the private part, {rows(private)}. The figures lie "
        f"{100 * min(differences):.2f} to {100 * max(differences):.2f} points from our means, row after row: a "
        "nearly constant offset, which one shared set of test images, or one difference of setup, would give. "
        "It cancels in the gains from row to row, the fairer comparison:"
    )


def _gains(table: Report001) -> list[str]:
    """Report 001's gain at each step beside ours over seeds paired by seed, one sentence a step."""
    if table.per_seed is None:
        return []
    published = {row.row: row.reference / 100 for row in table.rows}
    gains = paired_gains(table.per_seed, "numpy test acc %", published, [row.row for row in table.rows])
    sentences = [
        f"`{g.before}` to `{g.row}`: report 001 {100 * g.published:+.2f} points, we "
        f"{100 * g.ours.mean:+.2f} ± {100 * (g.ours.sd or 0):.2f} "
        f"({100 * g.ours.low:+.2f} to {100 * g.ours.high:+.2f}, {g.ours.seeds} seeds): "
        + (
            "not distinguishable."
            if not g.distinguishable
            else f"{'more' if g.published > g.ours.mean else 'less'} than ours beyond {Z:g} times the noise "
            f"({100 * g.noise:.2f} points)."
        )
        for g in gains
    ]
    return [" ".join(sentences)] if sentences else []


def noise_table(judged: list[tuple[str, float, Spread, Comparison, Comparison]]) -> str:
    """Per row: the figure, our spread, the difference, and on each part of the leaderboard the noise and
    the verdict."""
    lines = [
        f"| Row | Report 001 | Ours (NumPy test) | Difference | Noise, public {PUBLIC_IMAGES:,} | Public | "
        f"Noise, private {PRIVATE_IMAGES:,} | Private |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for name, figure, ours, public, private in judged:
        cells = [f"{100 * public.difference:+.2f}"]
        for c in (public, private):
            cells += [f"{100 * c.noise:.2f}", "distinguishable" if c.distinguishable else "not distinguishable"]
        lines.append(f"| {name} | {percent(figure)} | {spread(ours)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
