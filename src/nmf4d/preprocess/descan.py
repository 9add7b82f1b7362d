"""Descan correction: every pattern shifted so that its direct beam sits at one centre.

A real scan moves the whole pattern across the detector as the beam is scanned
(imperfect descan): the direct beam and the reflections drift by pixels from one side of
the scan to the other, and NMF then needs extra components for shifted copies of one
pattern. This step finds the beam in every pattern (:func:`beam_centres`, a vectorised
centre of mass of the beam disc, refined twice), models the drift over the scan by a
quadratic surface in the scan coordinates (the form of a descan error; kept when it
explains the measured centres within a fraction of a pixel, else the per-pattern centres
are used), and shifts each pattern by the difference to the median centre with bilinear
interpolation (:func:`shift_patterns`; pixels shifted in from outside the detector are 0).

``centre="auto"`` (the default) measures the drift on a sample of positions spread over
the scan (no pass over all the data) and corrects it only when it exceeds
:data:`AUTO_THRESHOLD_PX`; ``"on"`` always corrects; ``"off"`` never.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..arrays import Array, is_dask
from ..beam import beam_peak, direct_beam_region
from ..errors import ConfigError

#: ``centre="auto"`` corrects the descan when the beam moves more than this (pixels).
AUTO_THRESHOLD_PX = 0.5
#: The quadratic drift model is used when its RMS residual is below this (pixels).
MODEL_RMS_PX = 0.35


def beam_centres(patterns: np.ndarray, centre: tuple[float, float], radius: float, *,
                 iterations: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel beam centre of every pattern: centre of mass of the bright part of a disc.

    Parameters
    ----------
    patterns : ndarray of shape (m, ky, kx)
    centre : (float, float)
        Starting (cy, cx) of the search, usually the beam of the mean pattern.
    radius : float
        Radius of the disc searched around the current estimate (pixels).
    iterations : int
        Refinements (the disc follows the estimate).

    Returns
    -------
    centres : ndarray of shape (m, 2), float64
        (cy, cx) of each pattern (the start where a pattern has no intensity in the disc).
    strength : ndarray of shape (m,)
        Share of each pattern's intensity inside the final disc (the beam's brightness).
    """
    x = np.asarray(patterns, dtype=np.float32)
    m, ky, kx = x.shape
    yy = np.arange(ky, dtype=np.float32)[None, :, None]
    xx = np.arange(kx, dtype=np.float32)[None, None, :]
    c = np.tile(np.asarray(centre, np.float64), (m, 1))
    total = x.reshape(m, -1).sum(axis=1, dtype=np.float64)
    inside = np.zeros(m)
    for _ in range(max(1, int(iterations))):
        disc = (yy - c[:, 0, None, None]) ** 2 + (xx - c[:, 1, None, None]) ** 2 <= radius ** 2
        w = np.where(disc, x, 0.0)
        top = w.reshape(m, -1).max(axis=1)
        w = np.clip(w - 0.5 * top[:, None, None], 0, None)     # the bright core only
        s = w.reshape(m, -1).sum(axis=1, dtype=np.float64)
        ok = s > 0
        cy = (w * yy).reshape(m, -1).sum(axis=1, dtype=np.float64)
        cx = (w * xx).reshape(m, -1).sum(axis=1, dtype=np.float64)
        c[ok, 0] = cy[ok] / s[ok]
        c[ok, 1] = cx[ok] / s[ok]
        inside = np.where(disc, x, 0.0).reshape(m, -1).sum(axis=1, dtype=np.float64)
    return c, np.where(total > 0, inside / np.where(total > 0, total, 1), 0.0)


