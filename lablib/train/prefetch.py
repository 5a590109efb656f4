"""The next batches assembled on a background thread while the current step runs.

Batch assembly (gathering images, augmentation) and the training step are both mostly NumPy or
PyTorch kernels that release the GIL, so the two overlap on a multi-core machine. One thread
consumes the batch iterator in order, so whatever it draws from a random generator is drawn in
exactly the order of a plain loop: the batches, and the generator's state once the iterator is
exhausted, are those of a run without prefetching.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_END = object()


class Prefetcher(Generic[T]):
    """Iterate ``items`` with up to ``depth`` of them prepared ahead on a thread (``depth=0``: in line).

    ``waited`` is the time the consumer spent waiting for its next item: with ``depth=0`` the whole
    time of preparing them. Use as a context manager, so that a consumer that stops early (an
    error in the step) also stops the thread before anything else touches what it reads.
    """

    def __init__(self, items: Iterable[T], depth: int) -> None:
        self.items = iter(items)
        self.waited = 0.0
        self._queue: queue.Queue = queue.Queue(maxsize=max(depth, 1))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="prefetch", daemon=True) if depth else None
        if self._thread is not None:
            self._thread.start()

    def _produce(self) -> None:
        try:
            for item in self.items:
                if not self._put(item, None):
                    return
            self._put(_END, None)
        except BaseException as error:  # handed to the consumer, raised there
            self._put(_END, error)

    def _put(self, item: object, error: BaseException | None) -> bool:
        # Checked before every put, so once close() has drained the queue at most one more put
        # follows, into an empty queue: the thread never blocks after close().
        if self._stop.is_set():
            return False
        self._queue.put((item, error))
        return True

    def _next(self) -> object:
        if self._thread is None:
            return next(self.items, _END)
        item, error = self._queue.get()
        if error is not None:
            raise error
        return item

    def __iter__(self) -> Iterator[T]:
        while True:
            started = time.perf_counter()
            item = self._next()
            self.waited += time.perf_counter() - started
            if item is _END:
                return
            yield item  # type: ignore[misc]

    def close(self) -> None:
        """Stop the thread and wait for it; the items it had prepared are dropped."""
        if self._thread is None:
            return
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
