"""Reader for a folder of diffraction patterns stored one per image file.

The files (.bmp, .png, .tif, .tiff; other entries are ignored with a
:class:`~nmf4d.errors.DataWarning`, hidden ones silently) are taken in natural
order of their names (``img2`` before ``img10``) as the row-major scan, so
``--scan-shape Y,X`` with ``Y*X`` equal to the number of images is required. Only the
image headers are read when opening; pixels are decoded in dask tasks, a block of whole
scan rows per task. BMP and PNG go through Pillow, TIFF through tifffile (any dtype).
Images must share one size and one type. Colour images (RGB/RGBA) are accepted only
when they are grey (R = G = B, checked on the first image when opening and on every
image when loading); the first channel is used. Palette images are refused.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import warn_data
from ._readers_common import (
    IMAGE_EXTENSIONS,
    _Source,
    fail,
    list_items,
    natural_key,
    short,
)

# Pillow mode -> (dtype, number of channels)
_PIL_MODES: dict[str, tuple[str, int]] = {
    "1": ("uint8", 1),
    "L": ("uint8", 1),
    "I;16": ("uint16", 1),
    "I;16L": ("uint16", 1),
    "I;16B": ("uint16", 1),
    "I;16N": ("uint16", 1),
    "I": ("int32", 1),
    "F": ("float32", 1),
    "LA": ("uint8", 2),
    "RGB": ("uint8", 3),
    "RGBA": ("uint8", 4),
    "RGBX": ("uint8", 4),
}
_TIFF = (".tif", ".tiff")


def _probe(path: Path) -> tuple[tuple[int, int], np.dtype, int, str]:
    """Size ``(rows, cols)``, dtype, channels and a description, from the header."""
    if path.suffix.lower() in _TIFF:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            pages = tif.pages
            if len(pages) != 1:
                raise fail(f"{path.name}: TIFF with {len(pages)} pages; one pattern per "
                           "file expected")
            page = pages[0]
            shape = (int(page.imagelength), int(page.imagewidth))
            if page.dtype is None:
                raise fail(f"{path.name}: TIFF sample format not supported")
            dtype, channels = np.dtype(page.dtype), int(page.samplesperpixel)
        desc = f"{dtype}" + (f" with {channels} samples" if channels > 1 else "")
    else:
        from PIL import Image

        with Image.open(path) as img:
            mode, (cols, rows) = img.mode, img.size
        if mode not in _PIL_MODES:
            what = "a palette (indexed colour)" if mode in ("P", "PA") else f"a {mode}"
            raise fail(f"{path.name}: {what} image; patterns must be single-channel "
                       "greyscale")
        dtype_name, channels = _PIL_MODES[mode]
        shape, dtype, desc = (rows, cols), np.dtype(dtype_name), f"{mode} ({dtype_name})"
    if dtype.kind == "c":
        raise fail(f"{path.name}: complex dtype {dtype} is not supported; expected real "
                   "integer or float data")
    if dtype.kind not in "biuf":
        raise fail(f"{path.name}: dtype {dtype} is not numeric")
    if dtype.kind == "b":
        dtype = np.dtype("uint8")
    return shape, dtype.newbyteorder("="), channels, desc


def _grey(arr: np.ndarray, path: str, channels: int) -> np.ndarray:
    """First channel of a colour image whose colour channels are equal."""
    if arr.ndim == 3 and arr.shape[0] == channels and arr.shape[-1] != channels:
        arr = np.moveaxis(arr, 0, -1)  # TIFF with separate planes
    if arr.ndim != 3:
        return arr
    colour = arr[..., : min(3, arr.shape[-1])] if channels != 2 else arr[..., :1]
    if colour.shape[-1] > 1 and not (colour == colour[..., :1]).all():
        raise fail(f"{Path(path).name} is a colour image (channels differ); patterns must "
                   "be single-channel greyscale")
    return arr[..., 0]


def _load_image(path: str, shape: tuple[int, int], dtype: np.dtype,
                channels: int) -> np.ndarray:
    """Decode one image as a 2D array of ``dtype`` and ``shape``."""
    try:
        if path.lower().endswith(_TIFF):
            import tifffile

            arr = tifffile.imread(path, key=0)
        else:
            from PIL import Image

            with Image.open(path) as img:
                arr = np.asarray(img)
    except Exception as exc:  # noqa: BLE001
        raise fail(f"cannot read image {Path(path).name}: {short(exc)}") from exc
    if channels > 1:
        arr = _grey(arr, path, channels)
    if tuple(arr.shape) != tuple(shape):
        raise fail(f"{Path(path).name}: image is {arr.shape}, expected {shape} like the "
                   "other images")
    return np.asarray(arr).astype(dtype, copy=False)


def _load_rows(paths: tuple[str, ...], block_shape: tuple[int, ...], dtype: str,
               channels: int) -> np.ndarray:
    """Decode a block of whole scan rows into ``(rows, X, ky, kx)``."""
    out = np.empty(block_shape, dtype=np.dtype(dtype))
    flat = out.reshape((-1,) + tuple(block_shape[2:]))
    for i, path in enumerate(paths):
        flat[i] = _load_image(path, tuple(block_shape[2:]), out.dtype, channels)
    return out


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder in natural order of their names (hidden files skipped)."""
    files = [p for p in folder.iterdir()
             if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
             and p.is_file()]
    return sorted(files, key=lambda p: (natural_key(p.name), p.name))


