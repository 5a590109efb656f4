"""The record a stage writes in place of its outputs when its framework did not run, and why.

A model whose layers have no PyTorch twin trains and evaluates in NumPy only. So that the whole
pipeline still runs, ``train_torch``, ``evaluate_torch`` and ``compare`` then write each declared
output holding this record and no number: ``{"ran": false, "reason": ...}`` in a JSON file, the same
two keys as arrays in an ``.npz`` file. The report reads the records and shows what exists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lablib.atomic import staged_file

RAN, REASON = "ran", "reason"


def not_run(reason: str) -> dict[str, Any]:
    """The record of a stage that did not run, as JSON holds it."""
    return {RAN: False, REASON: reason}


def write_not_run(path: Path, reason: str) -> None:
    """Write the record to the JSON file ``path``, all or nothing."""
    with staged_file(path) as tmp:
        tmp.write_text(json.dumps(not_run(reason), indent=2) + "\n")


def not_run_arrays(reason: str) -> dict[str, np.ndarray]:
    """The record as the arrays of an ``.npz`` file (a boolean and a string: nothing to unpickle)."""
    return {RAN: np.array(False), REASON: np.array(reason)}


def reason_not_run(record: Mapping[str, Any]) -> str | None:
    """Why the stage that wrote ``record`` (a JSON mapping or an ``.npz``'s arrays) did not run; ``None``
    when it ran (its outputs hold no ``ran`` flag)."""
    if RAN not in record or bool(np.asarray(record[RAN])):
        return None
    return str(np.asarray(record[REASON])[()])
