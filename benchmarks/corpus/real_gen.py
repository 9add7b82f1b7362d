"""Generator 4: scans tiled from real detector patterns.

The real recordings in ``shared/formats/`` (see `paths`; read with rosettasciio):

* ``astar_3x2.blo`` — 6 precession patterns of one crystal, NanoMegas ASTAR camera,
  144x144 uint8 (gamma on, saturated direct beam), 200 kV; reciprocal calibration
  unknown (the file gives 0.0161 cm per pixel on the camera);
* ``nbed_2x2.hspy`` — 4 nano-beam patterns of a steel with precipitates, 256x256
  uint16, 0.01261 Å⁻¹ per pixel; voltage not recorded.

All recordings of a file show the same crystal in the same orientation (cosines
> 0.99), so distinct grains are made by turning a real pattern about its direct beam
(and mirroring it): a crystal turned about the beam axis is a genuinely different
orientation, and its pattern is the real pattern turned. How it is done:

1. dark level (0.5th percentile) subtracted, so the camera's floor is not signal; the
   recordings of the file averaged (less of the camera's noise);
2. the mean split into a fixed background ``B`` (azimuthal median around the beam —
   direct beam, halo, diffuse scattering — plus the smooth non-symmetric rest, the
   camera's vignetting, which does not turn with a crystal) and the reflections
   ``S`` (what exceeds ``B`` by more than 1.5 noise sigmas, dilated by a pixel;
   see `decompose`);
3. grain g's pattern at thickness factor t: ``B + t * turn_g(S)``, resampled
   (bilinear after a Gaussian pre-filter when shrinking) to the chosen pattern size
   around a beam placed near the centre; reflections turned out of the frame are lost;
4. grains' angles (and mirrors) are drawn until the blurred ``turn_g(S)`` have
   pairwise cosines <= ``max_spot_cosine``;
5. orientation gradients: the turn angle varies across the grain by
   ``gradient_deg`` (in ``gradient_steps`` steps); a tilt of the crystal (which would
   change which reflections are excited) is not modelled;
6. backgrounds: vacuum is the real direct beam, the radial profile cut off smoothly
   at twice the beam's half width (the camera's halo beyond it is dropped); a
   "diffuse" region is ``B`` alone (stands in for an amorphous or film-only region);
7. the expected pattern (normalised to ``dose``) is descanned and recorded by the
   detector model (`detector`).

Truth indices: grains ``0..n_grains-1``, then the diffuse region (if
``film_fraction > 0``), then vacuum (if ``vacuum_fraction > 0``); contributions in
overlap bands are projected thickness shares (`layout`). ``euler`` stores the turn
as (phi1, 0, 0) relative to the recorded orientation (mirror in ``extra``).
"""
from __future__ import annotations

from functools import lru_cache
import numpy as np
from scipy import ndimage

from . import detector as det
from .case import Case, stack_basis, truth_from_contributions
from .layout import draw_layout, smooth_field
from .paths import formats_dir

SOURCES = {
    "astar": dict(file="astar_3x2.blo", reader="blockfile", scale=None, voltage=200.0,
                  precession=True, note="ASTAR precession patterns, calibration unknown "
                  "(0.0161 cm per camera pixel)"),
    "nbed": dict(file="nbed_2x2.hspy", reader="hspy", scale=0.01261, voltage=None,
                 precession=False, note="nano-beam diffraction of a steel with precipitates"),
}

DEFAULTS = dict(
    source="astar", n_grains=5, scan=(48, 48), pattern=(128, 128),
    zoom=None,                  # detector px per source px; default pattern / source size
    centre_offset_px=1.5, mirror=True, max_spot_cosine=0.5,
    film_fraction=0.0, vacuum_fraction=0.0, edge_roughness=0.3,
    band_width=0.0, band_profile="plateau", size_spread=0.3,
    thickness_variation=0.3, gradient_deg=0.0, gradient_steps=7,
    descan_px=0.0, dose=2000.0, detector=None, scan_step_nm=5.0,
)


@lru_cache(maxsize=None)
def load_source(source: str):
    """Recordings of a source file, dark-subtracted: (n, ky, kx) float64, and metadata."""
    info = SOURCES[source]
    import importlib
    reader = importlib.import_module(f"rsciio.{info['reader']}")
    d = reader.file_reader(str(formats_dir() / info["file"]))[0]
    arr = np.asarray(d["data"], np.float64)
    recs = arr.reshape(-1, *arr.shape[-2:])
    recs = np.stack([np.maximum(r - np.percentile(r, 0.5), 0.0) for r in recs])
    return recs, info


def _beam_centre(p: np.ndarray):
    """(row, col) centroid of the brightest pixels (>= 90 % of the maximum)."""
    from scipy.ndimage import gaussian_filter
    sm = gaussian_filter(p, 1.0)
    pk = np.unravel_index(np.argmax(sm), sm.shape)
    yy, xx = np.indices(p.shape)
    near = np.hypot(yy - pk[0], xx - pk[1]) < 8
    w = np.where(near & (sm >= 0.9 * sm.max()), sm, 0.0)
    return float((w * yy).sum() / w.sum()), float((w * xx).sum() / w.sum())