def _warn_ignored(folder: Path, images: list[Path]) -> None:
    """A DataWarning naming the entries of ``folder`` that are not pattern images
    (hidden ones aside)."""
    keep = {p.name for p in images}
    try:
        other = sorted((p.name + ("/" if p.is_dir() else "")) for p in folder.iterdir()
                       if p.name not in keep and not p.name.startswith("."))
    except OSError:
        return
    if other:
        warn_data(f"folder {folder.name}: {len(other)} entr{'y' if len(other) == 1 else 'ies'} "
                  f"that {'is' if len(other) == 1 else 'are'} not a "
                  f"{'/'.join(IMAGE_EXTENSIONS)} image ignored: {list_items(other)}")


def read_images(path: Path, *, dataset: str | None, scan_shape: Any, chunks: Any,
                check_content: bool = True) -> _Source:
    """Open a folder of pattern images lazily as ``(Y, X, ky, kx)``.

    Parameters
    ----------
    path : Path
        The folder.
    dataset : None
        Must be None.
    scan_shape : tuple of int or None
        ``(Y, X)``; required, with ``Y*X`` equal to the number of images.
    chunks : object
        Unused (blocks are whole scan rows; the caller rechunks).
    check_content : bool
        Decode the first image to check that a colour image is grey (skipped by
        `dataset_info`, which reads headers only).

    Returns
    -------
    _Source
        The lazy 4D array and facts about the files.
    """
    import dask
    import dask.array as da

    name = path.name
    if dataset is not None:
        raise fail(f"{name}: --dataset '{dataset}' does not apply to a folder of images")
    files = list_images(path)
    _warn_ignored(path, files)
    if not files:
        raise fail(f"folder {name} holds no {'/'.join(IMAGE_EXTENSIONS)} images")
    count = len(files)
    if scan_shape is None:
        raise fail(f"folder {name} holds {count} images; give --scan-shape Y,X with "
                   f"Y*X = {count}")
    y, x = scan_shape
    if y * x != count:
        raise fail(f"--scan-shape {y},{x} gives {y * x} positions but folder {name} holds "
                   f"{count} images")
    first = files[0]
    shape, dtype, channels, desc = _probe(first)
    for other in files[1:]:
        o_shape, o_dtype, o_channels, o_desc = _probe(other)
        if o_shape != shape:
            raise fail(f"images in {name} differ in size: {first.name} is "
                       f"{shape[0]}x{shape[1]}, {other.name} is {o_shape[0]}x{o_shape[1]} "
                       "(rows x columns)")
        if o_dtype != dtype or o_channels != channels:
            raise fail(f"images in {name} differ in type: {first.name} is {desc}, "
                       f"{other.name} is {o_desc}")
    if channels > 1 and check_content:
        _load_image(str(first), shape, dtype, channels)
    itemsize = dtype.itemsize * shape[0] * shape[1] * x
    target = dask.utils.parse_bytes(dask.config.get("array.chunk-size", "128MiB"))
    rows = int(max(1, min(y, target // max(1, itemsize))))
    blocks = []
    for r0 in range(0, y, rows):
        r1 = min(y, r0 + rows)
        block_shape = (r1 - r0, x) + shape
        chunk_paths = tuple(str(p) for p in files[r0 * x: r1 * x])
        task = dask.delayed(_load_rows, pure=True)(chunk_paths, block_shape, dtype.str,
                                                   channels)
        blocks.append(da.from_delayed(task, shape=block_shape, dtype=dtype,
                                      meta=np.empty((0, 0, 0, 0), dtype=dtype)))
    data = da.concatenate(blocks, axis=0) if len(blocks) > 1 else blocks[0]
    metadata = {
        "files": count,
        "first_file": first.name,
        "last_file": files[-1].name,
        "image_type": desc,
    }
    if channels > 1:
        metadata["converted_to_grey"] = True
    size = sum(p.stat().st_size for p in files)
    return _Source(data=data, metadata=metadata, storage_chunks=None, size_on_disk=size)

