"""Shared pieces of the readers: the `Dataset` record, format table, validation helpers.

Every reader returns a `_Source` (a lazy dask array plus what `dataset_info` needs);
`nmf4d.io.open_dataset` and `nmf4d.io.dataset_info` then bring it to the one axis order
used everywhere in nmf4d, ``(scan_y, scan_x, ky, kx)``, with `as_scan_4d`.
"""
from __future__ import annotations

import datetime
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, warn_data

#: Format name -> one-line description, for help texts.
SUPPORTED_FORMATS: dict[str, str] = {
    "npy": ".npy: NumPy array file (memory-mapped)",
    "zarr": ".zarr: zarr array, or group with --dataset PATH (optional if it holds one array)",
    "hdf5": ".h5/.hdf5: HDF5 file, --dataset PATH of the array inside required",
    "hspy": ".hspy: HyperSpy HDF5 signal (rosettasciio)",
    "zspy": ".zspy: HyperSpy zarr signal (rosettasciio)",
    "blo": ".blo: NanoMegas ASTAR blockfile (rosettasciio)",
    "mib": ".mib: Quantum Detectors Merlin raw, scan shape from the .hdr beside it or "
    "--scan-shape (rosettasciio)",
    "emd": ".emd: EMD, NCEM/py4DSTEM or Velox (rosettasciio); --dataset picks an NCEM "
    "dataset",
    "dm4": ".dm4/.dm3: Gatan DigitalMicrograph (rosettasciio)",
    "images": "folder of .bmp/.png/.tif/.tiff patterns, one per file, in row-major scan "
    "order (natural sort of the names), --scan-shape Y,X required",
}

#: File extension (lower case) -> format name.
EXTENSIONS: dict[str, str] = {
    ".npy": "npy",
    ".zarr": "zarr",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".hspy": "hspy",
    ".zspy": "zspy",
    ".blo": "blo",
    ".mib": "mib",
    ".emd": "emd",
    ".dm4": "dm4",
    ".dm3": "dm4",
}

#: Image extensions accepted in a folder of patterns.
IMAGE_EXTENSIONS: tuple[str, ...] = (".bmp", ".png", ".tif", ".tiff")

_MAX_LISTED = 8


