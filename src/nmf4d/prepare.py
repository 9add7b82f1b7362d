"""The loading stage: the preprocessed data as a matrix in its fitting space.

:func:`load` decides where the data lives for the budget (in memory, streamed from its
file, or on a dask cluster), makes the statistics pass (which checks every value), and
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
    NumpySource,
    Progress,
    block_rows,
    compute_with_bar,
    parse_memory,
    usable_cores,
)
from .nmf import BlockOperator, InMemoryOperator, NMFResult, apply_scales, rescale, \
    scales_from_sums, unscale


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

    def to_input(self, res: NMFResult) -> NMFResult:
        """A fit of ``fit_op`` in input units (components unit-sum, sorted by weight)."""
        return res if self.scales is None else unscale(res, *self.scales)

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

    Data that fits half the memory budget is read into memory (its Poisson-weighted copy
    too when both fit the budget; otherwise the weights are applied on the fly); larger
    lazy data stays a chunked dask array streamed block by block; with a
    ``dask.distributed`` client the blocks are computed on the cluster (persisted there
    when the data fits the budget). Every value is checked in the statistics pass.

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
    nbytes = n * p * 4
    lazy = not isinstance(arr, np.ndarray)
    if client is not None:
        import dask.array as da
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        # at least two blocks per worker, so every worker computes
        rows = max(1, min(block_rows(p, budget, n_workers=n_workers) // sx,
                          -(-sy // (2 * n_workers))))
        x4 = arr if lazy else da.from_array(arr, chunks=(rows, sx, ky, kx))
        x = x4.astype(np.float32).rechunk((rows, sx, ky, kx)).reshape(n, p)
        if nbytes <= budget:
            x = client.persist(x)
        op = BlockOperator(DaskSource(x, client=client, progress=progress))
        mode = "distributed"
    elif lazy and nbytes > budget // 2:
        workers = max(1, min(usable_cores(), 4))
        rows = max(1, block_rows(p, budget, n_workers=workers) // sx)
        x = arr.astype(np.float32).rechunk((rows, sx, ky, kx)).reshape(n, p)
        op = BlockOperator(DaskSource(x, scheduler="threads", num_workers=workers,
                                      progress=progress))
        mode = "stream"
    else:
        x4 = compute_with_bar(arr, progress) if lazy else arr
        X = np.ascontiguousarray(np.asarray(x4, dtype=np.float32).reshape(n, p))
        op = InMemoryOperator(X, progress=progress)
        mode = "memory"
    with progress.counting("check + statistics", op.n_blocks):
        st = op.stats()
    _raise_bad_values(dict(st, n_neg=0) if allow_negative else st, (sy, sx))
    if st["sq"] == 0.0:
        raise InputError("data contains only zeros after preprocessing: nothing to factorise")
    scales = None
    fit_op = op
    if weighting != "none":
        gain, read_var = noise or (1.0, 0.0)
        scales = scales_from_sums(st["row_sums"], st["col_sums"] / n, gain=gain,
                                  read_variance=read_var)
        if mode == "memory" and 2 * nbytes <= budget:
            fit_op = InMemoryOperator(apply_scales(op.X, *scales), progress=progress)
        else:
            fit_op = BlockOperator(op.source, scales=scales)
            if mode == "memory":
                mode = "memory (weighting on the fly)"
    return FittingData(op=op, fit_op=fit_op, scales=scales, scan_shape=(sy, sx),
                       pattern_shape=(ky, kx), stats=st, mode=mode)


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
