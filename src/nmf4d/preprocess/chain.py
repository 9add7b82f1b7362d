"""The preprocessing stage: every step of a :class:`~nmf4d.config.PreprocessConfig`, in order."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..arrays import Array, data_4d, is_dask
from ..beam import check_centre, direct_beam_mask, find_direct_beam
from ..errors import ConfigError, warn_data
from ..filters import get_filter
from .dark import noise_model, resolve_dark, subtract_dark
from .descan import apply_descan, gather, plan_descan, sample_positions
from .steps import (
    _centre_box,
    _check_box,
    _pair,
    apply_mask,
    bin_patterns,
    crop_patterns,
    normalise_patterns,
    scale_intensity,
)

if TYPE_CHECKING:  # the config imports nothing of this package; no runtime import needed
    from ..config import PreprocessConfig
    from ..execution import Progress


class Preprocessed(NamedTuple):
    """Outcome of :func:`preprocess`.

    Attributes
    ----------
    data : ndarray or dask array of shape (scan_y, scan_x, ky', kx')
        A new array; lazy for dask input. float32, except that integer counts (of at most
        4 bytes) that no step changed (crops and a zero mask only) keep their dtype: the
        loading stage holds them as they are and converts each block as it is used.
    record : dict
        JSON-serialisable: "input_shape", "crop", "centre_crop", "bin", "mask", "filter",
        ("filter_info"), "scale", "normalise", "output_shape", "dtype" (steps not applied:
        None / 1 / "raw").
    artifacts : dict
        Objects a filter made that are worth saving beside the results (the trained
        denoiser as ``"denoiser"``).
    """

    data: Array
    record: dict
    artifacts: dict


def _warn_bin_remainder(shape, factor) -> None:
    """A DataWarning when the bin does not divide the patterns (edge pixels dropped)."""
    (ky, kx), (fy, fx) = shape, factor
    ry, rx = ky % fy, kx % fx
    if ry or rx:
        flag = f"--bin {fy}" if fy == fx else f"bin ({fy}, {fx})"
        warn_data(f"{flag} does not divide the {ky}x{kx} patterns: the last {ry} row(s) and "
                  f"{rx} column(s) are dropped (patterns become {ky // fy}x{kx // fx}); crop "
                  "to a multiple of the bin to choose which")


def _detector(data: Array, config) -> tuple[Array, dict, dict]:
    """Dark offset and descan, both measured on one sample of positions (no full pass)."""
    needs_sample = config.dark == "auto" or config.centre != "off"
    yx = sample_positions(data.shape[:2]) if needs_sample else None
    sample = gather(data, yx) if needs_sample else None
    offset, dark_rec = resolve_dark(config.dark, data.shape, sample)
    x = subtract_dark(data, offset)
    if sample is not None and offset is not None:
        sample = sample - np.asarray(offset, np.float32)
        dark_rec["gain"], dark_rec["read_variance"] = noise_model(
            sample, yx, read_noise=dark_rec.get("read_noise"))
    dark_rec["negative_allowed"] = offset is not None       # read noise around 0
    plan = plan_descan(data.shape[:2], yx, sample, config.centre) if config.centre != "off" \
        else {"mode": "off", "applied": False, "reason": "not asked for"}
    return apply_descan(x, plan), dark_rec, plan


def preprocess(data: Array, config: "PreprocessConfig | None" = None, *, seed: int = 0,
               device: str = "auto", progress: "Progress | None" = None) -> Preprocessed:
    """Apply ``config`` in the order crop -> bin -> mask -> filter -> scale -> normalise.

    Values are not checked (that reads the data): the loading stage does it
    (:func:`nmf4d.prepare.load`), or call :func:`nmf4d.arrays.check_values`.

    Parameters
    ----------
    data : ndarray or dask array of shape (scan_y, scan_x, ky, kx)
    config : PreprocessConfig, optional
        Default: no step (integer counts are kept, anything else becomes float32).
    seed : int
        Seed of the filters' random choices.
    device : str
        Where the learned denoiser trains.
    progress : nmf4d.execution.Progress, optional
        Progress bars of the filters (the denoiser's training).

    Returns
    -------
    Preprocessed
    """
    if config is None:
        from ..config import PreprocessConfig
        config = PreprocessConfig()
    data = data_4d(data)
    spec = get_filter(config.filter)
    fy, fx = _pair(config.bin, "bin")
    rec: dict[str, Any] = {"input_shape": [int(s) for s in data.shape], "crop": None,
                           "centre_crop": None, "bin": fy if fy == fx else [fy, fx],
                           "mask": None}
    x, rec["dark"], rec["centre"] = _detector(data, config)
    if config.crop is not None:
        box = _check_box(config.crop, x.shape[2:])
        x, rec["crop"] = crop_patterns(x, box=box), list(box)
    if config.centre_crop is not None:
        box = _centre_box(x.shape[2:], config.centre_crop, None)
        x = crop_patterns(x, box=box)
        rec["centre_crop"] = {"size": int(config.centre_crop), "box": list(box)}
    if (fy, fx) != (1, 1):
        _warn_bin_remainder(x.shape[2:], (fy, fx))
        x = bin_patterns(x, (fy, fx), reduce="sum")
    if config.mask_radius is not None:
        if config.mask_centre == "auto":
            centre = find_direct_beam(x.mean(axis=(0, 1), dtype=np.float64))
        else:
            centre = check_centre(config.mask_centre, x.shape[2:])
        mask = direct_beam_mask(x.shape[2:], radius=config.mask_radius, centre=centre)
        if mask.all():
            raise ConfigError("preprocessing.mask_radius", config.mask_radius,
                              f"the disc centred on ({centre[0]:g}, {centre[1]:g}) covers every "
                              f"pixel of the {x.shape[2]}x{x.shape[3]} patterns (after crop and "
                              "bin): nothing would be left; use a smaller radius")
        x = apply_mask(x, mask, fill=0)
        rec["mask"] = {"centre": [float(c) for c in centre], "fill": 0,
                       "radius": float(config.mask_radius), "n_pixels": int(mask.sum())}
    out = spec.function()(x, **spec.kwargs(config, seed=seed, device=device,
                                           progress=progress))
    artifacts: dict = {}
    if isinstance(out, tuple):        # (array, info[, artifacts]): info is recorded
        x, rec["filter_info"], *more = out
        artifacts = dict(more[0]) if more else {}
    else:
        x = out
    x = scale_intensity(x, method=config.scale)
    x = normalise_patterns(x, method=config.normalise)
    # Steps that change values (bin, filters, scale, normalise) return floats; counts
    # that none of them touched stay integers (half the memory of float32 for uint16).
    if not (np.issubdtype(x.dtype, np.integer) and x.dtype.itemsize <= 4):
        x = x.astype(np.float32)
    if x is data and not is_dask(x):
        x = x.copy()
    rec.update(filter=config.filter, scale=config.scale, normalise=config.normalise,
               output_shape=[int(s) for s in x.shape], dtype=str(x.dtype))
    return Preprocessed(x, rec, artifacts)
