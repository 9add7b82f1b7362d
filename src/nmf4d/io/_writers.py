"""Writing arrays to .npy, .zarr and HDF5, atomically.

The array is written in a hidden staging folder beside the destination and renamed
onto it (:func:`nmf4d.outputs.atomic_path`), so a reader never sees a half-written file
and a failed or killed write leaves nothing behind that the next write does not remove.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..outputs import atomic_path
from ._readers_common import fail, short

#: Extension -> format name for `save_dataset`.
WRITABLE_EXTENSIONS: dict[str, str] = {
    ".npy": "npy",
    ".zarr": "zarr",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
}

_H5_CHUNK_BYTES = 1 << 20  # HDF5's default chunk cache is 1 MiB
_ZARR_CHUNK_BYTES = 8 << 20


def default_chunks(shape: tuple[int, ...], itemsize: int,
                   target: int) -> tuple[int, ...] | None:
    """Chunks holding whole patterns (last two axes), about ``target`` bytes each.

    Returns None for arrays of fewer than three dimensions.
    """
    if len(shape) < 3 or 0 in shape:
        return None
    pattern = math.prod(shape[-2:]) * itemsize
    budget = max(1, target // max(1, pattern))
    chunks = [1] * (len(shape) - 2) + list(shape[-2:])
    for dim in reversed(range(len(shape) - 2)):
        take = int(max(1, min(shape[dim], budget)))
        chunks[dim] = take
        if take < shape[dim]:
            break
        budget //= max(1, shape[dim])
    return tuple(chunks)


def _user_chunks(chunks: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    try:
        values = tuple(int(c) for c in chunks)
    except (TypeError, ValueError):
        values = ()
    if len(values) != len(shape) or any(c == 0 or c < -1 for c in values):
        raise fail(f"chunks={chunks!r}: expected {len(shape)} positive integers (or -1) "
                   f"for shape {shape}")
    return tuple(n if c == -1 else min(c, n) for c, n in zip(values, shape))


def _is_zarr_store(path: Path) -> bool:
    return path.is_dir() and any(
        (path / name).exists() for name in ("zarr.json", ".zarray", ".zgroup"))


def _write_npy(arr: Any, tmp: Path) -> None:
    import dask.array as da

    if isinstance(arr, da.Array):
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=arr.dtype, shape=arr.shape)
        try:
            da.store(arr, out, lock=False, scheduler="threads")
            out.flush()
        finally:
            del out
    else:
        with open(tmp, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)


def _write_hdf5(arr: Any, tmp: Path, inner: str, chunks: Any) -> None:
    import dask.array as da
    import h5py

    shape = tuple(int(n) for n in arr.shape)
    if chunks is None:
        chunks = default_chunks(shape, arr.dtype.itemsize, _H5_CHUNK_BYTES)
    with h5py.File(tmp, "w") as h5file:
        dset = h5file.create_dataset(inner, shape=shape, dtype=arr.dtype, chunks=chunks)
        if isinstance(arr, da.Array):
            da.store(arr, dset, lock=True, scheduler="threads")
        else:
            dset[...] = arr


def _write_zarr(arr: Any, tmp: Path, inner: str, chunks: Any) -> None:
    import dask.array as da
    import zarr

    shape = tuple(int(n) for n in arr.shape)
    if chunks is None:
        chunks = default_chunks(shape, arr.dtype.itemsize, _ZARR_CHUNK_BYTES) or shape
    if inner:
        root = zarr.open_group(str(tmp), mode="w")
        create = getattr(root, "create_array", None) or root.create_dataset
        out = create(inner, shape=shape, dtype=arr.dtype, chunks=chunks)
    else:
        out = zarr.open_array(str(tmp), mode="w", shape=shape, dtype=arr.dtype,
                              chunks=chunks)
    if isinstance(arr, da.Array):
        da.store(arr.rechunk(chunks), out, lock=False)
    else:
        out[...] = arr


def save_dataset(data: Any, path: str | os.PathLike, *, dataset: str | None = "data",
                 overwrite: bool = False, chunks: tuple[int, ...] | None = None) -> None:
    """Write an array to .npy, .zarr or .h5/.hdf5, atomically.

    Parameters
    ----------
    data : numpy.ndarray or dask.array.Array
        The array (any shape; 4D scans are ``(scan_y, scan_x, ky, kx)``).
    path : str or path-like
        Destination; its extension picks the format.
    dataset : str or None, default ``"data"``
        Path of the array inside an HDF5 file (required there) or a zarr group (None
        or ``""`` writes a bare zarr array). Ignored for .npy.
    overwrite : bool, default False
        Replace an existing destination (a file, or a zarr folder for .zarr).
    chunks : tuple of int or None
        Chunk shape for zarr/HDF5; by default whole patterns (last two axes), about
        8 MiB (zarr) or 1 MiB (HDF5) per chunk.

    Raises
    ------
    InputError
        Unsupported extension, existing destination without ``overwrite``, a
        destination that is a folder (other than a zarr store), bad ``chunks``,
        non-numeric data.

    Notes
    -----
    A dask array is written to .npy and HDF5 with dask's threaded scheduler (workers of
    a distributed cluster cannot write into this process's file); zarr uses the
    active scheduler.
    """
    import dask.array as da

    target = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    fmt = WRITABLE_EXTENSIONS.get(target.suffix.lower())
    if fmt is None:
        raise fail(f"cannot write {target.name}: extension '{target.suffix or '(none)'}' "
                   f"is not one of {', '.join(WRITABLE_EXTENSIONS)}")
    if os.path.lexists(target):
        if not overwrite:
            raise fail(f"output {target} already exists; pass overwrite=True (--overwrite) "
                       "to replace it")
        if target.is_dir() and not (fmt == "zarr" and _is_zarr_store(target)):
            raise fail(f"output {target} is an existing folder; refusing to replace it")
    arr = data if isinstance(data, da.Array) else np.asarray(data)
    if arr.dtype.kind not in "biufc":
        raise fail(f"cannot write {target.name}: dtype {arr.dtype} is not numeric")
    inner = (dataset or "").strip("/")
    if fmt == "hdf5" and not inner:
        raise fail(f"cannot write {target.name}: an HDF5 output needs a dataset path")
    shape = tuple(int(n) for n in arr.shape)
    if chunks is not None and fmt != "npy":
        chunks = _user_chunks(chunks, shape)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"cannot create folder {target.parent}: {short(exc)}") from exc
    with atomic_path(target, overwrite=overwrite) as tmp:
        if fmt == "npy":
            _write_npy(arr, tmp)
        elif fmt == "hdf5":
            _write_hdf5(arr, tmp, inner, chunks)
        else:
            _write_zarr(arr, tmp, inner, chunks)