@dataclass
class Dataset:
    """A 4D-STEM scan opened lazily.

    Attributes
    ----------
    data : dask.array.Array
        Lazy array of shape ``(scan_y, scan_x, ky, kx)`` in the file's own dtype
        (boolean data is presented as uint8).
    path : str
        Absolute path of the input file or folder.
    format : str
        One of the keys of `SUPPORTED_FORMATS`.
    metadata : dict
        JSON-serialisable facts from the file: ``axes`` (calibrations in the order of
        `data`, when the format has them), ``dataset`` (path inside HDF5/zarr), the
        reader's own metadata (``rsciio_metadata``), and so on.

    Notes
    -----
    Some readers keep a file open (HDF5 through rosettasciio, for instance) for as long
    as `data` is in use. `close` (or a ``with`` block) releases those handles; `data`
    must not be computed afterwards.
    """

    data: Any
    path: str
    format: str
    metadata: dict = field(default_factory=dict)
    _resources: list = field(default_factory=list, repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of `data`, ``(scan_y, scan_x, ky, kx)``."""
        return tuple(int(n) for n in self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        """Data type of `data`."""
        return np.dtype(self.data.dtype)

    def close(self) -> None:
        """Close the files the reader keeps open (idempotent)."""
        while self._resources:
            resource = self._resources.pop()
            try:
                resource.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    def __enter__(self) -> "Dataset":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class _Source:
    """What a reader hands back before the common normalisation.

    Attributes
    ----------
    data : dask.array.Array
        Lazy array, any number of dimensions, in the file's dtype.
    metadata : dict
        Facts about the file (made JSON-safe later).
    storage_chunks : tuple of int or None
        Chunk shape on disk (or the reader's block shape), None when contiguous.
    size_on_disk : int
        Bytes used by the input on disk.
    axes : list of dict or None
        Calibrations in the order of the axes of `data`, when known.
    resources : list
        Objects with ``close()`` to release with the `Dataset`.
    """

    data: Any
    metadata: dict
    storage_chunks: tuple | None
    size_on_disk: int
    axes: list | None = None
    resources: list = field(default_factory=list)


class ReadGuard:
    """Array-like view of a reader's storage object (a zarr array, an h5py dataset) whose
    read errors -- a corrupt chunk, a file changed or removed during the run -- become an
    `InputError` naming the file, instead of the storage library's own exception."""

    def __init__(self, obj: Any, name: str, token: tuple) -> None:
        self.obj = obj
        self.name = name
        self.shape = tuple(int(n) for n in obj.shape)
        self.dtype = np.dtype(obj.dtype)
        self.ndim = len(self.shape)
        self.token = token

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            return np.asarray(self.obj[key])
        except Exception as exc:  # noqa: BLE001 - any failure to read is the file's
            raise fail(f"cannot read {self.name}: {short(exc)}") from exc

    def __dask_tokenize__(self) -> tuple:
        return ("nmf4d-read-guard", self.token)


def guard_reads(data: Any, name: str, token: tuple) -> Any:
    """``data`` (a dask array made by ``da.from_array`` of one storage object, as
    rosettasciio makes for .hspy/.zspy/.emd) rebuilt on a `ReadGuard` of that object;
    any other array is returned as it is."""
    import dask.array as da

    try:
        layers = data.__dask_graph__().layers
        originals = [k for k in layers if str(k).startswith("original-")]
        if len(layers) != 2 or len(originals) != 1:
            return data
        (obj,) = list(dict(layers[originals[0]]).values())
        if not (hasattr(obj, "__getitem__") and tuple(obj.shape) == tuple(data.shape)
                and np.dtype(obj.dtype) == data.dtype):
            return data
        guard = ReadGuard(obj, name, token)
        return da.from_array(guard, chunks=data.chunks, asarray=False, fancy=False,
                             meta=np.empty((0,) * data.ndim, dtype=data.dtype))
    except Exception:  # noqa: BLE001 - a graph of another shape: keep it
        return data


def fail(message: str) -> InputError:
    """Build an `InputError` with a one-line message (raise it, ``from`` the cause)."""
    line = " ".join(str(message).split())
    return InputError(line)


def short(exc: BaseException, limit: int = 160) -> str:
    """First line of an exception's message, shortened, for an error message."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def list_items(items: list[str]) -> str:
    """Join at most a few names, saying how many were left out."""
    shown = ", ".join(items[:_MAX_LISTED])
    if len(items) > _MAX_LISTED:
        shown += f", ... ({len(items) - _MAX_LISTED} more)"
    return shown


def supported_inputs() -> str:
    """The accepted extensions, for an error message."""
    exts = ", ".join(sorted(EXTENSIONS))
    return f"{exts}, or a folder of {'/'.join(IMAGE_EXTENSIONS)} images"


def detect_format(path: Path) -> str:
    """Pick the format family of an existing input from its extension or kind.

    Parameters
    ----------
    path : Path
        Existing file or folder.

    Returns
    -------
    str
        A key of `SUPPORTED_FORMATS`.

    Raises
    ------
    InputError
        For an unknown extension.
    """
    suffix = path.suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    if path.is_dir():
        if any((path / name).exists() for name in ("zarr.json", ".zarray", ".zgroup")):
            return "zarr"
        return "images"
    if suffix in IMAGE_EXTENSIONS:
        raise fail(
            f"input {path.name}: a single image is not a scan; give the folder of images "
            "with --scan-shape Y,X"
        )
    raise fail(
        f"input {path.name}: unsupported extension '{path.suffix or '(none)'}'; "
        f"supported: {supported_inputs()}"
    )


def parse_scan_shape(scan_shape: Any) -> tuple[int, int] | None:
    """Validate ``scan_shape`` (two positive integers, or a ``"Y,X"`` string).

    Raises
    ------
    InputError
        When it is not two positive integers.
    """
    if scan_shape is None:
        return None
    values = scan_shape
    if isinstance(values, str):
        values = [v for v in re.split(r"[,x\s]+", values.strip()) if v]
    try:
        parsed = tuple(_as_int(v) for v in values)
    except (TypeError, ValueError):
        parsed = ()
    if len(parsed) != 2 or min(parsed) <= 0:
        raise fail(f"--scan-shape {scan_shape!r}: expected two positive integers Y,X")
    return parsed[0], parsed[1]


def _as_int(value: Any) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError("bool")
    if isinstance(value, str):
        return int(value.strip())
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    raise ValueError(f"not an integer: {value!r}")


def check_dtype(dtype: np.dtype, name: str) -> None:
    """Refuse data types nmf4d cannot use (complex, non-numeric)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        raise fail(
            f"{name}: complex dtype {dtype} is not supported; expected real integer or "
            "float data"
        )
    if dtype.kind not in "biuf":
        raise fail(
            f"{name}: dtype {dtype} is not numeric; expected real integer or float data"
        )


def _generic_axis(name: str, size: int) -> dict:
    return {"name": name, "size": int(size), "scale": 1.0, "offset": 0.0, "units": "",
            "navigate": name.startswith("scan")}


def as_scan_4d(data: Any, *, scan_shape: tuple[int, int] | None, name: str,
               axes: list | None = None) -> tuple[Any, list | None]:
    """Bring a lazy array to ``(scan_y, scan_x, ky, kx)``.

    Leading axes of length one beyond the fourth are dropped (with a
    :class:`~nmf4d.errors.DataWarning`); a 3D stack
    ``(n, ky, kx)`` is reshaped row-major to ``scan_shape``; a 4D array must match
    ``scan_shape`` when it is given.

    Parameters
    ----------
    data : dask.array.Array
        Array whose last two axes are the pattern axes.
    scan_shape : tuple of int or None
        ``(Y, X)`` from the user, already validated.
    name : str
        File name for error messages.
    axes : list of dict or None
        Calibrations matching the axes of `data`; transformed alongside.

    Returns
    -------
    data : dask.array.Array
        The 4D array.
    axes : list of dict or None
        Calibrations in the new order.

    Raises
    ------
    InputError
        For a shape that cannot be a 4D scan.
    """
    shape = tuple(int(n) for n in data.shape)
    original = shape
    while data.ndim > 4 and shape[0] == 1:
        data = data[0]
        shape = shape[1:]
        axes = axes[1:] if axes else axes
    if shape != original:
        warn_data(f"{name}: {len(original) - len(shape)} leading axis of length 1 dropped: "
                  f"shape {original} read as {shape}")
    if any(n == 0 for n in shape):
        raise fail(f"{name}: the data is empty, shape {shape}")
    if data.ndim == 4:
        if scan_shape is not None and tuple(scan_shape) != shape[:2]:
            raise fail(
                f"--scan-shape {scan_shape[0]},{scan_shape[1]} does not match {name}, "
                f"whose scan is {shape[0]}x{shape[1]} (shape {shape})"
            )
        return data, axes
    if data.ndim == 3:
        if scan_shape is None:
            raise fail(
                f"{name}: data is 3D, shape {shape}; a stack of patterns needs "
                "--scan-shape Y,X"
            )
        y, x = scan_shape
        if y * x != shape[0]:
            raise fail(
                f"--scan-shape {y},{x} gives {y * x} positions but {name} holds "
                f"{shape[0]} patterns (shape {shape})"
            )
        data = data.reshape((y, x) + shape[1:])
        if axes:
            axes = [_generic_axis("scan_y", y), _generic_axis("scan_x", x)] + list(axes[1:])
        return data, axes
    raise fail(
        f"{name}: expected a 4D (scan_y, scan_x, ky, kx) array, got {data.ndim}D shape "
        f"{shape}"
    )


def finish_chunks(data: Any, chunks: Any) -> Any:
    """Apply the user's ``chunks``.

    ``"auto"`` keeps the reader's blocks when they hold whole patterns and are not
    tiny (at least 1/8 of dask's ``array.chunk-size``); otherwise blocks are merged or
    split to whole patterns of about ``array.chunk-size``, aligned to the old blocks.
    """
    try:
        if isinstance(chunks, str) and chunks == "auto":
            import dask
            from dask.utils import parse_bytes

            whole = len(data.chunks[2]) == 1 and len(data.chunks[3]) == 1
            block = math.prod(data.chunksize) * data.dtype.itemsize
            target = parse_bytes(dask.config.get("array.chunk-size", "128MiB"))
            if whole and (data.npartitions == 1 or block >= target // 8):
                return data
            return data.rechunk(("auto", "auto", -1, -1))
        return data.rechunk(chunks)
    except (ValueError, TypeError) as exc:
        raise fail(f"chunks={chunks!r}: not usable for shape {data.shape}: {short(exc)}") from exc


def auto_chunks(shape: tuple[int, ...], dtype: np.dtype, chunks: Any,
                previous: tuple[int, ...] | None = None) -> Any:
    """Dask chunks for a new array: whole patterns, sized by dask's chunk-size setting.

    ``previous`` (the storage chunks) aligns the blocks to them when possible.
    """
    if not (isinstance(chunks, str) and chunks == "auto"):
        return chunks
    if len(shape) < 2:
        return "auto"
    spec = ("auto",) * (len(shape) - 2) + (-1, -1)
    from dask.array.core import normalize_chunks

    try:
        return normalize_chunks(spec, shape, dtype=dtype, previous_chunks=previous)
    except (ValueError, TypeError, NotImplementedError):
        return normalize_chunks(spec, shape, dtype=dtype)


def path_size(path: Path) -> int:
    """Bytes on disk of a file, or of all regular files below a folder."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for fname in files:
            full = os.path.join(root, fname)
            if not os.path.islink(full):
                try:
                    total += os.stat(full).st_size
                except OSError:
                    pass
    return total


def jsonable(obj: Any, _depth: int = 0) -> Any:
    """Turn reader metadata into JSON-serialisable values (lossy for big arrays)."""
    if _depth > 24:
        return str(obj)
    if obj is None or isinstance(obj, (bool, str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return jsonable(obj.item(), _depth + 1)
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("utf-8", errors="replace")
    if isinstance(obj, (datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {str(k): jsonable(v, _depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, _depth + 1) for v in obj]
    if isinstance(obj, np.ndarray):
        if obj.size <= 64 and obj.dtype.kind in "biufUSO":
            return jsonable(obj.tolist(), _depth + 1)
        return f"<array shape={obj.shape} dtype={obj.dtype}>"
    if hasattr(obj, "dtype") and hasattr(obj, "shape"):
        return f"<array shape={tuple(obj.shape)} dtype={obj.dtype}>"
    return str(obj)


def clean_axes(axes: list | None) -> list | None:
    """Keep the JSON-safe calibration fields of rosettasciio-style axis dicts."""
    if not axes:
        return None
    keys = ("name", "size", "scale", "offset", "units", "navigate")
    return [jsonable({k: ax[k] for k in keys if k in ax}) for ax in axes]


def natural_key(name: str) -> list:
    """Sort key that orders ``img2`` before ``img10``."""
    parts = re.split(r"(\d+)", name)
    return [int(p) if i % 2 else p.lower() for i, p in enumerate(parts)]


def file_token(path: Path) -> tuple:
    """Identity of a file for dask tokens: path, size and modification time."""
    try:
        st = path.stat()
        return (str(path), st.st_size, st.st_mtime_ns)
    except OSError:
        return (str(path),)

