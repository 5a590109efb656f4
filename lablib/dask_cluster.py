"""Reaching a Dask cluster, for a series of experiments or a class of hand-ins run beyond one machine.

Dask (``dask[distributed]``, with ``dask-jobqueue`` for Slurm, PBS, SGE or LSF) is an optional extra,
``pip install -e '.[cluster]'``: it is imported here, inside functions, and only by the cluster modules
(:mod:`lablib.experiments.cluster`, :mod:`lablib.gradcheck.cluster`), so that no DVC stage and no
local run needs it. Either failure a user meets before any work is sent, Dask missing or a scheduler
that does not answer, is one message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING

from lablib.errors import LabError

if TYPE_CHECKING:
    from distributed import Client

INSTALL = "pip install -e '.[cluster]'"
CONNECT_SECONDS = 10  # how long a scheduler may take to answer before it counts as unreachable


class ClusterError(LabError):
    """Dask missing, or a scheduler that cannot be reached."""


def distributed() -> ModuleType:
    """``distributed``, Dask's cluster package, or one message saying how to install it."""
    try:
        import distributed
    except ImportError as error:
        raise ClusterError(
            f"running on a Dask cluster needs the optional extra 'cluster' (dask[distributed], dask-jobqueue), "
            f"which is not installed ({error}): run `{INSTALL}` in the project's environment, or `make setup`"
        ) from None
    return distributed


@contextmanager
def connect(scheduler: str | None, local_workers: int | None = None) -> Iterator[Client]:
    """A client of the scheduler at ``scheduler`` (``tcp://host:8786``), or of a ``LocalCluster`` of
    ``local_workers`` single-thread worker processes started here and stopped on leaving."""
    dask = distributed()
    if local_workers is not None:
        cluster = dask.LocalCluster(
            n_workers=local_workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        with cluster, dask.Client(cluster) as client:
            yield client
        return
    try:
        client = dask.Client(scheduler, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError) as error:
        raise ClusterError(
            f"no Dask scheduler answers at {scheduler} within {CONNECT_SECONDS} s ({error}); nothing was sent. Start "
            "one (`dask scheduler`, then `dask worker ADDRESS` on each machine) or check the address"
        ) from None
    with client:
        yield client


def threads_of(client: Client) -> int:
    """How many tasks the cluster runs at once now: its workers' threads together."""
    return sum(client.nthreads().values())
