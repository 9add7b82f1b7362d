"""Where things are in a scan: grains, film-only and vacuum regions, overlap bands.

Shared by the diffsims and real-pattern generators (the nmf4d and pyxem generators use
their own layouts). Everything is drawn from the ``numpy.random.Generator`` passed in.

Geometry
--------
* Vacuum (a hole in the support film) and a film-only strip (film without crystals)
  are cut off one corner of the scan by a straight edge, optionally roughened by a
  smooth random field: vacuum | film-only | grains, as near the edge of a hole.
* Grains fill the rest: a power diagram (Voronoi cells of best-candidate seeds whose
  squared distances are offset by random weights, so grain sizes vary by
  ``size_spread``).
* Overlap bands along grain-grain boundaries, ``band_width`` scan pixels wide.
  Profile ``"linear"``: a planar boundary inclined through the film, the share of the
  far grain rising linearly from 0 at the band edge to 1/2 on the boundary (so the
  second/first ratio reaches 0.75 only within 0.07 band widths of it).
  Profile ``"plateau"``: two grains overlapping in projection (one partly on top of
  the other) with tapered edges: equal shares over the central half of the band,
  linear ramps over the outer quarters.
* A gradient coordinate per grain in [-1, 1] (the position projected on a random
  direction, scaled by the grain's extent along it), for orientation gradients.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def smooth_field(shape, rng: np.random.Generator, n_waves: int = 3,
                 freq=(0.5, 2.0)) -> np.ndarray:
    """A smooth random field scaled to [0, 1].

    Parameters
    ----------
    shape : (int, int)
    rng : numpy.random.Generator
    n_waves : int
        Number of plane waves summed.
    freq : (float, float)
        Range of spatial frequencies, in cycles per scan (largest side).

    Returns
    -------
    ndarray of shape ``shape``, float64
    """
    sy, sx = shape
    yy, xx = np.mgrid[0:sy, 0:sx] / max(sy, sx, 1)
    f = np.zeros(shape)
    for _ in range(n_waves):
        ang = rng.uniform(0, 2 * np.pi)
        k = rng.uniform(*freq)
        ph = rng.uniform(0, 2 * np.pi)
        f += np.cos(2 * np.pi * k * (np.cos(ang) * yy + np.sin(ang) * xx) + ph)
    f -= f.min()
    mx = f.max()
    return f / mx if mx > 0 else f


@dataclass
class Layout:
    """A drawn scan layout.

    Attributes
    ----------
    region : ndarray of shape (sy, sx), int8
        0 grain, 1 film-only, 2 vacuum.
    first : ndarray of shape (sy, sx), int32
        Grain with the larger share (-1 outside grains).
    second : ndarray of shape (sy, sx), int32
        Neighbouring grain seen in an overlap band (-1 where none).
    share : ndarray of shape (sy, sx), float64
        Share of ``second`` (0..1/2); ``first`` has ``1 - share``.
    gcoord : ndarray of shape (n_grains, sy, sx), float64
        Gradient coordinate of every grain at every position, clipped to [-1, 1].
    n_grains : int
    """

    region: np.ndarray
    first: np.ndarray
    second: np.ndarray
    share: np.ndarray
    gcoord: np.ndarray
    n_grains: int

    def contributions(self, film_index: int | None, vacuum_index: int | None) -> np.ndarray:
        """Contribution of each truth index, shape (k_true, sy, sx).

        Grains are indices 0..n_grains-1; ``film_index`` / ``vacuum_index`` (or None when
        the scan has no such region) follow.
        """
        n = self.n_grains
        k = n + (film_index is not None) + (vacuum_index is not None)
        sy, sx = self.region.shape
        c = np.zeros((k, sy, sx))
        iy, ix = np.nonzero(self.region == 0)
        c[self.first[iy, ix], iy, ix] += 1 - self.share[iy, ix]
        band = self.second[iy, ix] >= 0
        c[self.second[iy, ix][band], iy[band], ix[band]] += self.share[iy, ix][band]
        if film_index is not None:
            c[film_index][self.region == 1] = 1.0
        if vacuum_index is not None:
            c[vacuum_index][self.region == 2] = 1.0
        return c


def _regions(shape, rng, vacuum_fraction, film_fraction, edge_roughness):
    sy, sx = shape
    region = np.zeros(shape, np.int8)
    if vacuum_fraction <= 0 and film_fraction <= 0:
        return region
    yy, xx = np.mgrid[0:sy, 0:sx].astype(np.float64)
    corner = rng.integers(4)
    uy = yy / sy if corner in (0, 1) else 1 - yy / sy
    ux = xx / sx if corner in (0, 2) else 1 - xx / sx
    slope = rng.uniform(0.6, 1.6)
    u = uy + slope * ux
    if edge_roughness > 0:
        u = u + edge_roughness * (smooth_field(shape, rng, 4, (1.0, 3.0)) - 0.5)
    q_v = np.quantile(u, vacuum_fraction) if vacuum_fraction > 0 else -np.inf
    q_f = np.quantile(u, vacuum_fraction + film_fraction) if film_fraction > 0 else q_v
    region[u <= q_f] = 1
    region[u <= q_v] = 2
    return region


def draw_layout(scan_shape, rng: np.random.Generator, *, n_grains: int,
                vacuum_fraction: float = 0.0, film_fraction: float = 0.0,
                band_width: float = 0.0, band_profile: str = "plateau",
                size_spread: float = 0.3, edge_roughness: float = 0.0,
                min_share: float = 0.4, max_tries: int = 300) -> Layout:
    """Draw a scan layout (see the module docstring).

    Parameters
    ----------
    scan_shape : (int, int)
        (scan_y, scan_x).
    rng : numpy.random.Generator
    n_grains : int
        Number of grains (>= 1).
    vacuum_fraction, film_fraction : float
        Shares of the scan that are vacuum and film without crystals.
    band_width : float
        Width of the overlap bands in scan pixels (0: sharp boundaries).
    band_profile : {"plateau", "linear"}
    size_spread : float
        Spread of grain sizes (0: Voronoi cells of evenly spread seeds).
    edge_roughness : float
        Amplitude of the roughness of the vacuum/film edges (0: straight).
    min_share : float
        Every grain (and region) must own at least this share of the mean grain area
        outside bands; layouts are redrawn until they do.
    max_tries : int

    Returns
    -------
    Layout

    Raises
    ------
    ValueError
        When no layout satisfies ``min_share`` in ``max_tries`` draws.
    """
    if band_profile not in ("plateau", "linear"):
        raise ValueError(f"band_profile {band_profile!r}: use 'plateau' or 'linear'")
    sy, sx = scan_shape
    yy, xx = np.mgrid[0:sy, 0:sx].astype(np.float64)
    for _ in range(max_tries):
        region = _regions(scan_shape, rng, vacuum_fraction, film_fraction, edge_roughness)
        solid = region == 0
        pts = np.argwhere(solid).astype(np.float64)
        area = solid.sum() / n_grains
        seeds = [pts[rng.integers(len(pts))]]
        for _ in range(n_grains - 1):
            cand = pts[rng.integers(len(pts), size=12)]
            d = np.min(np.linalg.norm(cand[:, None] - np.array(seeds)[None], axis=-1), axis=1)
            seeds.append(cand[np.argmax(d)])
        seeds = np.array(seeds) + rng.uniform(-0.5, 0.5, (n_grains, 2))
        weights = rng.uniform(0, size_spread, n_grains) * area / np.pi
        d2 = ((yy[None] - seeds[:, 0, None, None]) ** 2
              + (xx[None] - seeds[:, 1, None, None]) ** 2) - weights[:, None, None]
        order = np.argsort(d2, axis=0, kind="stable")
        first = order[0].astype(np.int32)
        if n_grains > 1:
            second = order[1].astype(np.int32)
            a = np.take_along_axis(d2, order[:1], 0)[0]
            b = np.take_along_axis(d2, order[1:2], 0)[0]
            sep = np.linalg.norm(seeds[first] - seeds[second], axis=-1)
            dist_b = (b - a) / (2 * np.maximum(sep, 1e-9))   # distance to the boundary
        else:
            second = np.full((sy, sx), -1, np.int32)
            dist_b = np.full((sy, sx), np.inf)
        if band_width > 0 and n_grains > 1:
            if band_profile == "linear":
                share = np.clip(0.5 - dist_b / band_width, 0.0, 0.5)
            else:
                share = 0.5 * np.clip((band_width / 2 - dist_b) / (band_width / 4), 0.0, 1.0)
        else:
            share = np.zeros((sy, sx))
        share[~solid] = 0.0
        first[~solid] = -1
        second = np.where(share > 0, second, -1).astype(np.int32)
        pure = solid & (share == 0)
        counts = np.bincount(first[pure], minlength=n_grains)
        ok = counts.min() >= min_share * area
        for r, frac in ((1, film_fraction), (2, vacuum_fraction)):
            if frac > 0:
                ok &= (region == r).sum() >= min(min_share * area, 0.5 * frac * sy * sx)
        if ok:
            break
    else:
        raise ValueError(f"no layout of {n_grains} grains in a {sy}x{sx} scan gives every "
                         f"grain {min_share:.0%} of the mean area in {max_tries} draws")
    gcoord = np.zeros((n_grains, sy, sx))
    for i in range(n_grains):
        ang = rng.uniform(0, 2 * np.pi)
        proj = (yy - seeds[i, 0]) * np.cos(ang) + (xx - seeds[i, 1]) * np.sin(ang)
        own = first == i
        half = np.abs(proj[own]).max() if own.any() else 1.0
        gcoord[i] = np.clip(proj / max(half, 1e-9), -1.0, 1.0)
    return Layout(region=region, first=first, second=second, share=share, gcoord=gcoord,
                  n_grains=n_grains)
