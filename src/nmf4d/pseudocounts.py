"""Float data that are counts in disguise: the count quantum, and the counts back.

The held-out test (:mod:`nmf4d.heldout`) splits counts, and some counting data arrive as
floats: counts times a gain (ADU per electron, a calibration to "electrons" or "intensity"
units), plus a small noise or offset below one quantum (pyxem's ``make_4d_stem`` writes
``gain * Poisson + Uniform[0, noise)``). Such values fall on the lattice
``offset + quantum * N``; read noise of an integrating camera (CCD/CMOS) smears them across
it. The test for a lattice is the *phase coherence* of the values at a period ``q``,
``R(q) = |mean(exp(2 pi i x / q))|``: values on the lattice ``offset + q N`` have
``R = 1`` whatever the ``N``; Gaussian noise of ``sigma`` about the lattice gives
``R = exp(-2 pi^2 sigma^2 / q^2)``, and values off any lattice give ``R`` near 0.
``R >= QUANTUM_COHERENCE`` (0.5) means ``sigma <= 0.19 q``, so that rounding
``(x - offset) / q`` gives the count exactly for more than 99 % of the values; below it
the data are not read as counts.

The quantum is searched around a first estimate (the photon-transfer gain of
:func:`nmf4d.preprocess.dark.noise_model`, biased high by signal that differs between
neighbouring positions) on the values above half of it (the zero-count band carries no
information on the period), refined by golden-section search, multiplied by m while the
non-zero counts under it are multiples of m (a lattice of period m q is also one of
period q; tried up to 3x the guess), and finally fitted as the straight line
through (count, value), on ever brighter values. Integer data with a dark offset are
detector units (ADU): their 1-ADU lattice says nothing of counts, and the held-out test
leaves them alone (:func:`nmf4d.pipeline.heldout_counts`); so does float data whose
measured read noise exceeds 0.19 quanta. No library we know of estimates a count quantum
from data; the estimate is tested on data of known gain (``tests/test_pseudocounts.py``).
"""
from __future__ import annotations

import numpy as np

from .arrays import Array, map_patterns

#: Phase coherence of the values at their quantum from which float data are read as counts
#: (noise at most 0.19 quanta: rounding recovers more than 99 % of the counts).
QUANTUM_COHERENCE = 0.5
#: Values used for the search (an evenly spaced subsample above that).
MAX_VALUES = 50_000
#: At least this share of the non-zero counts under a period are multiples of m: the
#: quantum is m times that period.
RESIDUE_SHARE = 0.99


def _phasor(values: np.ndarray, q: float) -> complex:
    """``mean(exp(2 pi i values / q))``: its modulus is the coherence, its angle the
    lattice's offset in units of ``q / (2 pi)``."""
    return complex(np.mean(np.exp(2j * np.pi * values / q))) if values.size else 0j


def coherence(values: np.ndarray, q: float) -> float:
    """Phase coherence ``|mean(exp(2 pi i values / q))|`` of ``values`` at period ``q``."""
    return abs(_phasor(values, q))


def _subsample(values: np.ndarray) -> np.ndarray:
    """At most ``MAX_VALUES`` of ``values``, evenly spaced."""
    if values.size <= MAX_VALUES:
        return values
    return values[np.linspace(0, values.size - 1, MAX_VALUES).astype(np.int64)]


def count_quantum(sample: np.ndarray, guess: float, *, read_noise: float = 0.0
                  ) -> tuple[float, float, float]:
    """The count quantum of float data, its offset and the values' coherence at it.

    Parameters
    ----------
    sample : ndarray of shape (n, ky, kx)
        Patterns from positions spread over the scan.
    guess : float
        A first estimate of the quantum (the photon-transfer gain), > 0.
    read_noise : float
        Read noise measured elsewhere (on the dark pixels), in the data's units. Gaussian
        noise of ``sigma`` quanta allows a coherence of at most ``exp(-2 pi^2 sigma^2)``;
        the coherence returned is the smaller of that and the one measured.

    Returns
    -------
    (quantum, offset, coherence) : (float, float, float)
        ``offset`` in ``[-quantum / 2, quantum / 2)``: the values sit at
        ``offset + quantum * N``. ``coherence`` is 0 when there are no values to measure
        (no counts above half the guess).
    """
    x = np.asarray(sample, np.float64).ravel()
    if not (np.isfinite(guess) and guess > 0):
        return float(guess), 0.0, 0.0
    v = _subsample(x[(x > 0.5 * guess) & (x < 20 * guess)])  # not the zero band nor the tail
    if v.size == 0:
        return float(guess), 0.0, 0.0
    grid = guess * np.linspace(0.5, 1.5, 201)
    r = np.array([coherence(v, q) for q in grid])
    i = int(np.argmax(r))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    for _ in range(30):                                  # golden-section on the peak
        a, b = lo + 0.382 * (hi - lo), lo + 0.618 * (hi - lo)
        if coherence(v, a) > coherence(v, b):
            hi = b
        else:
            lo = a
    q = 0.5 * (lo + hi)
    off = float(np.angle(_phasor(v, q))) / (2 * np.pi) * q
    # values on the lattice of period m q also sit on that of q: then every non-zero
    # count under q is a multiple of m (zero counts are the zero band either way), and
    # the quantum is m q (tried up to 3x the guess). Coherence cannot tell: on sparse data
    # nearly every non-zero value is one count, equally coherent at q and 2 q
    m = 2
    while m * q <= 3 * guess:
        c = np.rint((v - off) / q).astype(np.int64)
        c = c[c > 0]
        if c.size and np.mean(c % m == 0) >= RESIDUE_SHARE:
            q, m = m * q, 2
        else:
            m += 1
    # the coherence peak is biased towards larger q by noise spread within a quantum (its
    # own coherence grows with q); the counts it gives are right, so the straight line
    # through (count, value) gives the quantum and offset without that bias. It is fitted
    # on ever brighter values (up to 20, 100, 500, 2500 quanta, then all), each fit precise
    # enough to round the next range right (to about 1e-4: counts up to a thousand or so
    # come back exact, a direct beam of thousands may be a count or two off)
    bright = _subsample(x[x > 0.5 * guess])
    for top in (20, 20, 100, 500, 2500, np.inf):
        w = bright[bright < top * q]
        c = np.rint((w - off) / q)
        if w.size < 2 or np.ptp(c) < 1:
            continue
        q, off = (float(t) for t in np.polyfit(c, w, 1))
    off = (off + q / 2) % q - q / 2
    allowed = float(np.exp(-2 * np.pi ** 2 * (float(read_noise) / q) ** 2)) if q > 0 else 0.0
    return float(q), float(off), min(coherence(v - off, q), allowed)


def _k_counts(block, quantum, offset, out_dtype):
    block = np.asarray(block)
    out = np.empty(block.shape, out_dtype)
    for i in range(block.shape[0]):                 # a scan row at a time: small temporaries
        row = out[i]
        np.subtract(block[i], offset, out=row, dtype=out_dtype, casting="unsafe")
        np.divide(row, quantum, out=row)
        np.rint(row, out=row)
        np.maximum(row, 0, out=row)
    return out


def as_counts(data: Array, quantum: float, offset: float) -> Array:
    """``rint((data - offset) / quantum)``, at least 0, as float32 (lazy for dask)."""
    return map_patterns(_k_counts, data, data.shape[2:], np.dtype(np.float32),
                        quantum=float(quantum), offset=float(offset))
