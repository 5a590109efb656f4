"""The adapter's error, and the one guarded call of a student's code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lablib.errors import LabError


class AdapterError(LabError):
    """A student's layer cannot be adapted, or checked, as asked; the message says which attribute, method or
    argument is at fault and what to do."""


def call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, an exception in it turned into one line that names ``what`` failed."""
    try:
        return fn(*args, **kwargs)
    except Exception as error:  # the user's code: any failure becomes one clear line
        if isinstance(error, AdapterError) and error.__cause__ is not None:
            error = error.__cause__  # the student's own exception, as a call inside this one caught it
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise AdapterError(f"{what} failed: {type(error).__name__}: {first_line}") from error
