"""Readers built on rosettasciio: .hspy, .zspy, .blo, .mib, .emd, .dm4/.dm3.

Every file is read with ``file_reader(path, lazy=True)`` of the matching rsciio
module, so only headers are parsed until the dask array is computed.

Axis order. rsciio returns ``data`` with an ``axes`` list in array order, each axis
flagged ``navigate`` (scan) or not (pattern). The reader moves the navigation axes in
front of the signal axes, keeping their relative order, which gives
``(scan_y, scan_x, ky, kx)``; when the flags do not tell (all equal, as in NCEM EMD
files) the array order is kept. With the real test files this is the identity:

* ``.blo``: rsciio gives ``(NY, NX, DP, DP)`` with axes ``y, x, dy, dx``.
* ``.mib``: rsciio gives ``(Y, X, ky, kx)``; the scan shape comes from the ``.hdr``
  (``--scan-shape Y,X`` is passed on as rsciio's ``navigation_shape=(X, Y)``); rsciio
  flips each frame upside down (``np.flip(axis=-2)``), which is kept as is.
* ``.hspy``/``.zspy``: the axes as saved by HyperSpy (navigation first for a
  Signal2D; files whose flags put the signal axes first are reordered).
* ``.dm4``: rsciio reverses DM's dimension list, giving ``(scan_y, scan_x, ky, kx)``
  with the last two flagged as signal for files stored in C order (tag
  ``Data Order Swapped`` = 1); files tagged 0 use DM's older (signal, navigation)
  byte order, which rsciio does not undo, and are refused.
"""
from __future__ import annotations

import importlib
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ._readers_common import (_Source, fail, file_token, guard_reads, list_items, path_size,
                              short)

_MODULES = {
    "hspy": ("rsciio.hspy", "HyperSpy .hspy"),
    "zspy": ("rsciio.zspy", "HyperSpy .zspy"),
    "blo": ("rsciio.blockfile", "blockfile"),
    "mib": ("rsciio.quantumdetector", "Merlin .mib"),
    "emd": ("rsciio.emd", "EMD"),
    "dm4": ("rsciio.digitalmicrograph", "DigitalMicrograph"),
}


def _ordered_axes(signal: dict) -> tuple[Any, list]:
    """Data and axes with the navigation axes first (relative order kept)."""
    import dask.array as da

    data = signal["data"]
    if not isinstance(data, da.Array):  # a reader that ignored lazy=True
        data = da.from_array(np.asarray(data), chunks="auto")
    axes = list(signal.get("axes") or [])
    if len(axes) == data.ndim and all("index_in_array" in ax for ax in axes):
        axes = sorted(axes, key=lambda ax: ax["index_in_array"])
    if len(axes) != data.ndim:
        return data, [dict(name="", size=int(n)) for n in data.shape]
    flags = [bool(ax.get("navigate", True)) for ax in axes]
    if any(flags) and not all(flags):
        order = [i for i, f in enumerate(flags) if f] + [i for i, f in enumerate(flags) if not f]
        if order != list(range(data.ndim)):
            data = data.transpose(order)
            axes = [axes[i] for i in order]
    return data, axes


def _title(signal: dict, index: int) -> str:
    title = ""
    try:
        title = str(signal["metadata"]["General"]["title"])
    except (KeyError, TypeError):
        pass
    return title or f"signal {index}"


def _squeezed_ndim(data: Any) -> int:
    shape = list(data.shape)
    while len(shape) > 4 and shape[0] == 1:
        shape.pop(0)
    return len(shape)


def _pick_signal(signals: list[dict], name: str, scan_shape: Any) -> int:
    """Index of the one 4D signal (or 3D stack when ``scan_shape`` is given)."""
    if len(signals) == 1:
        return 0
    listing = list_items([f"'{_title(s, i)}' {tuple(s['data'].shape)}"
                          for i, s in enumerate(signals)])
    ndims = [_squeezed_ndim(s["data"]) for s in signals]
    candidates = [i for i, n in enumerate(ndims) if n == 4]
    if not candidates and scan_shape is not None:
        candidates = [i for i, n in enumerate(ndims) if n == 3]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise fail(f"{name}: no 4D signal among {len(signals)} signals: {listing}")
    raise fail(f"{name}: several 4D signals, pick one with --dataset (EMD) or split the "
               f"file: {listing}")


def _find_key(tree: Any, wanted: str, depth: int = 0) -> Any:
    if not isinstance(tree, dict) or depth > 12:
        return None
    for key, value in tree.items():
        if str(key).replace(" ", "_").lower() == wanted:
            return value
        found = _find_key(value, wanted, depth + 1)
        if found is not None:
            return found
    return None


def _check_dm_order(signal: dict, name: str) -> None:
    swapped = _find_key(signal.get("original_metadata") or {}, "data_order_swapped")
    if swapped is None:
        warnings.warn(
            f"{name}: no 'Data Order Swapped' tag; assuming C-ordered 4D data "
            "(scan_y, scan_x, ky, kx)", UserWarning, stacklevel=4)
        return
    try:
        c_order = bool(int(swapped))
    except (TypeError, ValueError):
        c_order = bool(swapped)
    if not c_order:
        raise fail(f"{name}: 4D data stored in DigitalMicrograph's older (signal, "
                   "navigation) order, which is not supported; save it from GMS in C "
                   "order or convert it to .npy/.hspy first")


_BLO_HEADER = struct.Struct("<6sHIIIHHHH")  # ID, MAGIC, offsets 1-2, flags, DP_SZ, rot, NX, NY


