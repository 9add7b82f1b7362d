"""Per-position patterns for the report's explorer: layout, per-block kernel, writer.

The report reads only ``OUT/results.h5``, so the patterns the explorer shows at each
scan position must be stored there. They are stored compactly in the group
``explorer/`` (version 1):

==================  ========================  ===============================================
item                dtype, shape              meaning
==================  ========================  ===============================================
``patterns``        uint8 (n_sel, by, bx)     the factorised patterns at the stored positions,
                                              sum-binned ``bin`` x ``bin`` and square-root
                                              encoded: ``q = round(255 sqrt(v / max_p))``
``scale``           float32 (n_sel,)          per-pattern scale: ``v = scale * q**2``
                                              (``scale = max_p / 255**2``; 0 for an empty one)
``positions``       int32 (n_sel, 2)          (y, x) scan position of each stored pattern, in
                                              row-major order: ``y = offset + step * i``,
                                              ``x = offset + step * j``
``components``      float32 (k, by, bx)       the components sum-binned the same way, so that
                                              ``weights[:, y, x] @ components`` is the binned
                                              NMF reconstruction
attrs               ``version`` (1), ``encoding`` ("sqrt-uint8"), ``bin``, ``step``,
                    ``offset``, ``scan_shape`` (2,), ``pattern_shape`` (2,) of the
                    factorised patterns, ``binned_shape`` (2,), ``budget_bytes``
==================  ========================  ===============================================

Square-root encoding is the variance-stabilising transform of counting noise: one
quantisation step of ``sqrt(v)`` is ``sqrt(max_p) / 255``, below the Poisson noise
(0.5 in ``sqrt`` units) for any pattern whose brightest binned pixel holds fewer than
~16 000 counts. Binning crops the trailing ``ky % bin`` rows and ``kx % bin`` columns.

Only numpy is used here and no other report module is imported: the pipeline calls
:func:`explorer_plan` once (the layout), its kernel (:func:`explorer_block`) on every row
block of the data matrix in its maps pass (blocks in any order, on any executor), and
:func:`write_explorer` at the end. :func:`explorer_from_array` does all three on an
array in memory.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

VERSION = 1
ENCODING = "sqrt-uint8"
#: Default budget of the explorer's per-position data (bytes, before base64 and deflate).
DEFAULT_BUDGET = 10 * 2**20
MIN_SIDE = 32      # bin no further than this many pixels across; subsample positions instead
#: Weight maps the explorer offers as map layers (of the largest clusters when k is larger).
MAX_WEIGHT_MAPS = 64
MAX_SIDE = 128     # always bin larger patterns down to this (a screen panel is ~256 px)


class ExplorerBlock(NamedTuple):
    """What :func:`explorer_block` returns for one row block.

    Attributes
    ----------
    index : ndarray of shape (m',), int64
        Index of each stored pattern in the explorer's selection (row of
        ``explorer/patterns``), so blocks may be written in any order.
    patterns : ndarray of shape (m', by, bx), uint8
    scale : ndarray of shape (m',), float32
    """

    index: np.ndarray
    patterns: np.ndarray
    scale: np.ndarray


def binned_shape(pattern_shape: Sequence[int], bin: int) -> tuple[int, int]:
    """Pattern shape after ``bin`` x ``bin`` sum-binning (remainder cropped)."""
    return int(pattern_shape[0]) // int(bin), int(pattern_shape[1]) // int(bin)


def grid_offset(step: int) -> int:
    """First stored row/column: the stored position sits in the middle of its cell."""
    return (int(step) - 1) // 2


def grid_shape(scan_shape: Sequence[int], step: int) -> tuple[int, int]:
    """Number of stored positions along scan y and x."""
    off = grid_offset(step)
    return (len(range(off, int(scan_shape[0]), int(step))),
            len(range(off, int(scan_shape[1]), int(step))))


def explorer_nbytes(scan_shape: Sequence[int], pattern_shape: Sequence[int], bin: int,
                    step: int, n_components: int = 0) -> int:
    """Bytes the explorer embeds for a layout (before base64 and compression).

    Per stored position: the uint8 pattern, its float32 scale and ``n_components``
    uint16 weights; once: components and cluster means, float32 ``(k, by, bx)`` each; and
    per scan position the map layers: labels, virtual image, overlap ratio and up to
    :data:`MAX_WEIGHT_MAPS` weight maps, one byte each.
    """
    gy, gx = grid_shape(scan_shape, step)
    by, bx = binned_shape(pattern_shape, bin)
    k = int(n_components)
    layers = (min(k, MAX_WEIGHT_MAPS) + 2 + (1 if k <= 255 else 2)) * int(scan_shape[0]) \
        * int(scan_shape[1])
    return gy * gx * (by * bx + 4 + 2 * k) + 8 * k * by * bx + layers


def explorer_layout(scan_shape: Sequence[int], pattern_shape: Sequence[int], *,
                    budget_bytes: int = DEFAULT_BUDGET, n_components: int = 0,
                    min_side: int = MIN_SIDE, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """Choose the binning and the position subsampling that fit the budget.

    Patterns larger than ``max_side`` are binned down to it. Then, while the data exceed
    ``budget_bytes``, patterns are binned further (by factors dividing both sides, when
    there are any) as long as they stay at least ``min_side`` pixels across; beyond
    that, positions are subsampled on a regular grid of ``step``.

    Parameters
    ----------
    scan_shape : (int, int)
        (scan_y, scan_x).
    pattern_shape : (int, int)
        (ky, kx) of the factorised patterns.
    budget_bytes : int
        Upper bound of :func:`explorer_nbytes` (default 10 MiB: 13.3 MiB in base64 even
        if nothing compressed, which keeps the report of a 256 x 256 scan under 20 MB).
    n_components : int
        k, counted for the per-position weights and the binned components.
    min_side, max_side : int
        Smallest and largest binned pattern side.

    Returns
    -------
    (bin, step) : (int, int)
        Every ``step``-th position along y and x is stored, binned ``bin`` x ``bin``.
    """
    sy, sx = (int(v) for v in scan_shape)
    ky, kx = (int(v) for v in pattern_shape)
    if min(sy, sx, ky, kx) < 1:
        raise ValueError(f"empty scan or pattern shape: {scan_shape}, {pattern_shape}")
    side = max(ky, kx)
    divisors = [b for b in range(2, min(ky, kx) + 1) if ky % b == 0 and kx % b == 0]
    candidates = [1] + (divisors or list(range(2, min(ky, kx) + 1)))
    usable = [b for b in candidates if b == 1 or min(ky, kx) // b >= min(min_side, min(ky, kx))]
    b = next((c for c in candidates if side / c <= max_side), candidates[-1])

    def size(bn: int, st: int) -> int:
        return explorer_nbytes((sy, sx), (ky, kx), bn, st, n_components)

    for c in usable:
        if c < b:
            continue
        b = c
        if size(b, 1) <= budget_bytes:
            return b, 1
    step = 1
    while size(b, step) > budget_bytes and step < max(sy, sx):
        step += 1
    return b, step


def explorer_positions(scan_shape: Sequence[int], step: int) -> np.ndarray:
    """(y, x) of the stored positions, row-major: int32 array of shape (n_sel, 2)."""
    off = grid_offset(step)
    ys = np.arange(off, int(scan_shape[0]), int(step))
    xs = np.arange(off, int(scan_shape[1]), int(step))
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([yy.ravel(), xx.ravel()], axis=1).astype(np.int32)


def bin_sum(patterns: np.ndarray, bin: int) -> np.ndarray:
    """Sum-bin the last two axes by ``bin`` (trailing remainder cropped), as float32.

    Parameters
    ----------
    patterns : ndarray of shape (..., ky, kx)
    bin : int

    Returns
    -------
    ndarray of shape (..., ky // bin, kx // bin), float32
    """
    a = np.asarray(patterns, dtype=np.float32)
    if bin == 1:
        return a
    ky, kx = a.shape[-2:]
    by, bx = ky // bin, kx // bin
    a = a[..., :by * bin, :bx * bin]
    return a.reshape(*a.shape[:-2], by, bin, bx, bin).sum(axis=(-3, -1), dtype=np.float32)


def encode_patterns(binned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Square-root uint8 encoding with one scale per pattern.

    Parameters
    ----------
    binned : ndarray of shape (m, by, bx)
        Non-negative intensities (negative values and NaN are stored as 0).

    Returns
    -------
    q : ndarray of shape (m, by, bx), uint8
    scale : ndarray of shape (m,), float32
        ``decode_patterns(q, scale) = scale * q**2`` approximates ``binned``.
    """
    v = np.nan_to_num(np.asarray(binned, dtype=np.float32), nan=0.0, posinf=0.0)
    np.maximum(v, 0, out=v)
    top = v.reshape(v.shape[0], -1).max(axis=1) if v.size else np.zeros(v.shape[0], np.float32)
    inv = np.divide(1.0, top, out=np.zeros_like(top), where=top > 0).astype(np.float32)
    q = np.sqrt(v * inv[:, None, None]) * np.float32(255)
    q = np.rint(q, out=q).astype(np.uint8)
    return q, (top / np.float32(255 * 255)).astype(np.float32)


def decode_patterns(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode_patterns`: float32 ``scale * q**2``, shape of ``q``."""
    qf = np.asarray(q, dtype=np.float32)
    return qf * qf * np.asarray(scale, np.float32).reshape(-1, *([1] * (qf.ndim - 1)))


def explorer_block(X_block: np.ndarray, rows_index: int | np.ndarray, *,
                   scan_shape: Sequence[int], pattern_shape: Sequence[int], bin: int,
                   step: int) -> ExplorerBlock:
    """Per-block kernel: the stored positions among a block of rows, binned and encoded.

    Parameters
    ----------
    X_block : ndarray or scipy.sparse CSR matrix of shape (m, ky * kx)
        Rows of the factorised data matrix (one pattern per row, row-major scan order).
    rows_index : int or ndarray of shape (m,)
        Global row of each row of the block, or the first row of a contiguous block.
    scan_shape : (int, int)
    pattern_shape : (int, int)
        (ky, kx) of the rows.
    bin, step : int
        From :func:`explorer_layout`.

    Returns
    -------
    ExplorerBlock
        ``index`` into ``explorer/patterns`` and the block's ``patterns`` and ``scale``
        (empty when the block holds no stored position).
    """
    # a scipy.sparse CSR block (sparse counts) is used as it is: only the stored rows are
    # expanded (duck-typed on ``toarray``, so this module still imports only numpy)
    sparse = hasattr(X_block, "toarray")
    X = X_block if sparse else np.asarray(X_block)
    m = X.shape[0]
    ky, kx = (int(v) for v in pattern_shape)
    if len(X.shape) != 2 or X.shape[1] != ky * kx:
        raise ValueError(f"X_block must be (m, {ky * kx}), got {X.shape}")
    rows = (np.arange(m, dtype=np.int64) + int(rows_index) if np.ndim(rows_index) == 0
            else np.asarray(rows_index, dtype=np.int64))
    if rows.shape != (m,):
        raise ValueError(f"rows_index must give {m} rows, got shape {rows.shape}")
    sx = int(scan_shape[1])
    off = grid_offset(step)
    y, x = np.divmod(rows, sx)
    sel = (y >= off) & (x >= off) & ((y - off) % step == 0) & ((x - off) % step == 0)
    gx = grid_shape(scan_shape, step)[1]
    index = ((y[sel] - off) // step) * gx + (x[sel] - off) // step
    chosen = X[np.flatnonzero(sel)].toarray() if sparse else X[sel]
    q, scale = encode_patterns(bin_sum(chosen.reshape(-1, ky, kx), bin))
    return ExplorerBlock(index.astype(np.int64), q, scale)


def write_explorer(group, *, patterns: np.ndarray, scale: np.ndarray, bin: int, step: int,
                   scan_shape: Sequence[int], pattern_shape: Sequence[int],
                   components: np.ndarray | None = None,
                   budget_bytes: int = DEFAULT_BUDGET) -> None:
    """Write the ``explorer/`` datasets and attributes into an (empty) HDF5 group.

    Parameters
    ----------
    group : h5py.Group
        E.g. ``f.require_group("explorer")`` of the results file.
    patterns : ndarray of shape (n_sel, by, bx), uint8
    scale : ndarray of shape (n_sel,), float32
        Both in the order of :func:`explorer_positions` (``ExplorerBlock.index``).
    bin, step : int
    scan_shape, pattern_shape : (int, int)
    components : ndarray of shape (k, ky, kx), optional
        The full-resolution components (the root ``components``); stored binned.
    budget_bytes : int
        Recorded as an attribute.
    """
    positions = explorer_positions(scan_shape, step)
    by, bx = binned_shape(pattern_shape, bin)
    if patterns.shape != (positions.shape[0], by, bx) or patterns.dtype != np.uint8:
        raise ValueError(f"patterns must be uint8 {(positions.shape[0], by, bx)}, "
                         f"got {patterns.dtype} {patterns.shape}")
    chunk = (int(max(1, min(patterns.shape[0], 2**20 // max(by * bx, 1)))), by, bx)
    group.create_dataset("patterns", data=patterns, chunks=chunk, compression="gzip",
                         compression_opts=4, shuffle=False)
    group.create_dataset("scale", data=np.asarray(scale, np.float32))
    group.create_dataset("positions", data=positions)
    if components is not None:
        group.create_dataset("components", data=bin_sum(components, bin))
    for key, val in (("version", VERSION), ("encoding", ENCODING), ("bin", int(bin)),
                     ("step", int(step)), ("offset", grid_offset(step)),
                     ("budget_bytes", int(budget_bytes))):
        group.attrs[key] = val
    group.attrs["scan_shape"] = np.asarray(scan_shape, np.int32)
    group.attrs["pattern_shape"] = np.asarray(pattern_shape, np.int32)
    group.attrs["binned_shape"] = np.asarray((by, bx), np.int32)


def explorer_from_array(data4d: Any, *, components: np.ndarray | None = None,
                        budget_bytes: int = DEFAULT_BUDGET, n_components: int | None = None,
                        block_rows: int = 2048) -> dict:
    """Layout, kernel over row blocks, and everything :func:`write_explorer` takes.

    Parameters
    ----------
    data4d : array-like of shape (scan_y, scan_x, ky, kx)
        The factorised (preprocessed) data; numpy, memory-mapped or dask (read one row
        block at a time).
    components : ndarray of shape (k, ky, kx), optional
    budget_bytes : int
    n_components : int, optional
        k for the budget (default ``len(components)`` or 0).
    block_rows : int
        Rows of the data matrix per block.

    Returns
    -------
    dict
        Keyword arguments of :func:`write_explorer`.
    """
    sy, sx, ky, kx = (int(v) for v in data4d.shape)
    k = n_components if n_components is not None else (0 if components is None
                                                         else len(components))
    b, step = explorer_layout((sy, sx), (ky, kx), budget_bytes=budget_bytes, n_components=k)
    n_sel = int(np.prod(grid_shape((sy, sx), step)))
    by, bx = binned_shape((ky, kx), b)
    patterns = np.zeros((n_sel, by, bx), np.uint8)
    scale = np.zeros(n_sel, np.float32)
    flat = data4d.reshape(sy * sx, ky * kx)
    pos = explorer_positions((sy, sx), step)
    rows = pos[:, 0].astype(np.int64) * sx + pos[:, 1]      # only stored rows are read
    for i0 in range(0, rows.size, block_rows):
        r = rows[i0:i0 + block_rows]
        # contiguous rows as a slice (memory maps, dask); a subsample by index
        block = flat[int(r[0]):int(r[0]) + r.size] if step == 1 else flat[r]
        blk = explorer_block(np.asarray(block), r, scan_shape=(sy, sx),
                             pattern_shape=(ky, kx), bin=b, step=step)
        patterns[blk.index] = blk.patterns
        scale[blk.index] = blk.scale
    return dict(patterns=patterns, scale=scale, bin=b, step=step, scan_shape=(sy, sx),
                pattern_shape=(ky, kx), components=components, budget_bytes=budget_bytes)


def add_explorer(results_path, data4d: Any, *, budget_bytes: int = DEFAULT_BUDGET) -> dict:
    """Add (or replace) the ``explorer/`` group of an existing results file.

    Parameters
    ----------
    results_path : str or path-like
        ``OUT/results.h5``.
    data4d : array-like of shape (scan_y, scan_x, ky, kx)
        The data that was factorised (same scan and pattern shape as the results).
    budget_bytes : int

    Returns
    -------
    dict
        The layout written: ``bin``, ``step``, ``n_sel``, ``binned_shape``.
    """
    import h5py

    with h5py.File(results_path, "a") as f:
        comps = f["components"][()]
        scan = tuple(f["labels"].shape)
        if tuple(data4d.shape) != scan + comps.shape[1:]:
            raise ValueError(f"data of shape {tuple(data4d.shape)} do not match the results "
                             f"(scan {scan}, patterns {comps.shape[1:]})")
        kw = explorer_from_array(data4d, components=comps, budget_bytes=budget_bytes)
        if "explorer" in f:
            del f["explorer"]
        write_explorer(f.create_group("explorer"), **kw)
    return {"bin": kw["bin"], "step": kw["step"], "n_sel": int(kw["patterns"].shape[0]),
            "binned_shape": kw["patterns"].shape[1:]}


__all__ = ["DEFAULT_BUDGET", "MAX_WEIGHT_MAPS", "ExplorerBlock", "ExplorerPlan", "add_explorer",
           "bin_sum", "decode_patterns", "encode_patterns", "explorer_block",
           "explorer_from_array", "explorer_layout", "explorer_nbytes",
           "explorer_plan", "explorer_positions", "write_explorer"]


class ExplorerPlan(NamedTuple):
    """The explorer's layout and per-block kernel, before the pass over the data.

    Run ``kernel(X_block, start)`` on every row block (blocks in any order, on any
    executor: it is a ``functools.partial`` of :func:`explorer_block`), then
    :meth:`assemble` the results.
    """

    kernel: Any
    bin: int
    step: int
    scan_shape: tuple
    pattern_shape: tuple
    components: Any
    budget_bytes: int

    def assemble(self, blocks) -> dict:
        """Keyword arguments of :func:`write_explorer` from the kernel's block results."""
        n_sel = int(np.prod(grid_shape(self.scan_shape, self.step)))
        by, bx = binned_shape(self.pattern_shape, self.bin)
        patterns = np.zeros((n_sel, by, bx), np.uint8)
        scale = np.zeros(n_sel, np.float32)
        for blk in blocks:
            patterns[blk.index] = blk.patterns
            scale[blk.index] = blk.scale
        return dict(patterns=patterns, scale=scale, bin=self.bin, step=self.step,
                    scan_shape=self.scan_shape, pattern_shape=self.pattern_shape,
                    components=self.components, budget_bytes=self.budget_bytes)


def explorer_plan(*, scan_shape: Sequence[int], pattern_shape: Sequence[int],
                  components: np.ndarray | None = None,
                  budget_bytes: int = DEFAULT_BUDGET) -> ExplorerPlan:
    """The layout (:func:`explorer_layout`) and the per-block kernel, for a pass that the
    caller makes (the pipeline's maps pass reads every block once for all its needs).

    Parameters
    ----------
    scan_shape, pattern_shape : (int, int)
    components : ndarray of shape (k, ky, kx), optional
    budget_bytes : int

    Returns
    -------
    ExplorerPlan
    """
    from functools import partial

    (sy, sx), (ky, kx) = (tuple(int(v) for v in s) for s in (scan_shape, pattern_shape))
    k = 0 if components is None else len(components)
    b, step = explorer_layout((sy, sx), (ky, kx), budget_bytes=budget_bytes, n_components=k)
    kernel = partial(explorer_block, scan_shape=(sy, sx), pattern_shape=(ky, kx), bin=b,
                     step=step)
    return ExplorerPlan(kernel, b, step, (sy, sx), (ky, kx), components, budget_bytes)

