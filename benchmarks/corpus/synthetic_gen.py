"""Generator 3: nmf4d's own synthetic polycrystals (`nmf4d.synthetic.make_polycrystal`).

The layout, grain patterns and truth are exactly those of ``make_polycrystal`` with the
spec's options and the case seed (its noise-free expected patterns, ``dose=None``).
This module then optionally adds what that generator lacks, then records counts:

* ``extra_beam`` — a share of every position's electrons moved into the direct beam
  (the same Gaussian beam as nmf4d's vacuum pattern, sigma 1.3 ``spot_sigma``), so
  the beam shared by all patterns is brighter than nmf4d's fixed 35 %;
* ``descan_px`` — the pattern moves across the scan (`detector.descan_field`); what
  lies beyond the detector's edge is taken as zero (nmf4d's patterns are nearly
  empty there);
* ``detector`` — counting (default, Poisson like nmf4d's) or integrating with dark
  offset, gain and read noise.

Truth: ``make_polycrystal``'s (grains, then vacuum); contributions are its per-pattern
intensity fractions, so ``ratio`` is its ratio. Counting noise is drawn from a
generator seeded by ``[seed, 3]``, not by ``make_polycrystal`` itself.
"""
from __future__ import annotations

import numpy as np

from . import detector as det
from .case import Case, truth_from_contributions

DEFAULTS = dict(scan=(48, 48), pattern=(64, 64), n_grains=5, vacuum=True,
                vacuum_fraction=0.15, overlap_width=4.0, thickness_variation=0.3,
                spot_sigma=1.0, min_angle_deg=12.0, dose=2000.0, extra_beam=0.0,
                descan_px=0.0, detector=None, scan_step_nm=5.0)


def make_case(spec: dict, seed: int) -> Case:
    """Make one nmf4d-synthetic scan.

    Parameters
    ----------
    spec : dict
        Options overriding `DEFAULTS` (``make_polycrystal``'s, plus ``extra_beam``,
        ``descan_px``, ``detector``).
    seed : int
        ``make_polycrystal``'s seed; sub-streams ``[seed, 2]`` (descan, dark frame) and
        ``[seed, 3]`` (counting noise).

    Returns
    -------
    Case
        ``truth.patterns`` (k_true, ky, kx): make_polycrystal's patterns with the extra
        beam mixed in.
    """
    from nmf4d.synthetic import make_polycrystal

    s = dict(DEFAULTS)
    s.update({k: v for k, v in spec.items() if k not in ("name", "split", "generator")})
    sy, sx = s["scan"]
    ky, kx = s["pattern"]
    _, tr = make_polycrystal(tuple(s["scan"]), tuple(s["pattern"]), n_grains=s["n_grains"],
                             vacuum=s["vacuum"], vacuum_fraction=s["vacuum_fraction"],
                             overlap_width=s["overlap_width"],
                             thickness_variation=s["thickness_variation"], dose=None,
                             spot_sigma=s["spot_sigma"], min_angle_deg=s["min_angle_deg"],
                             seed=seed)
    pats = tr.patterns.astype(np.float64)
    b = float(s["extra_beam"])
    if b > 0:
        centre = ((ky - 1) / 2, (kx - 1) / 2)
        beam = det.convolve(det.splat((ky, kx), [centre[0]], [centre[1]], [1.0]),
                            det.probe_kernel((ky, kx), 0.0, 1.3 * s["spot_sigma"]))
        beam /= beam.sum()
        pats = (1 - b) * pats + b * beam[None]
    m = int(np.ceil(s["descan_px"])) + 2 if s["descan_px"] > 0 else 0
    basis = np.pad(pats, ((0, 0), (m, m), (m, m)))
    coef = np.moveaxis(tr.fractions.astype(np.float64), 0, -1) * float(s["dose"])
    r_det, r_noise = np.random.default_rng([seed, 2]), np.random.default_rng([seed, 3])
    shifts = det.descan_field((sy, sx), s["descan_px"], r_det)
    dtr = det.detector_from_spec(s)
    dtr.prepare((ky, kx), r_det)
    data = det.record_scan(coef, basis, dtr, r_noise, shifts=shifts, margin=m)

    k = tr.k_true
    vac = tr.vacuum_index
    names = [f"grain {i}" for i in range(k)]
    if vac >= 0:
        names[vac] = "vacuum"
    truth = truth_from_contributions(
        tr.fractions, background=[vac] if vac >= 0 else [], names=names,
        phase=[None] * k, euler=np.full((k, 3), np.nan),
        patterns=(pats / pats.sum(axis=(1, 2), keepdims=True)).astype(np.float32),
        extra={"descan_px": shifts.astype(np.float32)})
    # make_polycrystal's own labels/ratio must agree with the contributions
    assert np.array_equal(truth.labels, tr.labels)
    truth.check()
    import nmf4d
    meta = dict(generator="synthetic", name=spec.get("name"), split=spec.get("split"),
                spec=dict(spec), seed=int(seed), k_true=truth.k_true,
                nmf4d_version=getattr(nmf4d, "__version__", None),
                calibration=dict(reciprocal_scale=None, voltage_kV=None, precession_deg=None,
                                 beam_centre=[(ky - 1) / 2, (kx - 1) / 2],
                                 scan_step_nm=s["scan_step_nm"]),
                detector=dtr.describe(), dose=float(s["dose"]),
                descan_max_px=float(np.abs(shifts).max()))
    return Case(data=data, truth=truth, meta=meta)
