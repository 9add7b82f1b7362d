"""Where the data lives and who computes: memory budget, block sources, clusters, devices,
progress.

The maths (:mod:`nmf4d.nmf`) is written once against a data operator over row blocks;
this package holds everything about *executing* it, as LiberTEM separates its UDFs from
its executors:

- :mod:`.budget`: the memory budget (``--memory``), block sizes, cores;
- :mod:`.sources`: the :class:`BlockSource` contract and its executors — in memory on
  threads (:class:`NumpySource`), streamed from a lazy file on dask's threaded scheduler,
  or on a ``dask.distributed`` cluster (:class:`DaskSource`);
- :mod:`.cluster`: joining or starting a ``dask.distributed`` cluster;
- :mod:`.threads`: independent tasks on threads with single-threaded BLAS;
- :mod:`.device`: CPU or CUDA GPU;
- :mod:`.progress`: progress bars and stage events, passed explicitly to every stage and
  source.

Which source a dataset gets is decided by :func:`nmf4d.prepare.load` from the budget.
This package imports nothing of the maths.
"""
from .budget import (
    DEFAULT_MEMORY_FRACTION,
    aligned_rows,
    block_rows,
    format_bytes,
    held_dtype,
    parse_memory,
    physical_memory,
    usable_cores,
)
from .cluster import check_cluster_options, client_address, dask_client, start_client
from .device import check_device_name, resolve_device, torch_available
from .progress import SILENT, Progress, StageTimer
from .threads import blas_threads, parallel_map
from .sources import (
    BLOCK_ELEMENTS,
    BlockSource,
    DaskSource,
    NumpySource,
    compute_with_bar,
    read_into,
    row_blocks,
    work_dtype,
)

__all__ = ["DEFAULT_MEMORY_FRACTION", "aligned_rows", "block_rows", "format_bytes",
           "held_dtype", "parse_memory", "physical_memory", "usable_cores",
           "check_cluster_options", "client_address", "dask_client", "start_client",
           "check_device_name", "resolve_device", "torch_available", "SILENT", "Progress",
           "StageTimer", "blas_threads", "parallel_map", "BLOCK_ELEMENTS", "BlockSource",
           "DaskSource", "NumpySource", "compute_with_bar", "read_into", "row_blocks",
           "work_dtype"]
