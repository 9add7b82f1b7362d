"""Background components, and cluster labels that a background does not hide.

A *background* component is a pattern that is not a crystal: the direct beam alone
(vacuum), a diffuse ring or a flat level (an amorphous support film, a detector offset).
It is recognised from its pattern (:func:`background_evidence`):

- ``beam_fraction``: share of its intensity inside the direct-beam disc (the beam alone
  puts nearly all of it there; a crystal scatters a good part into reflections);
- ``isotropy``: how much of its intensity outside the beam disc a radial profile explains
  (the cosine between the pattern and its azimuthal average): a ring or a flat level is
  isotropic, spots are not.

Where a background is the largest contribution at every position (a bright beam, a film,
an offset), the paper's labels (the largest weight) are the background everywhere.
:func:`background_aware_labels` labels each position by its largest *crystal* weight
where that weight is significant — larger than ``z_min`` standard errors of its estimate
under counting noise (:func:`weight_z`: the Fisher information of a weight in a Poisson
model, scaled by the measured dispersion of the data around the fit, so that integrating
detectors with a gain are handled too) — and by its largest background weight elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .beam import beam_peak, direct_beam_region

#: A component with at least this share of its intensity in the beam disc is the beam alone.
BEAM_FRACTION_MIN = 0.8
#: A component whose beam-free pattern its radial profile explains this well is a ring/flat.
ISOTROPY_MIN = 0.9
#: A crystal weight is significant at this many standard errors.
Z_MIN = 5.0


@dataclass
class BackgroundEvidence:
    """What :func:`background_evidence` measured, per component.

    Attributes
    ----------
    beam_fraction : ndarray of shape (k,)
    isotropy : ndarray of shape (k,)
    background : list of int
        Components found to be background.
    kinds : dict int -> str
        "vacuum" (the beam alone) or "diffuse" (ring or flat level) for each background.
    """

    beam_fraction: np.ndarray
    isotropy: np.ndarray
    background: list
    kinds: dict


def radial_average(pattern: np.ndarray, centre, mask: np.ndarray | None = None) -> np.ndarray:
    """The azimuthal average of a pattern about ``centre`` (1-pixel rings), as an image.

    Parameters
    ----------
    pattern : ndarray of shape (ky, kx)
    centre : (float, float)
    mask : ndarray of bool, shape (ky, kx), optional
        Pixels left out of the averages (set to 0 in the result).
    """
    yy, xx = np.indices(pattern.shape)
    r = np.rint(np.hypot(yy - centre[0], xx - centre[1])).astype(np.int64)
    keep = np.ones(pattern.shape, bool) if mask is None else ~mask
    sums = np.bincount(r[keep], weights=pattern[keep], minlength=r.max() + 1)
    counts = np.bincount(r[keep], minlength=r.max() + 1)
    prof = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    return np.where(keep, prof[r], 0.0)


def background_evidence(components: np.ndarray, *, beam_mask: np.ndarray | None = None
                        ) -> BackgroundEvidence:
    """Which components are background, from their patterns (see the module docstring).

    Parameters
    ----------
    components : ndarray of shape (k, ky, kx)
    beam_mask : ndarray of bool, shape (ky, kx), optional
        The direct-beam disc; by default found on the mean of the components.
    """
    c = np.asarray(components, np.float64)
    k = c.shape[0]
    mean = c.mean(axis=0)
    if beam_mask is None:
        beam_mask = direct_beam_region(mean)
    centre, _ = beam_peak(mean)
    tot = c.sum(axis=(1, 2))
    beam = np.where(tot > 0, c[:, beam_mask].sum(axis=1) / np.where(tot > 0, tot, 1), 0.0)
    iso = np.zeros(k)
    for i in range(k):
        p = np.where(beam_mask, 0.0, c[i])
        a = radial_average(p, centre, beam_mask)
        den = np.linalg.norm(p) * np.linalg.norm(a)
        iso[i] = float((p * a).sum() / den) if den > 0 else 1.0
    bg, kinds = [], {}
    for i in range(k):
        if beam[i] >= BEAM_FRACTION_MIN:
            bg.append(i)
            kinds[i] = "vacuum"
        elif iso[i] >= ISOTROPY_MIN:
            bg.append(i)
            kinds[i] = "diffuse"
    return BackgroundEvidence(beam_fraction=beam, isotropy=iso, background=bg, kinds=kinds)


def weight_z(weights: np.ndarray, components: np.ndarray, *, dispersion: float = 1.0,
             block: int = 4096) -> np.ndarray:
    """Each weight over its standard error under (quasi-)Poisson noise.

    With the model ``m = weights.T @ components`` of a position, the Fisher information
    of weight c is ``sum_p H[c, p]**2 / m_p``; the variance of its estimate is
    ``dispersion`` over that (1 for counts; the measured dispersion for data with a gain
    or extra noise, see :func:`dispersion_of`).

    Parameters
    ----------
    weights : ndarray of shape (k, n)
    components : ndarray of shape (k, p)
    dispersion : float
    block : int
        Positions per block of the computation.

    Returns
    -------
    ndarray of shape (k, n)
    """
    W = np.asarray(weights, np.float64)
    H = np.asarray(components, np.float64)
    k, n = W.shape
    H2 = H * H
    out = np.empty((k, n))
    floor = 1e-12 * max(float(H.max()), 1e-300)
    for s in range(0, n, block):
        Wb = W[:, s:s + block]
        m = np.maximum(Wb.T @ H, floor)                     # (b, p)
        info = (1.0 / m) @ H2.T                             # (b, k)
        out[:, s:s + block] = (Wb.T * np.sqrt(info / max(dispersion, 1e-12))).T
    return out


def dispersion_of(sq_pearson: float, n_values: int, n_params: int) -> float:
    """Pearson dispersion ``sum((V - m)**2 / m) / (N - P)`` from its summed numerator."""
    return float(sq_pearson / max(n_values - n_params, 1))


def background_aware_labels(weights: np.ndarray, background, z: np.ndarray, *,
                            z_min: float = Z_MIN) -> tuple[np.ndarray, np.ndarray]:
    """Labels by the largest significant crystal weight, else the largest background one.

    Parameters
    ----------
    weights : ndarray of shape (k, scan_y, scan_x)
    background : sequence of int
    z : ndarray of shape (k, scan_y, scan_x)
        From :func:`weight_z`.
    z_min : float

    Returns
    -------
    labels : ndarray of shape (scan_y, scan_x), int32
    background_fraction : ndarray of shape (scan_y, scan_x), float32
        Share of each position's total weight that the background components explain.
    """
    w = np.asarray(weights, np.float64)
    k = w.shape[0]
    bg = np.zeros(k, bool)
    bg[[int(b) for b in background if 0 <= int(b) < k]] = True
    total = w.sum(axis=0)
    frac = np.where(total > 0, w[bg].sum(axis=0) / np.where(total > 0, total, 1), 0.0)
    labels = np.argmax(w, axis=0).astype(np.int32)
    if bg.any() and (~bg).any():
        crystal = np.where(bg[:, None, None], -np.inf, w)
        best = np.argmax(crystal, axis=0)
        zbest = np.take_along_axis(np.asarray(z), best[None], 0)[0]
        bgw = np.where(bg[:, None, None], w, -np.inf)
        labels = np.where(zbest >= z_min, best, np.argmax(bgw, axis=0)).astype(np.int32)
    return labels, frac.astype(np.float32)
