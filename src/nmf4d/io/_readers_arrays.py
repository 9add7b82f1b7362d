"""Readers for plain array containers: .npy, zarr and HDF5.

Each reader builds a lazy dask array from the file's header alone. The .npy and HDF5
readers use small picklable wrappers (`_NpyArray`, `_H5Array`) that open the file
read-only on first access in each process, so the dask graph also works with
``dask.distributed`` worker processes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ._readers_common import (
    ReadGuard,
    _Source,
    auto_chunks,
    check_dtype,
    fail,
    file_token,
    list_items,
    path_size,
    short,
)


class _NpyArray:
    """Read-only, lazily memory-mapped view of the array in a .npy file.

    Only ``shape``, ``dtype`` and ``ndim`` are known until it is indexed; indexing maps
    the file (mode ``'r'``) and returns a copy of the selection.
    """

    def __init__(self, path: str, shape: tuple[int, ...], dtype: np.dtype,
                 fortran_order: bool, offset: int, token: tuple) -> None:
        self.path = path
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self.fortran_order = fortran_order
        self.offset = offset
        self.token = token
        self._mm: np.memmap | None = None

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            if self._mm is None:
                self._mm = np.memmap(self.path, dtype=self.dtype, mode="r",
                                     offset=self.offset, shape=self.shape,
                                     order="F" if self.fortran_order else "C")
            return np.array(self._mm[key])
        except OSError:
            raise                          # errno and file name: exits.describe names it
        except Exception as exc:  # noqa: BLE001 - the file changed under us
            raise fail(f"cannot read {Path(self.path).name}: {short(exc)}") from exc

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_mm"] = None
        return state

    def __dask_tokenize__(self) -> tuple:
        return ("nmf4d-npy", self.token, self.offset)


class _H5Array:
    """Read-only HDF5 dataset opened by path on first access in each process."""

    def __init__(self, path: str, name: str, shape: tuple[int, ...], dtype: np.dtype,
                 token: tuple) -> None:
        self.path = path
        self.name = name
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self.token = token
        self._file: Any = None

    def __getitem__(self, key: Any) -> np.ndarray:
        import h5py

        try:
            if self._file is None or not self._file.id.valid:
                self._file = h5py.File(self.path, "r")
            return np.asarray(self._file[self.name][key])
        except Exception as exc:  # noqa: BLE001 - a corrupt chunk, a changed file
            if isinstance(exc, OSError) and exc.errno is not None and exc.filename:
                raise                      # errno and file name: exits.describe names it
            raise fail(f"cannot read {Path(self.path).name}: {short(exc)}") from exc

    def close(self) -> None:
        """Close the file handle held in this process."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"] = None
        return state

    def __dask_tokenize__(self) -> tuple:
        return ("nmf4d-h5", self.token, self.name)


def _from_wrapper(wrapper: Any, chunks: Any, previous: tuple | None) -> Any:
    import dask.array as da

    spec = auto_chunks(wrapper.shape, wrapper.dtype, chunks, previous)
    try:
        return da.from_array(wrapper, chunks=spec, asarray=False, fancy=False,
                             meta=np.empty((0,) * wrapper.ndim, dtype=wrapper.dtype))
    except (ValueError, TypeError) as exc:
        raise fail(f"chunks={chunks!r}: not usable for shape {wrapper.shape}: "
                   f"{short(exc)}") from exc


