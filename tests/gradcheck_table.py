"""Reading the table ``python -m lablib.gradcheck`` prints for one layer, for the tests that check it."""

from __future__ import annotations


def verdicts(output: str) -> dict[tuple[str, str], str]:
    """The layer table as {(tensor, first word of against): verdict}."""
    rows = {}
    for line in output.splitlines():
        cells = line.split()
        if cells and cells[-1] in ("ok", "FAIL", "differs") and len(cells) >= 6:
            rows[cells[0], cells[1]] = cells[-1]
    return rows
