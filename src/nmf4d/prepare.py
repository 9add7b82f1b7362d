"""The loading stage: the preprocessed data as a matrix in its fitting space.

:func:`load` decides where the data lives for the budget (in memory, integer counts in
their own dtype; streamed from its file; or on a dask cluster), makes the statistics pass
(which checks every value; in memory it is made while the data is read), and
returns a :class:`FittingData`: the data operator in input units, the operator NMF fits
(Poisson-weighted on the fly or as a copy, or the same data), and the conversions of a fit
between the two spaces. No other stage touches the weighting scales.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .arrays import Array, raise_bad_values
from .errors import InputError
from .execution import (
    DaskSource,
    Progress,
    aligned_rows,
    block_rows,
    format_bytes,
    held_dtype,
    parse_memory,
    read_into,
    usable_cores,
)
from .nmf import SPARSE_DENSITY, BlockOperator, InMemoryOperator, NMFResult, apply_scales, \
    combine_stats, rescale, scales_from_sums, unscale, vstack_rows
from .nmf import kernels as K


@dataclass
class FittingData:
    """The data of one analysis, in input units and in the space NMF fits.

    Attributes
    ----------
    op : FullDataOperator
        The preprocessed data matrix V of shape (n, p), input units.
    fit_op : FullDataOperator
        What NMF factorises: ``diag(a) V diag(b)`` with Poisson weighting, else ``op``.
    scales : (a, b) or None
        Row (n,) and column (p,) factors of the weighting.
    scan_shape, pattern_shape : (int, int)
    stats : dict
        Row sums (n,), column sums (p,), squared norm, bad-value counts of V (empty for
        :meth:`unweighted` data, which makes no statistics pass).
    mode : str
        "memory", "memory (weighting on the fly)", "stream" or "distributed".
    """

    op: BlockOperator
    fit_op: BlockOperator
    scales: tuple | None
    scan_shape: tuple
    pattern_shape: tuple
    stats: dict
    mode: str
    extras: dict = field(default_factory=dict)

    @classmethod
    def unweighted(cls, X, scan_shape=None, *, progress: Progress | None = None
                   ) -> "FittingData":
        """Data fitted as it is (no weighting): a matrix (n, p) or a full-data operator.

        ``scan_shape`` defaults to ``(n, 1)``; ``pattern_shape`` is ``(p, 1)``. A matrix
        is held by an in-memory operator that reports its blocks to ``progress``.
        """
        from .nmf import DataOperator, as_operator

        op = as_operator(X) if isinstance(X, DataOperator) else \
            as_operator(InMemoryOperator(_as_float_matrix(X), progress=progress))
        n, p = op.shape
        return cls(op=op, fit_op=op, scales=None,
                   scan_shape=tuple(scan_shape) if scan_shape is not None else (n, 1),
                   pattern_shape=(p, 1), stats={}, mode="memory")

    @property
    def n_blocks(self) -> int:
        """Row blocks per pass over the data (of the operator NMF fits)."""
        return self.fit_op.n_blocks

    def to_input(self, res: NMFResult, *, sort: bool = True) -> NMFResult:
        """A fit of ``fit_op`` in input units (components unit-sum; sorted by weight
        unless ``sort`` is False, which keeps the fit's order)."""
        return res if self.scales is None else unscale(res, *self.scales, sort=sort)

    def to_fitting(self, res: NMFResult) -> tuple[np.ndarray, np.ndarray]:
        """Starting factors ``(Wt (k, n), H (k, p))`` for ``fit_op`` from a fit in input
        units."""
        if self.scales is None:
            return res.weights, res.components
        return rescale(res, *self.scales)

    @property
    def mean_pattern(self) -> np.ndarray:
        """Mean pattern, ndarray of shape (ky, kx), float32."""
        n = self.scan_shape[0] * self.scan_shape[1]
        return (self.stats["col_sums"] / n).reshape(self.pattern_shape).astype(np.float32)

    @property
    def virtual_image(self) -> np.ndarray:
        """Total intensity per position, ndarray of shape (scan_y, scan_x), float64."""
        return self.stats["row_sums"].reshape(self.scan_shape)


def load(arr: Array, *, weighting: str = "poisson", memory=None, client=None,
         progress: Progress | None = None, allow_negative: bool = False,
         noise: tuple[float, float] | None = None) -> FittingData:
    """The preprocessed data as a :class:`FittingData`, for the budget and executor.

    Integer counts (uint8/16/32, as detectors write them) are held in their own dtype and
    each block is converted to float32 as it is used; other data is held as float32. The
    data is read into memory when it fits half the memory budget (a lazy array is read
    chunk by chunk into one matrix, its statistics made on each chunk as it arrives), as
    a CSR matrix when at most ``SPARSE_DENSITY`` of its values are non-zero
    (:func:`sampled_density`; :mod:`nmf4d.nmf._sparse` says why);
    larger lazy data stays a chunked dask array streamed block by block, in blocks of
    whole storage chunks; with a ``dask.distributed`` client the blocks are computed on
    the cluster (persisted there when the data fits the budget). Every value is checked
    in the statistics pass. Poisson weights are applied on the fly, except that float
    data in memory gets a weighted float32 copy when both fit the budget (as before; for
    counts the copy would be 2-4 times their size, for passes at most ~15 % faster:
    the products apply the weights to their small operands). The choice and its
    reason are told as the progress event ``"load"`` and kept in ``FittingData.extras``.

    Parameters
    ----------
    arr : ndarray or dask array of shape (scan_y, scan_x, ky, kx)
    weighting : {"poisson", "none"}
    memory : int or str, optional
        Budget in bytes (or '2GB'); default half the physical memory.
    client : dask.distributed.Client, optional
    progress : Progress, optional
    allow_negative : bool
        Accept negative values (data from which a detector offset was subtracted, whose
        dark pixels are read noise around 0); NaN/inf are always refused.
    noise : (gain, read_variance), optional
        An integrating detector's noise model (see
        :func:`nmf4d.preprocess.dark.noise_model`), for the weighting.

    Returns
    -------
    FittingData
    """
    progress = progress or Progress()
    budget = parse_memory(memory)
    sy, sx, ky, kx = arr.shape
    n, p = sy * sx, ky * kx
    dtype = held_dtype(arr.dtype)
    nbytes = n * p * dtype.itemsize
    lazy = not isinstance(arr, np.ndarray)
    if client is not None:
        op, mode, reason, st = _on_cluster(arr, dtype, budget, client, progress)
    elif lazy and nbytes > budget // 2:
        op, mode, reason, st = _streamed(arr, dtype, budget, progress)
    else:
        op, mode, reason, st = _in_memory(arr, dtype, budget, progress)
    if st is None:
        with progress.counting("check + statistics", op.n_blocks):
            st = op.stats()
    else:
        op.set_stats(st)
    _raise_bad_values(dict(st, n_neg=0) if allow_negative else st, (sy, sx))
    if st["sq"] == 0.0:
        raise InputError("data contains only zeros after preprocessing: nothing to factorise")
    scales = None
    fit_op = op
    if weighting != "none":
        gain, read_var = noise or (1.0, 0.0)
        scales = scales_from_sums(st["row_sums"], st["col_sums"] / n, gain=gain,
                                  read_variance=read_var)
        copy = n * p * 4
        dense = mode == "memory" and isinstance(op.X, np.ndarray)
        if dense and dtype.kind == "f" and nbytes + copy <= budget:
            fit_op = InMemoryOperator(apply_scales(op.X, *scales), progress=progress)
            reason += f"; Poisson-weighted float32 copy held ({format_bytes(copy)})"
        else:
            fit_op = BlockOperator(op.source, scales=scales)
            reason += "; Poisson weights applied on the fly"
            if mode == "memory":
                mode = "memory (weighting on the fly)"
                if not dense:
                    reason += " (a dense copy would undo the CSR's saving)"
                elif dtype.kind != "f":
                    reason += (f" (for counts: a float32 copy would take {format_bytes(copy)}"
                               " more for passes barely faster)")
                else:
                    reason += f" (a float32 copy of {format_bytes(copy)} exceeds the budget)"
    progress.event("load", f"{mode}: {reason}")
    return FittingData(op=op, fit_op=fit_op, scales=scales, scan_shape=(sy, sx),
                       pattern_shape=(ky, kx), stats=st, mode=mode,
                       extras={"reason": reason, "dtype": str(dtype)})


def _size(arr, dtype) -> str:
    return f"{format_bytes(int(np.prod(arr.shape)) * dtype.itemsize)} as {dtype}"


def _on_cluster(arr, dtype, budget: int, client, progress):
    """Blocks on a dask.distributed cluster: (op, mode, reason, stats or None)."""
    import dask.array as da

    sy, sx, ky, kx = arr.shape
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    # at least two blocks per worker, so every worker computes
    rows = max(1, min(block_rows(ky * kx, budget, n_workers=n_workers,
                                 itemsize=dtype.itemsize) // sx, -(-sy // (2 * n_workers))))
    x4 = arr if not isinstance(arr, np.ndarray) else da.from_array(arr, chunks=(rows, sx, ky, kx))
    x = x4.astype(dtype).rechunk((rows, sx, ky, kx)).reshape(sy * sx, ky * kx)
    kept = sy * sx * ky * kx * dtype.itemsize <= budget
    if kept:
        x = client.persist(x)
    op = BlockOperator(DaskSource(x, client=client, progress=progress))
    where = (f"persisted in their memory (fits the budget of {format_bytes(budget)})" if kept
             else f"read from the input in every pass (exceeds the budget of "
                  f"{format_bytes(budget)})")
    return op, "distributed", (f"{_size(arr, dtype)} on a dask.distributed cluster of "
                               f"{n_workers} worker(s), {where}"), None


def _streamed(arr, dtype, budget: int, progress):
    """Row blocks of whole storage chunks read in every pass: (op, mode, reason, None)."""
    sy, sx, ky, kx = arr.shape
    workers = max(1, min(usable_cores(), 4))
    target = block_rows(ky * kx, budget, n_workers=workers, itemsize=dtype.itemsize) // sx
    rows = min(sy, aligned_rows(target, arr.chunks[0][0]))
    op = BlockOperator(DaskSource.scan_rows(arr.astype(dtype), rows, num_workers=workers,
                                            progress=progress))
    return op, "stream", (f"{_size(arr, dtype)} exceeds half the memory budget of "
                          f"{format_bytes(budget)}: streamed from the input, {op.n_blocks} "
                          f"blocks of {rows * sx} patterns per pass on {workers} threads"), None


def _in_memory(arr, dtype, budget: int, progress):
    """The data read into memory (CSR when sparse), with its statistics made on each chunk
    as it is read: (op, mode, reason, stats or None)."""
    sy, sx, ky, kx = arr.shape
    n, p = sy * sx, ky * kx
    sparse = sampled_density(arr) <= SPARSE_DENSITY
    st = None
    if not isinstance(arr, np.ndarray):
        x4 = arr.astype(dtype)
        X = None if sparse else np.empty((n, p), dtype=dtype)
        with progress.counting("load + check + statistics", x4.numblocks[0] * x4.numblocks[1]):
            parts = read_into(x4, None if sparse else X.reshape(sy, sx, ky, kx),
                              K.stats_and_csr if sparse else K.stats,
                              num_workers=usable_cores(), progress=progress)
        if sparse:
            st = _chunk_stats([(rows, res[0]) for rows, res in parts], n)
            X = vstack_rows([(rows, res[1]) for rows, res in parts], n, p)
        else:
            st = _chunk_stats(parts, n)
    else:
        X = np.ascontiguousarray(np.asarray(arr, dtype=dtype).reshape(n, p))
        if sparse:
            X = _to_csr(X, progress)
    reason = f"{_size(arr, dtype)} fits half the memory budget of {format_bytes(budget)}: in memory"
    if sparse:
        reason += (f", as CSR ({100 * X.nnz / max(1, n * p):.1f} % of the values are "
                   f"non-zero: {format_bytes(X.data.nbytes + X.indices.nbytes)})")
    return InMemoryOperator(X, progress=progress), "memory", reason, st


def sampled_density(arr, n_samples: int = 3, rows: int = 2) -> float:
    """Fraction of non-zero values, estimated on a few chunks (a lazy array: the first
    ``rows`` scan rows of its first, middle and last chunk) or rows (an ndarray: up to 64
    rows spread over the scan)."""
    if isinstance(arr, np.ndarray):
        flat = arr.reshape(-1, arr.shape[2] * arr.shape[3])
        rows = np.unique(np.linspace(0, flat.shape[0] - 1, min(64, flat.shape[0])).astype(int))
        sample = flat[rows]
        return float(np.count_nonzero(sample)) / max(1, sample.size)
    import dask

    ny, nx = arr.numblocks[:2]
    picks = sorted({(int(i * (ny - 1) / max(1, n_samples - 1)),
                     int(i * (nx - 1) / max(1, n_samples - 1))) for i in range(n_samples)})
    chunks = dask.compute(*[arr.blocks[i, j][:rows] for i, j in picks], scheduler="threads")
    return float(sum(np.count_nonzero(c) for c in chunks)) / max(1, sum(c.size for c in chunks))


def _to_csr(X: np.ndarray, progress: Progress):
    """An in-memory matrix as CSR, converted block by block on every core."""
    import scipy.sparse as sp

    blocks = InMemoryOperator(X, progress=progress).source.map(K.to_csr)
    return sp.vstack(blocks, format="csr")


def _chunk_stats(parts, n: int) -> dict:
    """:func:`~nmf4d.nmf.combine_stats` of per-chunk statistics ``[(rows, stats)]``, the
    chunks covering the n rows in any order."""
    order = sorted(range(len(parts)), key=lambda i: int(parts[i][0][0]))
    st = combine_stats([parts[i][1] for i in order])
    rows = np.concatenate([parts[i][0] for i in order])
    row_sums = np.empty(n, np.float64)
    row_sums[rows] = st["row_sums"]
    st["row_sums"] = row_sums
    st["bad_rows"] = np.sort(st["bad_rows"])
    st["neg_rows"] = np.sort(st["neg_rows"])
    return st


def _as_float_matrix(X) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise InputError(f"X must be 2D (n_patterns, n_pixels), got shape {X.shape}")
    return X if np.issubdtype(X.dtype, np.floating) else X.astype(np.float32)


def _raise_bad_values(st: dict, scan_shape, name: str = "data") -> None:
    """Raise like :func:`nmf4d.arrays.check_values` from a statistics pass."""
    def positions(rows):
        return np.stack(np.unravel_index(np.asarray(rows, dtype=np.int64), scan_shape), axis=1)
    raise_bad_values(name, n_bad=st["n_bad"], bad_positions=positions(st["bad_rows"]),
                     n_neg=st["n_neg"], neg_positions=positions(st["neg_rows"]),
                     vmin=st["min"])