@lru_cache(maxsize=None)
def decompose(source: str):
    """Split the mean recording into a fixed background and its reflections.

    ``background = radial + median_filter(mean - radial, 15 px)``: the azimuthal
    median around the beam (direct beam, halo, diffuse scattering) plus the smooth
    non-symmetric rest (the camera's vignetting, which does not turn with a crystal).
    ``spots`` = what exceeds it by more than 1.5 noise sigmas (after a 1-px smoothing),
    dilated by one pixel: the reflections.

    Returns
    -------
    dict with ``profile`` (n_r,) the radial median at radii 0, 1, ... px, ``hwhm``
    (px), ``background`` and ``spots`` (ky, kx) in the source's pixels, ``centre``
    (row, col).
    """
    recs, _ = load_source(source)
    mean = recs.mean(axis=0)
    c = _beam_centre(mean)
    yy, xx = np.indices(mean.shape)
    r = np.hypot(yy - c[0], xx - c[1])
    ri = np.floor(r).astype(int)
    prof = np.array([np.median(mean[ri == i]) if np.any(ri == i) else np.nan
                     for i in range(ri.max() + 1)])
    prof = np.where(np.isnan(prof), np.nanmin(prof), prof)
    radial = np.interp(r, np.arange(len(prof)), prof)
    bg = radial + ndimage.median_filter(mean - radial, size=15, mode="nearest")
    rest = mean - bg
    sm = ndimage.gaussian_filter(rest, 1.0)
    sigma = 1.4826 * np.median(np.abs(sm - np.median(sm)))
    mask = ndimage.binary_dilation(sm > 1.5 * sigma, iterations=1)
    spots = np.where(mask, np.maximum(rest, 0.0), 0.0)
    half = np.nonzero(prof < 0.5 * prof[0])[0]
    hwhm = float(half[0]) if len(half) else 2.0
    return dict(profile=prof, hwhm=max(hwhm, 1.0), background=np.maximum(bg, 0.0),
                spots=spots, centre=c)


def _sample(img, centre_src, canvas, centre_tgt, zoom, angle, mirror, mode="constant"):
    """Resample ``img`` onto ``canvas`` turned by ``angle`` (rad) about the beam."""
    if zoom < 1:
        img = ndimage.gaussian_filter(img, 0.45 / zoom)
    yy, xx = np.indices(canvas, dtype=np.float64)
    dy, dx = (yy - centre_tgt[0]) / zoom, (xx - centre_tgt[1]) / zoom
    if mirror:
        dx = -dx
    ca, sa = np.cos(angle), np.sin(angle)
    sy_, sx_ = ca * dy - sa * dx, sa * dy + ca * dx
    return ndimage.map_coordinates(img, [centre_src[0] + sy_, centre_src[1] + sx_],
                                   order=1, mode=mode, cval=0.0)


def _radial(profile, canvas, centre_tgt, zoom, cut=None):
    yy, xx = np.indices(canvas, dtype=np.float64)
    r = np.hypot(yy - centre_tgt[0], xx - centre_tgt[1]) / zoom
    out = np.interp(r, np.arange(len(profile)), profile)
    if cut is not None:
        out = out * np.exp(-(r / cut) ** 4)
    return out


