"""Numbers in the report's words: accuracies, durations, spreads over seeds and differences in points."""

from __future__ import annotations

from lablib.report.series_inputs import Spread


def percent(fraction: float) -> str:
    """A fraction as a percentage with two decimals: ``94.14 %``."""
    return f"{100 * fraction:.2f} %"


def number(value: float) -> str:
    """A duration or rate: one decimal from 10 up, two below."""
    return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"


def spread(value: Spread | None) -> str:
    """A metric over seeds: ``mean ± sd % (min–max, n seeds)``, or the one figure of a single seed."""
    if value is None:
        return ""
    if value.seeds == 1 or value.sd is None:
        return percent(value.mean)
    return (
        f"{100 * value.mean:.2f} ± {100 * value.sd:.2f} % "
        f"({100 * value.low:.2f}–{100 * value.high:.2f}, {value.seeds} seeds)"
    )


def agreement(fraction: float) -> str:
    """A share of images: 'every one' when it is all of them."""
    return "every one" if fraction == 1 else percent(fraction)


def points(difference: float) -> str:
    """A difference of two accuracies in points, as the start of a comparison: '0.22 points above'."""
    if abs(difference) < 0.00005:
        return "level with"
    return f"{100 * abs(difference):.2f} points {'above' if difference > 0 else 'below'}"
