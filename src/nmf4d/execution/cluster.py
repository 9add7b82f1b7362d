"""dask.distributed clusters: join a running one or start a local one for a run."""
from __future__ import annotations

from contextlib import contextmanager

from ..errors import ConfigError, MissingDependencyError


@contextmanager
def dask_client(*, scheduler: str | None = None, workers: int | None = None):
    """Context: a ``dask.distributed`` client from :func:`start_client` (None when neither
    is given), closed with its local cluster on exit."""
    client, cluster = start_client(scheduler=scheduler, workers=workers)
    try:
        yield client
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def check_cluster_options(*, scheduler: str | None, workers: int | None) -> None:
    """Validate ``scheduler``/``workers`` (fields ``execution.scheduler``/``workers``)."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ConfigError("execution.workers", workers, "must be an integer >= 1")
    if scheduler is not None and workers is not None:
        raise ConfigError("execution.scheduler", scheduler,
                          "give either a scheduler address or a number of workers, not both")


def start_client(*, scheduler: str | None = None, workers: int | None = None):
    """A ``dask.distributed`` client: connect to ``scheduler`` or start ``workers`` local
    worker processes (one thread each). Returns (client, cluster or None)."""
    check_cluster_options(scheduler=scheduler, workers=workers)
    if scheduler is None and workers is None:
        return None, None
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise MissingDependencyError("a dask cluster (scheduler/workers)", "dask.distributed",
                                     "distributed") from None
    if scheduler is not None:
        try:
            return Client(scheduler, timeout="10s"), None
        except (OSError, TimeoutError, ValueError) as e:
            raise ConfigError("execution.scheduler", scheduler,
                              f"cannot connect ({e}); give an address like tcp://host:8786"
                              ) from None
    cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                           dashboard_address=None)
    try:
        return Client(cluster), cluster
    except BaseException:
        cluster.close()
        raise


def client_address(client) -> str | None:
    """The scheduler address of a client (None for no client)."""
    if client is None:
        return None
    info = getattr(client, "scheduler_info", lambda: {})()
    return str(info.get("address", client))
