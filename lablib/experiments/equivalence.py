"""Code that moved without changing a result: which code digests run the same program, and why we know.

A series' per-seed tables name the code each experiment ran by a digest of its stages' files
(:func:`lablib.experiments.store.code_digest`). Moving code between files, or splitting a module,
changes that digest although every training computes the same bits. ``equivalent-code.yaml`` records
such moves, one entry per target set of the series::

    - targets: [evaluate_numpy]
      before: {commit: 80a771d, code: 000fa6f36457}
      after: {commit: 1a2b3c4, code: 9f8e7d6c5b4a}
      evidence: a fresh clone's make repro at 1a2b3c4; dvc metrics diff 80a771d moved only timings

The series runner treats two digests as the same code when they are equal or linked by entries of
the record (in either direction, through any chain). Nothing else is: an entry is written by
``python -m lablib.experiments equivalent BEFORE --evidence TEXT`` only, after the evidence exists,
and it names both commits so that a reader can check it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from lablib.experiments.config import ExperimentError

RECORD = Path("equivalent-code.yaml")


def read_record(path: Path = RECORD) -> list[dict[str, Any]]:
    """The entries of the record (none when there is no file); a malformed one is an error naming it."""
    if not path.is_file():
        return []
    entries = yaml.safe_load(path.read_text()) or []
    if not isinstance(entries, list) or not all(_well_formed(entry) for entry in entries):
        raise ExperimentError(
            f"{path}: each entry needs targets, before and after (each a commit and a code digest) and evidence; "
            f"restore it with `git checkout -- {path}`"
        )
    return entries


def _well_formed(entry: Any) -> bool:
    sides = [entry.get(side) for side in ("before", "after")] if isinstance(entry, dict) else []
    return (
        len(sides) == 2
        and all(isinstance(side, dict) and {"commit", "code"} <= set(side) for side in sides)
        and isinstance(entry.get("targets"), list)
        and bool(str(entry.get("evidence") or "").strip())
    )


def same_code(recorded: str, current: str, path: Path = RECORD) -> bool:
    """Whether a digest recorded for an experiment and the current one name the same program."""
    return recorded == current or current in _linked(path.resolve(), _stamp(path)).get(recorded, set())


def _stamp(path: Path) -> float | None:
    return path.stat().st_mtime_ns if path.is_file() else None


@cache  # keyed by the file's modification time: a record written during a run is read again
def _linked(path: Path, _stamp: float | None) -> dict[str, set[str]]:
    """Every digest's class of equivalent digests, the record's entries joined into chains."""
    groups: dict[str, set[str]] = {}
    for entry in read_record(path):
        before, after = str(entry["before"]["code"]), str(entry["after"]["code"])
        joined = groups.get(before, {before}) | groups.get(after, {after})
        for digest in joined:
            groups[digest] = joined
    return groups


def new_entries(
    target_sets: Iterable[Sequence[str]], before: str, after: str, digest: Any, evidence: str
) -> list[dict[str, Any]]:
    """One entry per target set whose digest changed between the commits ``before`` and ``after``;
    ``digest(targets, commit)`` computes a digest (:func:`lablib.experiments.store.code_digest`)."""
    entries = []
    for targets in dict.fromkeys(tuple(t) for t in target_sets):
        old, new = digest(targets, before), digest(targets, after)
        if old != new:
            entries.append(
                {
                    "targets": list(targets),
                    "before": {"commit": before, "code": old},
                    "after": {"commit": after, "code": new},
                    "evidence": evidence,
                }
            )
    return entries


def append_entries(entries: Sequence[dict[str, Any]], path: Path = RECORD) -> None:
    """Add ``entries`` to the record, keeping what it holds."""
    kept = read_record(path)
    text = yaml.safe_dump([*kept, *entries], sort_keys=False, width=120)
    header = "# Code digests that run the same program; see lablib/experiments/equivalence.py.\n"
    path.write_text(header + text)
