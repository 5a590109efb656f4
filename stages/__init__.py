"""The DVC stages: thin click commands over lablib, one module per stage of dvc.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from lablib.errors import LabError


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a :class:`LabError` into click's one-line ``Error: ...`` and exit status 1."""
    try:
        yield
    except LabError as error:
        raise click.ClickException(str(error)) from None
