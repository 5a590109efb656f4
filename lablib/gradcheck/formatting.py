"""A check as the command prints it: its notes, a table, the failing tensors with where they differ, the verdict."""

from __future__ import annotations

import numpy as np
from tabulate import tabulate

from lablib.gradcheck.result import Check, Comparison


def format_layer(result: Check) -> str:
    """The table (the worst of every input per tensor), where each failing tensor differs most, the verdict."""
    groups: dict[tuple[str, str], list[Comparison]] = {}
    for c in result.comparisons:
        groups.setdefault((c.tensor, c.against), []).append(c)
    rows, failures, differences = [], [], []
    for (tensor, against), comparisons in groups.items():
        passed = all(c.passed for c in comparisons)
        worst = max(comparisons, key=lambda c: (not c.passed, not c.comparable, bool(c.note), c.max_rel))
        errors = ("-", "-")
        if all(c.comparable for c in comparisons):
            errors = (f"{max(c.max_abs for c in comparisons):.2e}", f"{worst.max_rel:.2e}")
        rows.append((tensor, against, *errors, "ok" if passed and not worst.note else worst.verdict))
        if not passed:
            why = f": {worst.diagnosis}" if worst.diagnosis else ""
            failures.append(f"{tensor} differs from {against} for input {worst.input_shape}, {worst.where}{why}")
        elif worst.note and worst.note not in differences:
            differences.append(worst.note)
    headers = ["tensor", "against", "max abs error", "max rel error", "verdict"]
    verdict = (
        f"FAIL: {len(failures)} of {len(rows)} checks failed" if failures else f"ok: all {len(rows)} checks passed"
    )
    buffers = sum(1 for row in rows if row[-1] == "differs")
    if buffers and not failures:
        verdict = f"ok: all {len(rows) - buffers} gradient and output checks passed; {buffers} buffer(s) differ"
    table = tabulate(rows, headers=headers, disable_numparse=True)
    return "\n".join(
        [*result.notes, *([""] if result.notes else []), table, *result.skipped, *differences, *failures, verdict]
    )


def _how_wrong(c: Comparison) -> str:
    if c.against:
        return f" against the {c.against}"
    return " through the network" if c.through == "network" else ""


def format_network(result: Check) -> str:
    """The table, the failing tensors named with where they differ, the verdict."""
    rows = [
        (
            c.layer,
            c.tensor,
            c.against or ("d sum(out*g)" if c.through == "layer" else "d loss"),
            c.entries,
            "-" if np.isnan(c.max_abs) else f"{c.max_abs:.2e}",
            "-" if np.isnan(c.max_rel) else f"{c.max_rel:.2e}",
            c.verdict,
        )
        for c in result.comparisons
    ]
    headers = ["layer", "tensor", "gradient of", "entries", "max abs error", "max rel error", "verdict"]
    table = tabulate(rows, headers=headers, disable_numparse=True)
    failing = [c for c in result.comparisons if not c.passed]
    lines = [*result.notes, "", table]
    lines += [
        f"{c.layer} {c.tensor}: wrong{_how_wrong(c)}, {c.where}{f': {c.diagnosis}' if c.diagnosis else ''}"
        for c in failing
    ]
    zero = [c for c in result.comparisons if c.verdict == "zero"]
    lines += [
        f"{c.layer} {c.tensor}: exactly zero, as the differences find (a bias before a normalisation)" for c in zero
    ]
    worst = result.worst()
    if failing and worst is not None:
        lines.append(f"FAIL: {len(failing)} of {len(rows)} checks failed; look first at {worst.layer} {worst.tensor}")
    else:
        lines.append(f"ok: all {len(rows)} checks passed")
    return "\n".join(lines)
