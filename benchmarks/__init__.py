"""Benchmarks that print figures; run them as ``python -m benchmarks.<name>``."""

import os

# A benchmark times NumPy and PyTorch in one process, one right after the other. After each
# product, OpenBLAS's idle threads (NumPy's) spin for about 2**28 cycles, a tenth of a second,
# before they sleep: long enough to hold the cores PyTorch's next step needs. 2**4 cycles lets
# them sleep at once. OpenBLAS reads this when NumPy first loads it, before any benchmark module.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
