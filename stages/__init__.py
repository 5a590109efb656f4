"""The DVC stages: thin click commands over lablib, one module per stage of dvc.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import yaml

from lablib.errors import LabError

# The way back for a stage with outputs that DVC does not cache (metrics, plots): its run cache.
RESTORE = (
    "once the cause is undone (a parameter set back, say), DVC's run cache restores them without "
    "running the stage again: dvc repro {stage}"
)


@contextmanager
def user_errors(stage: str, restore: str) -> Iterator[None]:
    """Turn a :class:`LabError` into click's one-line ``Error: ...`` and exit status 1.

    DVC deletes a stage's outputs before running it, so a stage that fails under ``dvc repro`` leaves
    them gone; the message then ends with ``restore``, the command that brings them back.
    """
    try:
        yield
    except LabError as error:
        message = str(error)
        if removed := removed_outputs(stage):
            message += f"\nDVC removed {', '.join(removed)} before running {stage}; {restore}"
        raise click.ClickException(message) from None


def removed_outputs(stage: str, lock: Path = Path("dvc.lock")) -> list[str]:
    """The outputs ``dvc.lock`` records for ``stage`` that no longer exist."""
    try:
        outs = yaml.safe_load(lock.read_text())["stages"][stage]["outs"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return []
    return [out["path"] for out in outs if not Path(out["path"]).exists()]
