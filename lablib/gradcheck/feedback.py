"""What a teacher hands back from a class run: one Markdown file per student, and the class as a grid.

A student's file says, check by check, what passed, what failed and why (the row's reason), and the
command that reproduces the check from the repository root. The grid is students by checks, each cell
the check's verdict.
"""

from __future__ import annotations

from pathlib import Path

from tabulate import tabulate

from lablib.atomic import staged_file

Row = dict[str, str]  # a class table's row (lablib.gradcheck.classroom), with the check's "command"


def student_feedback(student: str, rows: list[Row]) -> str:
    """One student's Markdown: each check's verdict, where it failed and why, and how to rerun it."""
    passed = sum(row["verdict"] == "ok" for row in rows)
    lines = [f"# Gradient checks: {student}", "", f"{passed} of {len(rows)} checks passed.", ""]
    for row in rows:
        lines += [f"## {row['check']}: {row['verdict']}", ""]
        where = ", ".join(filter(None, [row["layer"], row["tensor"]]))
        if where or row["worst_error"]:
            error = f", largest relative error {row['worst_error']}" if row["worst_error"] else ""
            lines += [f"Worst in {where or 'the network'}{error}.", ""]
        if row["reason"]:
            lines += [f"Why: {row['reason']}", ""]
        lines += ["Reproduce it from the repository root:", "", "```bash", row["command"], "```", ""]
    return "\n".join(lines)


def grid(rows: list[Row]) -> str:
    """The class as Markdown: one line a student, one column a check, each cell its verdict."""
    checks = list(dict.fromkeys(row["check"] for row in rows))
    verdicts: dict[str, dict[str, str]] = {}
    for row in rows:
        verdicts.setdefault(row["student"], {})[row["check"]] = row["verdict"]
    table = [[student, *(cells.get(check, "") for check in checks)] for student, cells in verdicts.items()]
    return tabulate(table, headers=["student", *checks], tablefmt="github", disable_numparse=True)


def write_feedback(rows: list[Row], out: Path) -> None:
    """``out/feedback/<student>.md`` for each student, and ``out/grid.md``."""
    students: dict[str, list[Row]] = {}
    for row in rows:
        students.setdefault(row["student"], []).append(row)
    for student, own in students.items():
        with staged_file(out / "feedback" / f"{student}.md") as tmp:
            tmp.write_text(student_feedback(student, own))
    with staged_file(out / "grid.md") as tmp:
        tmp.write_text(grid(rows) + "\n")
