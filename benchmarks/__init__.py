"""Benchmarks that print figures; run them as ``python -m benchmarks.<name>``."""

import lablib  # noqa: F401 - before NumPy: it lets OpenBLAS's idle threads sleep at once (lablib/__init__.py)
