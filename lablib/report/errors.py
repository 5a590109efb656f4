"""The report's one error: an input that is missing or unreadable."""

from lablib.errors import LabError


class ReportError(LabError):
    """An input of the report that is missing or unreadable."""
