"""Memory-bound array work spread over the machine's cores, with results independent of the thread count.

NumPy's ufuncs, copies and ``einsum`` release the GIL, so a large array cut into blocks along one
axis can be processed by several threads at once. A block is also small enough to stay in the CPU's
cache while a layer makes several passes over it (BatchNorm's statistics, centring and scaling).

The blocks depend only on the array's shape, never on the thread count: every block runs the same
arithmetic whichever thread runs it and however many there are, so a result is bit-identical with
1 thread and with 16. One thread runs the blocks in order in the calling thread, without the pool.

The thread count is the one BLAS takes: ``OMP_NUM_THREADS``, else ``OPENBLAS_NUM_THREADS``, else
``MKL_NUM_THREADS``, else the cores this process may run on; :func:`set_num_threads` changes it.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# Elements per block: a few float32 blocks fit in a core's L2 cache. Arrays up to this size are
# processed whole (a batch of one image).
BLOCK_ELEMENTS = 2**16
# Arrays below this size run their blocks in the calling thread: waking the pool costs more than
# it brings, the more so on a busy machine.
POOL_ELEMENTS = 2**20

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def default_num_threads() -> int:
    """The first of :data:`THREAD_VARIABLES` that holds a positive count, else the usable cores."""
    for name in THREAD_VARIABLES:
        value = os.environ.get(name, "").split(",")[0].strip()  # OpenMP allows a list, one count per level
        if value.isdigit() and int(value) > 0:
            return int(value)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


_num_threads = default_num_threads()
_pool: ThreadPoolExecutor | None = None


def get_num_threads() -> int:
    return _num_threads


def set_num_threads(count: int) -> None:
    """Use ``count`` threads from now on (``torch.set_num_threads``'s name); 1 turns the pool off."""
    global _num_threads, _pool
    if count < 1:
        raise ValueError(f"the thread count must be at least 1, got {count}")
    if _pool is not None:
        _pool.shutdown()
        _pool = None
    _num_threads = count


def blocks(length: int, elements: int) -> list[slice]:
    """Slices cutting an axis of ``length`` entries, of an array of ``elements``, into blocks of about
    :data:`BLOCK_ELEMENTS` elements: one slice when the array is no larger than one block."""
    if elements <= BLOCK_ELEMENTS or length <= 1:
        return [slice(0, length)]
    count = min(length, -(-elements // BLOCK_ELEMENTS))
    bounds = [length * i // count for i in range(count + 1)]
    return [slice(start, stop) for start, stop in itertools.pairwise(bounds)]


def for_blocks(fn: Callable[[slice], object], length: int, elements: int) -> None:
    """``fn(block)`` for each of :func:`blocks` ``(length, elements)``, spread over the threads.

    Each call must write only its own block of the outputs.
    """
    global _pool
    if elements <= BLOCK_ELEMENTS:  # one block: no slicing or scheduling at all (batch 1)
        fn(slice(0, length))
        return
    slices = blocks(length, elements)
    workers = min(_num_threads, len(slices)) if elements >= POOL_ELEMENTS else 1
    if workers == 1:
        for block in slices:
            fn(block)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(_num_threads - 1, thread_name_prefix="lablib")
    queue = iter(slices)  # shared by the threads: each takes the next block when it is free
    remaining, lock, finished, errors = [len(slices)], threading.Lock(), threading.Event(), []

    def work() -> None:
        for block in queue:
            try:
                fn(block)
            except BaseException as error:
                errors.append(error)
            with lock:
                remaining[0] -= 1
                if remaining[0] == 0:
                    finished.set()

    for _ in range(workers - 1):
        _pool.submit(work)
    work()
    # Wait for the blocks, not for the helpers: on a busy machine a helper that starts late finds
    # the queue empty, and the caller has already done its share.
    finished.wait()
    if errors:
        raise errors[0]


def outer_axis(x: np.ndarray) -> int:
    """The axis with the largest stride: blocks along it are contiguous runs of memory."""
    return int(np.argmax(x.strides))


def copyto(dst: np.ndarray, src: np.ndarray) -> None:
    """``dst[...] = src`` (same shapes), in blocks along the first axis with enough entries to share out."""
    if dst.size <= BLOCK_ELEMENTS:
        dst[...] = src
        return
    axis = next((i for i, n in enumerate(dst.shape) if n >= 8), 0)
    index = (slice(None),) * axis

    def copy(block: slice) -> None:
        dst[(*index, block)] = src[(*index, block)]

    for_blocks(copy, dst.shape[axis], dst.size)
