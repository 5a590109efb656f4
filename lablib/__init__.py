"""lablib: a from-scratch NumPy CNN, its PyTorch twin, and the Fashion-MNIST pipeline around them."""

import os

# After each matrix product OpenBLAS's idle threads spin for about 2**28 cycles, a tenth of a second,
# before they sleep: long enough to hold the cores that the work between two products needs (the
# NumPy core's own threads, lablib/nn/parallel.py, or PyTorch's next kernel in a benchmark). 2**4
# cycles lets them sleep at once; it changes no result. OpenBLAS reads this when NumPy first loads
# it, so it is set here, before any module of lablib imports NumPy; a value already set is kept.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