def _npy_header(path: Path) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Shape, Fortran order, dtype and data offset from a .npy header."""
    fmt = np.lib.format
    with open(path, "rb") as fh:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh, max_header_size=1 << 20)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(fh, max_header_size=1 << 20)
        else:
            mm = np.load(path, mmap_mode="r")
            return mm.shape, bool(mm.flags.f_contiguous and not mm.flags.c_contiguous), \
                mm.dtype, int(mm.offset)
        return tuple(shape), bool(fortran), np.dtype(dtype), fh.tell()


def read_npy(path: Path, *, dataset: str | None, scan_shape: Any, chunks: Any,
             check_content: bool = True) -> _Source:
    """Open a .npy file lazily (header only; data memory-mapped on compute)."""
    name = path.name
    try:
        shape, fortran, dtype, offset = _npy_header(path)
    except Exception as exc:  # noqa: BLE001 - any parser failure means a bad file
        raise fail(f"cannot read {name} as a .npy file: {short(exc)}") from exc
    if dtype.hasobject:
        raise fail(f"{name}: dtype {dtype} holds Python objects; expected numeric data")
    check_dtype(dtype, name)
    needed = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = path.stat().st_size
    if size < needed:
        raise fail(f"{name}: file is truncated ({size} bytes, the header needs {needed})")
    wrapper = _NpyArray(str(path), shape, dtype, fortran, offset, file_token(path))
    data = _from_wrapper(wrapper, chunks, None)
    return _Source(data=data, metadata={}, storage_chunks=None, size_on_disk=size)


# --------------------------------------------------------------------------- zarr
def _zarr_arrays(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    found = []
    for key, arr in group.arrays():
        found.append((f"{prefix}{key}", arr))
    for key, sub in group.groups():
        found.extend(_zarr_arrays(sub, f"{prefix}{key}/"))
    return found


def _describe(items: list[tuple[str, Any]]) -> str:
    if not items:
        return "none"
    return list_items([f"{p} {tuple(a.shape)} {np.dtype(a.dtype)}" for p, a in items])


def read_zarr(path: Path, *, dataset: str | None, scan_shape: Any, chunks: Any,
              check_content: bool = True) -> _Source:
    """Open a zarr array, or an array inside a zarr group, lazily and read-only."""
    import dask.array as da
    import zarr

    name = path.name
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # noqa: BLE001
        raise fail(f"cannot read {name} as zarr: {short(exc)}") from exc
    inner = (dataset or "").strip("/")
    if hasattr(node, "arrays"):  # a group
        arrays = _zarr_arrays(node)
        if inner:
            try:
                arr = node[inner]
            except KeyError:
                arr = None
            if arr is None or hasattr(arr, "arrays"):
                kind = "a group" if arr is not None else "not found"
                raise fail(f"{name}: --dataset '{dataset}' is {kind}; arrays inside: "
                           f"{_describe(arrays)}")
        elif len(arrays) == 1:
            inner, arr = arrays[0]
        else:
            what = "no arrays" if not arrays else f"arrays inside: {_describe(arrays)}"
            raise fail(f"{name}: zarr group needs --dataset PATH; {what}")
    else:
        if inner:
            raise fail(f"{name}: holds a single array, --dataset '{dataset}' does not "
                       "apply")
        arr = node
    dtype = np.dtype(arr.dtype)
    check_dtype(dtype, name)
    storage = tuple(int(c) for c in arr.chunks) if arr.chunks else None
    spec = auto_chunks(tuple(arr.shape), dtype, chunks, storage)
    try:
        guard = ReadGuard(arr, name, file_token(path) + (inner,))
        data = da.from_array(guard, chunks=spec, asarray=False, fancy=False,
                             meta=np.empty((0,) * guard.ndim, dtype=dtype))
    except (ValueError, TypeError) as exc:
        raise fail(f"chunks={chunks!r}: not usable for shape {tuple(arr.shape)}: "
                   f"{short(exc)}") from exc
    meta = {"dataset": inner} if inner else {}
    return _Source(data=data, metadata=meta, storage_chunks=storage,
                   size_on_disk=path_size(path))


# --------------------------------------------------------------------------- HDF5
def _h5_arrays(h5file: Any) -> list[tuple[str, Any]]:
    import h5py

    found: list[tuple[str, Any]] = []

    def visit(key: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and obj.ndim >= 1:
            found.append((key, obj))

    h5file.visititems(visit)
    return found


def read_hdf5(path: Path, *, dataset: str | None, scan_shape: Any, chunks: Any,
              check_content: bool = True) -> _Source:
    """Open the dataset ``dataset`` of an HDF5 file lazily and read-only."""
    import h5py

    name = path.name
    try:
        h5file = h5py.File(path, "r")
    except Exception as exc:  # noqa: BLE001
        raise fail(f"cannot read {name} as HDF5: {short(exc)}") from exc
    try:
        inner = (dataset or "").strip("/")
        if not inner:
            raise fail(f"{name}: HDF5 input needs --dataset PATH; array datasets inside: "
                       f"{_describe(_h5_arrays(h5file))}")
        obj = h5file.get(inner)
        if not isinstance(obj, h5py.Dataset):
            kind = "not found" if obj is None else "a group, not a dataset"
            raise fail(f"{name}: --dataset '{dataset}' is {kind}; array datasets inside: "
                       f"{_describe(_h5_arrays(h5file))}")
        shape, dtype = tuple(int(n) for n in obj.shape), obj.dtype
        if dtype.names is not None or dtype.kind in "OSUV":
            raise fail(f"{name}: dataset '{inner}' has dtype {dtype}; expected numeric "
                       "data")
        check_dtype(dtype, f"{name}:{inner}")
        storage = tuple(int(c) for c in obj.chunks) if obj.chunks else None
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt file: h5py fails while looking
        raise fail(f"cannot read {name} as HDF5: {short(exc)}") from exc
    finally:
        h5file.close()
    wrapper = _H5Array(str(path), inner, shape, dtype, file_token(path))
    data = _from_wrapper(wrapper, chunks, storage)
    return _Source(data=data, metadata={"dataset": inner}, storage_chunks=storage,
                   size_on_disk=path_size(path), resources=[wrapper])
