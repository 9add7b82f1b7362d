"""Pattern rendering and the detector: probe discs, spots, rings, descan, noise.

Shared by the generators. Conventions: a pattern is (ky, kx) = (row, col); a spot at
reciprocal coordinates (x, y) Å⁻¹ (diffsims' convention: x along columns, y along rows)
lands at pixel ``(row, col) = (centre_row + y / scale, centre_col + x / scale)``.

Physical model and its simplifications
--------------------------------------
* Every reflection is a copy of the probe: a disc of the convergence semi-angle
  (radius ``alpha / lambda`` in Å⁻¹) blurred by the detector's point spread (a
  Gaussian). Dynamical effects inside discs (rocking curves, Kikuchi lines) are not
  modelled.
* Descan: the whole pattern (direct beam and reflections) moves with the scan
  position, linearly plus an optional quadratic term, as an imperfectly descanned
  beam does; applied as a sub-pixel Fourier shift of each position's pattern.
* Counting detector: Poisson counts, stored as uint16.
* Integrating detector (CCD/CMOS behind a scintillator): ``gain * Poisson(counts) +
  dark + read noise``, float32, where ``dark`` is a fixed per-pixel offset frame
  (mean ``dark_offset``, 10 % smooth fixed-pattern variation) and read noise is
  Gaussian. Gain fluctuations of single electrons and their spread over neighbouring
  pixels are not modelled.
"""
from __future__ import annotations

import numpy as np

from .layout import smooth_field


def electron_wavelength(kv: float) -> float:
    """Relativistic electron wavelength in Å for an accelerating voltage in kV."""
    h, m0, e, c = 6.62607015e-34, 9.1093837015e-31, 1.602176634e-19, 2.99792458e8
    v = kv * 1e3
    return h / np.sqrt(2 * m0 * e * v * (1 + e * v / (2 * m0 * c ** 2))) * 1e10