def _check_blockfile(path: Path) -> None:
    """Refuse a .blo whose header is not a blockfile's or does not fit the file size.

    rosettasciio only warns on a bad signature and, read lazily, sizes its task list
    from the header, so a corrupt header could ask for an enormous graph.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(_BLO_HEADER.size)
    if len(head) < _BLO_HEADER.size:
        raise fail(f"cannot read {path.name} (blockfile): file too short for a header")
    _id, magic, _off1, off2, _flags, dp_size, _rot, nx, ny = _BLO_HEADER.unpack(head)
    if magic != 0x0102:
        raise fail(f"cannot read {path.name} (blockfile): bad signature 0x{magic:04x}, "
                   "not a NanoMegas blockfile")
    needed = off2 + nx * ny * (dp_size * dp_size + 6)
    if min(nx, ny, dp_size) == 0 or size < needed:
        raise fail(f"cannot read {path.name} (blockfile): header says {ny}x{nx} patterns "
                   f"of {dp_size}x{dp_size} ({needed} bytes) but the file has {size} bytes")


def _looks_like_zarr(path: Path) -> bool:
    if path.is_file():
        import zipfile

        return zipfile.is_zipfile(path)
    return any((path / n).exists() for n in ("zarr.json", ".zgroup", ".zarray"))


def _file_handles(data: Any) -> list:
    """Open HDF5 handles behind an rsciio lazy array, to close with the Dataset."""
    try:
        from rsciio.utils.file import get_file_handle
    except ImportError:  # pragma: no cover - older rsciio layout
        try:
            from rsciio.utils.tools import get_file_handle
        except ImportError:
            return []
    try:
        handle = get_file_handle(data, warn=False)
    except Exception:  # noqa: BLE001
        return []
    return [handle] if handle is not None and hasattr(handle, "close") else []


def read_rsciio(path: Path, fmt: str, *, dataset: str | None, scan_shape: Any,
                chunks: Any, check_content: bool = True) -> _Source:
    """Open one of the rosettasciio formats lazily.

    Parameters
    ----------
    path : Path
        Input file (or .zspy folder).
    fmt : str
        Format key: ``'hspy'``, ``'zspy'``, ``'blo'``, ``'mib'``, ``'emd'`` or ``'dm4'``.
    dataset : str or None
        EMD only: rsciio's ``dataset_path`` inside the file.
    scan_shape : tuple of int or None
        For .mib, passed to rsciio as ``navigation_shape=(X, Y)``.
    chunks : object
        Unused here; the caller rechunks.
    check_content : bool
        Unused here.

    Returns
    -------
    _Source
        Lazy data with the navigation axes first, and its calibrations.
    """
    module_name, desc = _MODULES[fmt]
    name = path.name
    if dataset is not None and fmt != "emd":
        raise fail(f"{name}: --dataset '{dataset}' applies only to .h5/.hdf5, .zarr and "
                   ".emd inputs")
    if fmt == "blo":
        _check_blockfile(path)
    if fmt == "zspy" and not _looks_like_zarr(path):
        raise fail(f"cannot read {name} ({desc}): not a zarr folder or zip store")
    kwargs: dict[str, Any] = {"lazy": True}
    if fmt == "zspy":
        kwargs["mode"] = "r"
    if fmt == "emd" and dataset is not None:
        kwargs["dataset_path"] = dataset
    if fmt == "mib" and scan_shape is not None:
        kwargs["navigation_shape"] = (int(scan_shape[1]), int(scan_shape[0]))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise fail(f"{name}: reading {desc} files needs rosettasciio ({short(exc)})") from exc
    try:
        signals = module.file_reader(str(path), **kwargs)
    except Exception as exc:  # noqa: BLE001 - rsciio raises many kinds
        hint = ""
        if fmt == "emd" and dataset is not None:
            hint = f" (--dataset '{dataset}' must name a data array, e.g. signals/NAME/data)"
        raise fail(f"cannot read {name} ({desc}): {short(exc)}{hint}") from exc
    signals = [s for s in (signals or []) if isinstance(s, dict) and "data" in s]
    if not signals:
        raise fail(f"cannot read {name} ({desc}): no data found")
    try:
        index = _pick_signal(signals, name, scan_shape)
        signal = signals[index]
        if fmt in ("hspy", "zspy", "emd"):             # h5py/zarr storage: guard the reads
            signal = dict(signal, data=guard_reads(signal["data"], name, file_token(path)))
        data, axes = _ordered_axes(signal)
        if fmt == "dm4" and data.ndim == 4:
            _check_dm_order(signal, name)
        if fmt == "mib" and scan_shape is not None and data.ndim == 4 \
                and tuple(data.shape[:2]) != tuple(scan_shape):
            raise fail(f"--scan-shape {scan_shape[0]},{scan_shape[1]} does not fit {name}: "
                       f"its frames read as a {data.shape[0]}x{data.shape[1]} scan")
    except BaseException:
        for sig in signals:
            for handle in _file_handles(sig["data"]):
                handle.close()
        raise
    resources = _file_handles(signal["data"]) if fmt in ("hspy", "emd") else []
    meta_src = signal.get("metadata") or {}
    metadata: dict[str, Any] = {"reader": module_name, "rsciio_metadata": meta_src}
    if len(signals) > 1:
        metadata["signal"] = _title(signal, index)
    if dataset is not None:
        metadata["dataset"] = dataset
    size = path_size(path)
    if fmt == "mib":
        hdr = path.with_suffix(".hdr")
        if hdr.is_file():
            size += hdr.stat().st_size
    return _Source(data=data, metadata=metadata,
                   storage_chunks=tuple(int(c) for c in data.chunksize),
                   size_on_disk=size, axes=axes, resources=resources)