def make_case(spec: dict, seed: int) -> Case:
    """Make one scan tiled from real patterns (see the module docstring).

    Parameters
    ----------
    spec : dict
        Options overriding `DEFAULTS`; ``source`` is "astar" or "nbed".
    seed : int
        Seed of every random choice: sub-streams for the layout (0), the grains (1),
        descan and detector frame (2) and counting noise (3).

    Returns
    -------
    Case
        ``truth.patterns`` (k_true, ky, kx): each index at thickness factor 1, the
        centre of its gradient, without descan.
    """
    s = dict(DEFAULTS)
    s.update({k: v for k, v in spec.items() if k not in ("name", "split", "generator")})
    sy, sx = s["scan"]
    ky, kx = s["pattern"]
    recs, info = load_source(s["source"])
    dec = decompose(s["source"])
    zoom = s["zoom"] or min(ky / recs.shape[1], kx / recs.shape[2])
    m = int(np.ceil(s["descan_px"])) + 2 if s["descan_px"] > 0 else 0
    canvas = (ky + 2 * m, kx + 2 * m)
    r_lay, r_gr, r_det, r_noise = (np.random.default_rng([seed, j]) for j in range(4))
    off = r_gr.uniform(-1, 1, 2) * s["centre_offset_px"]
    ct = ((ky - 1) / 2 + off[0] + m, (kx - 1) / 2 + off[1] + m)

    R = _sample(dec["background"], dec["centre"], canvas, ct, zoom, 0.0, False, "nearest")
    norm = R[m:m + ky, m:m + kx].sum()
    vac = _radial(dec["profile"], canvas, ct, zoom, cut=2 * dec["hwhm"])
    vac /= vac.sum()

    n = s["n_grains"]
    grains = []
    frame = (slice(m, m + ky), slice(m, m + kx))
    for g in range(n):
        for attempt in range(3000):
            ang = r_gr.uniform(0, 2 * np.pi)
            mir = bool(s["mirror"] and r_gr.uniform() < 0.5)
            img = _sample(dec["spots"], dec["centre"], canvas, ct, zoom, ang, mir)
            pos = ndimage.gaussian_filter(np.maximum(img[frame], 0), 1.5)
            pos /= np.linalg.norm(pos)
            if all(float(np.sum(pos * q["blur"])) <= s["max_spot_cosine"] for q in grains):
                break
        else:
            raise ValueError(f"could not draw grain {g} distinct from the others")
        angles = [ang]
        if s["gradient_deg"] > 0:
            angles = ang + np.deg2rad(np.linspace(-s["gradient_deg"] / 2, s["gradient_deg"] / 2,
                                                  s["gradient_steps"]))
        imgs = [_sample(dec["spots"], dec["centre"], canvas, ct, zoom, a, mir) / norm
                for a in angles]
        grains.append(dict(angle=ang, mirror=mir, blur=pos, images=imgs))

    lay = draw_layout((sy, sx), r_lay, n_grains=n, vacuum_fraction=s["vacuum_fraction"],
                      film_fraction=s["film_fraction"], band_width=s["band_width"],
                      band_profile=s["band_profile"], size_spread=s["size_spread"],
                      edge_roughness=s["edge_roughness"])
    tv = s["thickness_variation"]
    thick = 1 + tv * (2 * smooth_field((sy, sx), r_lay) - 1)

    basis, first_col, n_steps = stack_basis([vac, R / norm], grains)
    D = float(s["dose"])
    coef = np.zeros((sy, sx, len(basis)))
    coef[..., 0] = D * (lay.region == 2)
    coef[..., 1] = D * (lay.region <= 1)
    for which, sh in ((lay.first, 1 - lay.share), (lay.second, lay.share)):
        for i in range(n):
            sel = (which == i) & (lay.region == 0) & (sh > 0)
            if not sel.any():
                continue
            step = np.rint((lay.gcoord[i][sel] + 1) / 2 * (n_steps - 1)).astype(int)
            iy, ix = np.nonzero(sel)
            coef[iy, ix, first_col[i] + step] += D * sh[sel] * thick[sel]

    shifts = det.descan_field((sy, sx), s["descan_px"], r_det)
    dtr = det.detector_from_spec(s)
    dtr.prepare((ky, kx), r_det)
    data = det.record_scan(coef, basis, dtr, r_noise, shifts=shifts, margin=m)

    film_idx = n if s["film_fraction"] > 0 else None
    vac_idx = (n + (film_idx is not None)) if s["vacuum_fraction"] > 0 else None
    contrib = lay.contributions(film_idx, vac_idx)
    c = (n_steps - 1) // 2
    pats = [np.maximum(R / norm + g["images"][c], 0) for g in grains]
    names = [f"grain {i} ({s['source']}, "
             f"{np.rad2deg(g['angle']):.0f} deg{' mirrored' if g['mirror'] else ''})"
             for i, g in enumerate(grains)]
    phase = [f"real:{s['source']}"] * n
    euler = [[g["angle"], 0.0, 0.0] for g in grains]
    for idx, pat, name in ((film_idx, R, "diffuse"), (vac_idx, vac, "vacuum")):
        if idx is not None:
            pats.append(pat)
            names.append(name)
            phase.append(None)
            euler.append([np.nan] * 3)
    pats = det.crop(np.array(pats), m)
    pats = (pats / pats.sum(axis=(1, 2), keepdims=True)).astype(np.float32)
    truth = truth_from_contributions(
        contrib, background=[b for b in (film_idx, vac_idx) if b is not None], names=names,
        phase=phase, euler=np.array(euler, np.float64), patterns=pats,
        extra={"gradient_deg": np.full(n, float(s["gradient_deg"])),
               "mirror": np.array([g["mirror"] for g in grains]),
               "thickness": thick.astype(np.float32),
               "descan_px": shifts.astype(np.float32)})
    truth.check()
    scale = None if info["scale"] is None else info["scale"] / zoom
    meta = dict(generator="real", name=spec.get("name"), split=spec.get("split"),
                spec=dict(spec), seed=int(seed), k_true=truth.k_true,
                calibration=dict(reciprocal_scale=scale, voltage_kV=info["voltage"],
                                 precession_deg=None if not info["precession"] else "unknown",
                                 beam_centre=[ct[0] - m, ct[1] - m], zoom=zoom,
                                 scan_step_nm=s["scan_step_nm"]),
                detector=dtr.describe(), dose=D, source=info["file"], source_note=info["note"],
                descan_max_px=float(np.abs(shifts).max()))
    return Case(data=data, truth=truth, meta=meta)