def probe_kernel(shape, radius_px: float, sigma_px: float) -> np.ndarray:
    """The image of one beam: a disc of ``radius_px`` blurred by a Gaussian, sum 1.

    Parameters
    ----------
    shape : (int, int)
        Pattern shape (ky, kx); the kernel is centred on pixel (0, 0) with wrap-around
        (ready for FFT convolution).
    radius_px : float
        Disc radius in pixels (0: a point).
    sigma_px : float
        Gaussian point-spread sigma in pixels.

    Returns
    -------
    ndarray of shape ``shape``, float64
    """
    ky, kx = shape
    fy = np.fft.fftfreq(ky)[:, None]
    fx = np.fft.fftfreq(kx)[None, :]
    q = np.hypot(fy, fx)
    otf = np.exp(-2 * (np.pi * sigma_px * q) ** 2)
    if radius_px > 0:
        from scipy.special import j1
        arg = 2 * np.pi * radius_px * q
        disc = np.ones_like(q)
        nz = arg > 1e-12
        disc[nz] = 2 * j1(arg[nz]) / arg[nz]
        otf = otf * disc
    k = np.fft.irfft2(otf[:, : kx // 2 + 1], s=shape)
    k = np.maximum(k, 0.0)
    return k / k.sum()


def splat(shape, rows, cols, amps) -> np.ndarray:
    """Deposit point intensities at sub-pixel positions (bilinear; centroids exact).

    Parameters
    ----------
    shape : (int, int)
    rows, cols, amps : ndarray of shape (n,)
        Positions (pixels) and intensities; points outside the frame are dropped.

    Returns
    -------
    ndarray of shape ``shape``, float64
    """
    ky, kx = shape
    rows, cols, amps = (np.asarray(a, np.float64) for a in (rows, cols, amps))
    out = np.zeros(shape)
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    fr, fc = rows - r0, cols - c0
    for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (1, 0, fr * (1 - fc)),
                      (0, 1, (1 - fr) * fc), (1, 1, fr * fc)):
        r, c = r0 + dr, c0 + dc
        ok = (r >= 0) & (r < ky) & (c >= 0) & (c < kx)
        np.add.at(out, (r[ok], c[ok]), amps[ok] * w[ok])
    return out


def convolve(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Circular FFT convolution of a (ky, kx) image with a wrap-around kernel."""
    out = np.fft.irfft2(np.fft.rfft2(img) * np.fft.rfft2(kernel), s=img.shape)
    return np.maximum(out, 0.0)


def render_spots(shape, centre, xy, intensity, scale, kernel) -> np.ndarray:
    """Spots at reciprocal coordinates rendered with the probe kernel.

    Parameters
    ----------
    shape : (int, int)
    centre : (float, float)
        Direct-beam position (row, col) in pixels.
    xy : ndarray of shape (n, 2)
        Reciprocal coordinates (x, y) in Å⁻¹ (x along columns, y along rows).
    intensity : ndarray of shape (n,)
    scale : float
        Å⁻¹ per pixel.
    kernel : ndarray of shape ``shape``
        From `probe_kernel`.

    Returns
    -------
    ndarray of shape ``shape``, float64 (sum = intensity of the spots in the frame)
    """
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    rows = centre[0] + xy[:, 1] / scale
    cols = centre[1] + xy[:, 0] / scale
    return convolve(splat(shape, rows, cols, intensity), kernel)


def radial_image(shape, centre, scale, profile) -> np.ndarray:
    """A rotationally symmetric pattern ``profile(s)`` with s in Å⁻¹ (or px if scale=1).

    Evaluated on a 3x3 sub-pixel grid per pixel (no aliasing of narrow rings).
    """
    ky, kx = shape
    sub = (np.arange(3) - 1) / 3.0
    out = np.zeros(shape)
    yy, xx = np.mgrid[0:ky, 0:kx].astype(np.float64)
    for dy in sub:
        for dx in sub:
            s = np.hypot(yy + dy - centre[0], xx + dx - centre[1]) * scale
            out += profile(s)
    return out / 9.0


def amorphous_carbon(s: np.ndarray) -> np.ndarray:
    """Diffuse scattering of an amorphous carbon film as a function of s = 1/d (Å⁻¹).

    Two broad rings at s = 0.47 Å⁻¹ (d = 2.1 Å) and 0.84 Å⁻¹ (d = 1.2 Å), the
    positions of the first two maxima of evaporated amorphous carbon (near graphite's
    100 and 110 spacings), a weak one at 0.29 Å⁻¹ (d = 3.5 Å, the 002-like
    interlayer spacing), on a smooth background falling off from the centre
    (atomic form-factor and inelastic scattering). Relative heights are typical, not
    fitted to a measurement.
    """
    rings = (1.0 * np.exp(-0.5 * ((s - 0.47) / 0.07) ** 2)
             + 0.45 * np.exp(-0.5 * ((s - 0.84) / 0.10) ** 2)
             + 0.15 * np.exp(-0.5 * ((s - 0.29) / 0.05) ** 2))
    diffuse = 0.6 / (1 + (s / 0.25) ** 2)
    return rings * (1 - np.exp(-(s / 0.12) ** 2)) + diffuse


def descan_field(scan_shape, amplitude_px: float, rng: np.random.Generator,
                 quadratic: float = 0.3) -> np.ndarray:
    """Shift of the pattern (rows, cols) at each scan position, in pixels.

    Linear ramps along both scan axes with random directions, plus a quadratic term of
    relative size ``quadratic``, scaled so the largest shift is ``amplitude_px``.

    Returns
    -------
    ndarray of shape (sy, sx, 2), float64 (zero when amplitude_px is 0)
    """
    sy, sx = scan_shape
    out = np.zeros((sy, sx, 2))
    if amplitude_px <= 0:
        return out
    u = np.linspace(-1, 1, sy)[:, None] * np.ones((1, sx))
    v = np.ones((sy, 1)) * np.linspace(-1, 1, sx)[None, :]
    for j in range(2):
        a, b, c = rng.normal(size=3)
        out[..., j] = a * u + b * v + quadratic * c * (u * v)
    out *= amplitude_px / max(np.abs(out).max(), 1e-12)
    return out


def fourier_shift(block: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Shift each pattern of a (n, ky, kx) block by (n, 2) pixels (sub-pixel, circular).

    Negative ringing is clipped to zero.
    """
    n, ky, kx = block.shape
    fy = np.fft.fftfreq(ky)[None, :, None]
    fx = np.fft.rfftfreq(kx)[None, None, :]
    ph = np.exp(-2j * np.pi * (fy * shifts[:, 0, None, None] + fx * shifts[:, 1, None, None]))
    out = np.fft.irfft2(np.fft.rfft2(block) * ph, s=(ky, kx))
    return np.maximum(out, 0.0)


class Detector:
    """Turns expected counts into recorded data (see the module docstring).

    Parameters
    ----------
    kind : {"counting", "integrating"}
    gain : float
        ADU per electron (integrating only).
    dark_offset : float
        Mean dark offset in ADU (integrating only).
    read_noise : float
        Gaussian read noise sigma in ADU (integrating only).
    """

    def __init__(self, kind: str = "counting", gain: float = 1.0, dark_offset: float = 0.0,
                 read_noise: float = 0.0):
        if kind not in ("counting", "integrating"):
            raise ValueError(f"detector kind {kind!r}: use 'counting' or 'integrating'")
        self.kind, self.gain = kind, float(gain)
        self.dark_offset, self.read_noise = float(dark_offset), float(read_noise)
        self.dark = None

    @property
    def dtype(self):
        return np.uint16 if self.kind == "counting" else np.float32

    def describe(self) -> dict:
        return {"kind": self.kind, "dtype": np.dtype(self.dtype).name, "gain": self.gain,
                "dark_offset": self.dark_offset, "read_noise": self.read_noise}

    def prepare(self, pattern_shape, rng: np.random.Generator) -> None:
        """Draw the fixed dark frame (integrating detectors)."""
        if self.kind == "integrating":
            fp = smooth_field(pattern_shape, rng, 4, (0.5, 3.0)) - 0.5
            self.dark = self.dark_offset * (1 + 0.2 * fp)

    def record(self, expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Record a block of expected counts (any shape ending in (ky, kx))."""
        counts = rng.poisson(np.maximum(expected, 0.0))
        if self.kind == "counting":
            if counts.max(initial=0) > np.iinfo(np.uint16).max:
                raise ValueError("counts exceed uint16: lower the dose")
            return counts.astype(np.uint16)
        out = self.gain * counts + self.dark
        out = out + rng.normal(0.0, self.read_noise, size=out.shape) if self.read_noise > 0 \
            else out
        return out.astype(np.float32)


def detector_from_spec(spec: dict) -> Detector:
    """A `Detector` from a spec's ``detector`` entry (default: counting)."""
    d = dict(spec.get("detector") or {"kind": "counting"})
    return Detector(**d)


def record_scan(coef: np.ndarray, basis: np.ndarray, detector: Detector,
                rng: np.random.Generator, shifts: np.ndarray | None = None,
                margin: int = 0, block_rows: int = 8) -> np.ndarray:
    """Expected counts ``coef @ basis`` per position, descanned, cropped, then recorded.

    Parameters
    ----------
    coef : ndarray of shape (sy, sx, n_basis)
        Expected electrons of each basis pattern at each position.
    basis : ndarray of shape (n_basis, ky + 2 margin, kx + 2 margin)
        Basis patterns rendered on a canvas ``margin`` pixels larger than the detector
        on every side (so that descan brings in what lies beyond its edge).
    detector : Detector
        Prepared (`Detector.prepare`) when integrating.
    rng : numpy.random.Generator
        Noise generator; blocks of ``block_rows`` scan rows are drawn in order.
    shifts : ndarray of shape (sy, sx, 2), optional
        Descan shift of each position in pixels (at most ``margin``).
    margin : int
    block_rows : int

    Returns
    -------
    ndarray of shape (sy, sx, ky, kx), ``detector.dtype``
    """
    sy, sx, nb = coef.shape
    _, py, px = basis.shape
    ky, kx = py - 2 * margin, px - 2 * margin
    if shifts is not None and np.abs(shifts).max(initial=0) > margin:
        raise ValueError("descan shifts exceed the rendering margin")
    B = basis.reshape(nb, py * px)
    out = np.empty((sy, sx, ky, kx), detector.dtype)
    for r0 in range(0, sy, block_rows):
        r1 = min(sy, r0 + block_rows)
        lam = (coef[r0:r1].reshape(-1, nb) @ B).reshape(-1, py, px)
        if shifts is not None and np.any(shifts[r0:r1] != 0):
            lam = fourier_shift(lam, shifts[r0:r1].reshape(-1, 2))
        lam = lam[:, margin:margin + ky, margin:margin + kx]
        out[r0:r1] = detector.record(lam, rng).reshape(r1 - r0, sx, ky, kx)
    return out


def crop(img: np.ndarray, margin: int) -> np.ndarray:
    """The detector's part of a canvas rendered with ``margin`` (last two axes)."""
    if margin == 0:
        return img
    return img[..., margin:img.shape[-2] - margin, margin:img.shape[-1] - margin]
