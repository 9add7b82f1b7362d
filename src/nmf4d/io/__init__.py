"""Reading and writing 4D-STEM scans.

`open_dataset` opens any supported input lazily as a dask array of shape
``(scan_y, scan_x, ky, kx)``; `dataset_info` describes an input from its headers only;
`save_dataset` writes .npy, .zarr or HDF5 atomically. The reader is chosen by
extension (or, for a folder, zarr store vs. folder of images); see
`SUPPORTED_FORMATS`. Every problem with the input raises `nmf4d.errors.InputError`
with a one-line message. Inputs are always opened read-only.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, warn_data
from ._readers_arrays import read_hdf5, read_npy, read_zarr
from ._readers_common import (
    EXTENSIONS,
    IMAGE_EXTENSIONS,
    SUPPORTED_FORMATS,
    Dataset,
    _Source,
    as_scan_4d,
    check_dtype,
    clean_axes,
    detect_format,
    fail,
    finish_chunks,
    jsonable,
    parse_scan_shape,
)
from ._readers_images import read_images
from ._readers_rsciio import read_rsciio
from ._writers import WRITABLE_EXTENSIONS, save_dataset

__all__ = [
    "Dataset",
    "open_dataset",
    "dataset_info",
    "save_dataset",
    "SUPPORTED_FORMATS",
    "EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "WRITABLE_EXTENSIONS",
    "InputError",
]

_LOCAL_READERS = {"npy": read_npy, "zarr": read_zarr, "hdf5": read_hdf5,
                  "images": read_images}
_FOLDER_OK = {"zarr", "zspy", "images"}


def _resolve(path: str | os.PathLike) -> Path:
    try:
        raw = os.fspath(path)
    except TypeError as exc:
        raise fail(f"input {path!r}: expected a file or folder path") from exc
    full = Path(os.path.abspath(os.path.expanduser(raw)))
    if not full.exists():
        raise fail(f"input not found: {raw}")
    return full


def _open_source(path: str | os.PathLike, dataset: Any, scan_shape: Any, chunks: Any,
                 check_content: bool) -> tuple[Path, str, _Source, Any, list | None]:
    """Run the right reader and bring its array to (scan_y, scan_x, ky, kx)."""
    full = _resolve(path)
    fmt = detect_format(full)
    if full.is_dir() and fmt not in _FOLDER_OK:
        raise fail(f"input {full.name} is a folder; a {fmt} input must be a file")
    if dataset is not None and not isinstance(dataset, str):
        raise fail(f"--dataset {dataset!r}: expected a path string inside the file")
    shape = parse_scan_shape(scan_shape)
    reader_kwargs = dict(dataset=dataset, scan_shape=shape, chunks=chunks,
                         check_content=check_content)
    if fmt in _LOCAL_READERS:
        if fmt == "npy" and dataset is not None:
            raise fail(f"{full.name}: --dataset '{dataset}' does not apply to a .npy file")
        source = _LOCAL_READERS[fmt](full, **reader_kwargs)
    else:
        source = read_rsciio(full, fmt, **reader_kwargs)
    try:
        data, axes = as_scan_4d(source.data, scan_shape=shape, name=full.name,
                                axes=source.axes)
        check_dtype(data.dtype, full.name)
        if data.dtype == np.bool_:
            if check_content:
                warn_data(f"{full.name}: boolean data converted to uint8 (0 and 1)")
            data = data.astype(np.uint8)
    except BaseException:
        _close_all(source.resources)
        raise
    return full, fmt, source, data, axes


def _close_all(resources: list) -> None:
    for resource in resources:
        try:
            resource.close()
        except Exception:  # noqa: BLE001 - best effort
            pass


def open_dataset(path: str | os.PathLike, *, dataset: str | None = None,
                 scan_shape: tuple[int, int] | None = None,
                 chunks: Any = "auto") -> Dataset:
    """Open a 4D-STEM scan lazily, read-only, as ``(scan_y, scan_x, ky, kx)``.

    Parameters
    ----------
    path : str or path-like
        A file (.npy, .zarr, .h5/.hdf5, .hspy, .zspy, .blo, .mib, .emd, .dm4/.dm3) or a
        folder of .bmp/.png/.tif/.tiff patterns.
    dataset : str, optional
        Array inside an HDF5 file (required), a zarr group (when it holds several
        arrays) or an NCEM EMD file (rosettasciio's ``dataset_path``).
    scan_shape : tuple of int, optional
        ``(Y, X)``. Required for a folder of images and for a 3D stack
        ``(n, ky, kx)``, which is reshaped row-major; for a .mib file it overrides the
        .hdr; for other 4D inputs it must match the file.
    chunks : "auto" or dask chunk spec, default "auto"
        Dask chunks of `Dataset.data`; "auto" keeps each pattern whole in a block and
        follows the storage chunks where there are some.

    Returns
    -------
    Dataset
        The lazy data, absolute path, format name and JSON-serialisable metadata.

    Raises
    ------
    InputError
        Missing file, unknown extension, unreadable file, missing or unknown
        ``dataset``, data that is not 4D (3D without ``scan_shape``), a ``scan_shape``
        that does not match, images of mixed sizes, an empty folder, complex or
        non-numeric data.
    """
    full, fmt, source, data, axes = _open_source(path, dataset, scan_shape, chunks, True)
    try:
        data = finish_chunks(data, chunks)
    except BaseException:
        _close_all(source.resources)
        raise
    metadata = dict(source.metadata)
    cleaned = clean_axes(axes)
    if cleaned:
        metadata["axes"] = cleaned
    return Dataset(data=data, path=str(full), format=fmt, metadata=jsonable(metadata),
                   _resources=list(source.resources))


def dataset_info(path: str | os.PathLike, *, dataset: str | None = None,
                 scan_shape: tuple[int, int] | None = None) -> dict:
    """Describe an input from its headers, without reading pattern data.

    Parameters
    ----------
    path, dataset, scan_shape
        As for `open_dataset`.

    Returns
    -------
    dict
        ``path`` (absolute, str), ``format`` (str), ``shape`` (tuple, as
        `open_dataset` would return it), ``dtype`` (str), ``nbytes`` (size in memory),
        ``size_on_disk`` (bytes, including a .mib's .hdr), ``chunks`` (storage chunk
        shape for zarr/HDF5, the reader's block shape for rosettasciio formats, None for
        contiguous .npy and image folders).

    Raises
    ------
    InputError
        As for `open_dataset`.
    """
    full, fmt, source, data, _axes = _open_source(path, dataset, scan_shape, "auto",
                                                  False)
    try:
        shape = tuple(int(n) for n in data.shape)
        dtype = np.dtype(data.dtype)
        stored = np.dtype(source.data.dtype)          # the file's (bool before uint8)
        return {
            "path": str(full),
            "format": fmt,
            "shape": shape,
            "dtype": str(stored if stored == np.bool_ else dtype),
            "nbytes": int(np.prod(shape, dtype=np.int64)) * dtype.itemsize,
            "size_on_disk": int(source.size_on_disk),
            "chunks": source.storage_chunks,
        }
    finally:
        _close_all(source.resources)