def shift_patterns(patterns: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Shift each pattern by (dy, dx) pixels with bilinear interpolation (0 outside).

    Parameters
    ----------
    patterns : ndarray of shape (m, ky, kx)
    shifts : ndarray of shape (m, 2)
        ``out[i](y, x) = patterns[i](y - dy_i, x - dx_i)``.

    Returns
    -------
    ndarray of shape (m, ky, kx), float32
        Total intensity is kept, except what is shifted out of the frame.
    """
    x = np.asarray(patterns, dtype=np.float32)
    m, ky, kx = x.shape
    shifts = np.asarray(shifts, dtype=np.float64).reshape(m, 2)
    out = np.zeros_like(x)
    fl = np.floor(shifts)
    fr = (shifts - fl).astype(np.float32)
    iy, ix = fl[:, 0].astype(int), fl[:, 1].astype(int)
    for a, wy in ((0, 1 - fr[:, 0]), (1, fr[:, 0])):
        for b, wx in ((0, 1 - fr[:, 1]), (1, fr[:, 1])):
            w = (wy * wx)[:, None, None]
            for i in range(m):                  # integer shifts differ per pattern
                dy, dx = iy[i] + a, ix[i] + b
                ys, yd = (slice(0, ky - dy), slice(dy, ky)) if dy >= 0 else \
                    (slice(-dy, ky), slice(0, ky + dy))
                xs, xd = (slice(0, kx - dx), slice(dx, kx)) if dx >= 0 else \
                    (slice(-dx, kx), slice(0, kx + dx))
                if ys.start < ys.stop and xs.start < xs.stop:
                    out[i, yd, xd] += w[i] * x[i, ys, xs]
    return out


def _centre_noise(yx: np.ndarray, centres: np.ndarray) -> float:
    """Measurement noise of the centres (pixels): half the mean squared difference of
    neighbouring sampled positions along a scan row, where any real drift hardly changes."""
    same_row = yx[1:, 0] == yx[:-1, 0]
    d = np.diff(centres, axis=0)[same_row]
    if d.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.sum(d ** 2, axis=1)) / 2))


def _quadratic_design(yx: np.ndarray, scan_shape) -> np.ndarray:
    sy, sx = scan_shape
    u = yx[:, 0] / max(sy - 1, 1) - 0.5
    v = yx[:, 1] / max(sx - 1, 1) - 0.5
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=1)


def fit_drift(positions: np.ndarray, centres: np.ndarray, scan_shape) -> tuple[np.ndarray, float]:
    """Least-squares quadratic surface of the beam centres over the scan (two rounds,
    the second without centres more than 3 RMS off). Returns (coefficients (6, 2), RMS)."""
    A = _quadratic_design(positions.astype(np.float64), scan_shape)
    keep = np.ones(len(A), bool)
    for _ in range(2):
        coef, *_ = np.linalg.lstsq(A[keep], centres[keep], rcond=None)
        res = np.linalg.norm(A @ coef - centres, axis=1)
        rms = float(np.sqrt(np.mean(res[keep] ** 2)))
        keep = res <= max(3 * rms, 1e-6)
    return coef, rms


def sample_positions(scan_shape, *, rows: int = 8, per_row: int = 128) -> np.ndarray:
    """A sample of scan positions for measurements of the whole scan: ``per_row``
    positions on each of ``rows`` evenly spaced scan rows (few rows, so a store chunked
    by rows is read only in part). Returns int64 (n, 2) of (y, x), row-major."""
    sy, sx = scan_shape
    ys = np.unique(np.linspace(0, sy - 1, min(rows, sy)).round().astype(np.int64))
    xs = np.unique(np.linspace(0, sx - 1, min(per_row, sx)).round().astype(np.int64))
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([yy.ravel(), xx.ravel()], axis=1)


def gather(data: Array, yx: np.ndarray) -> np.ndarray:
    """The patterns at scan positions ``yx`` (n, 2) as float32 (n, ky, kx); dask reads
    only the chunks that hold them."""
    if is_dask(data):
        order = np.lexsort((yx[:, 1], yx[:, 0]))
        got = np.asarray(data.vindex[yx[order, 0], yx[order, 1]].compute(), np.float32)
        out = np.empty_like(got)
        out[order] = got
        return out
    return np.asarray(data[yx[:, 0], yx[:, 1]], np.float32)


def plan_descan(scan_shape, yx: np.ndarray, sample: np.ndarray, mode: str = "auto", *,
                field: str = "preprocessing.centre") -> dict[str, Any]:
    """Measure the drift of the direct beam on a sample of positions and decide.

    Parameters
    ----------
    scan_shape : (int, int)
    yx : ndarray of shape (n, 2)
        Sampled positions (:func:`sample_positions`).
    sample : ndarray of shape (n, ky, kx)
        Their patterns (:func:`gather`), offset already subtracted.
    mode : {"auto", "on", "off"}

    Returns
    -------
    dict
        The record: ``mode``, ``applied``, ``reference`` (cy, cx), ``drift_px`` (largest
        distance of a sampled centre from the median), ``model`` ("quadratic" or
        "per-pattern"), ``rms_px`` (of the model), ``coefficients`` (when modelled), and
        ``reason`` in words. The drift is that of the fitted quadratic surface, which
    averages the centres' measurement noise out (the noise, ``noise_px``, is measured from
    neighbouring positions); the patterns are centred one by one only when the centres
    scatter around the surface by more than half a pixel and twice their noise
    (``roughness_px``). Raises ConfigError (``field``) when ``mode`` is "on" and no
        direct beam can be found.
    """
    if mode == "off":
        return {"mode": "off", "applied": False, "reason": "not asked for"}
    sy, sx = scan_shape
    mean = sample.mean(axis=0, dtype=np.float64)
    peak, smooth = beam_peak(mean)
    bg, top = float(np.median(smooth)), float(smooth[peak])
    region = direct_beam_region(mean)
    radius = float(np.sqrt(region.sum() / np.pi)) + 2.0
    centres, strength = beam_centres(sample, peak, radius)
    found = top > 3 * max(bg, 1e-12) and np.median(strength) > 0.05
    if not found:
        if mode == "on":
            raise ConfigError(field, mode, "no direct beam found to centre on (the mean "
                              "pattern has no bright disc); use off")
        return {"mode": mode, "applied": False,
                "reason": "no clear direct beam: descan not measured"}
    ref = np.median(centres, axis=0)
    coef, rms = fit_drift(yx, centres, (sy, sx))
    noise = _centre_noise(yx, centres)
    A = _quadratic_design(yx.astype(np.float64), (sy, sx))
    model = A @ coef
    drift = float(np.max(np.linalg.norm(model - ref, axis=1)))
    # standard error of the fitted surface at the sampled positions (both axes)
    lev = np.einsum("ij,jk,ik->i", A, np.linalg.pinv(A.T @ A), A)
    model_se = float(noise * np.sqrt(2 * lev.max()))
    rough = float(np.sqrt(max(rms ** 2 - noise ** 2, 0.0)))   # real pattern-to-pattern part
    rec = {"mode": mode, "reference": [float(v) for v in ref], "drift_px": drift,
           "drift_se_px": model_se, "rms_px": rms, "noise_px": noise, "roughness_px": rough,
           "radius_px": radius, "sampled": int(len(yx))}
    per_pattern = rough > max(AUTO_THRESHOLD_PX, 2 * noise)
    if mode == "auto" and not per_pattern and (drift <= AUTO_THRESHOLD_PX
                                               or drift <= 3 * model_se):
        why = (f"at most {drift:.2f} px (<= {AUTO_THRESHOLD_PX} px)" if drift <= AUTO_THRESHOLD_PX
               else f"{drift:.2f} px, not distinguishable from no drift (3 standard errors: "
               f"{3 * model_se:.2f} px)")
        rec.update(applied=False, reason=f"the beam moves {why} over the scan (centres "
                   f"measured to {noise:.2f} px): not corrected")
        return rec
    if not per_pattern:
        rec.update(applied=True, model="quadratic", coefficients=coef.tolist(),
                   reason=f"the beam moves up to {drift:.2f} px, a smooth descan (quadratic "
                   f"model; centres measured to {noise:.2f} px): corrected")
    else:
        rec.update(applied=True, model="per-pattern",
                   reason=f"the beam moves up to {drift:.2f} px and {rough:.2f} px from "
                   "pattern to pattern beyond a smooth descan: each pattern centred on its "
                   "own beam")
    return rec


def _k_descan(block: np.ndarray, plan: dict, scan_shape, out_dtype, block_info=None):
    sy0, sy1 = block_info[0]["array-location"][0] if block_info else (0, block.shape[0])
    sx0, sx1 = block_info[0]["array-location"][1] if block_info else (0, block.shape[1])
    by, bx, ky, kx = block.shape
    yy, xx = np.meshgrid(np.arange(sy0, sy1), np.arange(sx0, sx1), indexing="ij")
    yx = np.stack([yy.ravel(), xx.ravel()], axis=1)
    flat = np.asarray(block, np.float32).reshape(-1, ky, kx)
    ref = np.asarray(plan["reference"])
    if plan["model"] == "quadratic":
        centres = _quadratic_design(yx.astype(np.float64), scan_shape) @ np.asarray(
            plan["coefficients"])
    else:
        centres, _ = beam_centres(flat, tuple(ref), plan["radius_px"])
    out = shift_patterns(flat, ref[None, :] - centres)
    return out.reshape(by, bx, ky, kx).astype(out_dtype, copy=False)


def apply_descan(data: Array, plan: dict) -> Array:
    """Shift every pattern as :func:`plan_descan` decided (lazy for dask; float32)."""
    if not plan.get("applied"):
        return data
    scan_shape = data.shape[:2]
    if not is_dask(data):
        return _k_descan(np.asarray(data), plan, scan_shape, np.float32)
    from ..arrays import whole_patterns
    d = whole_patterns(data)
    return d.map_blocks(_k_descan, plan=plan, scan_shape=scan_shape, out_dtype=np.float32,
                        dtype=np.float32)
