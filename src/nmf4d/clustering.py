"""From NMF components to clusters: distinct patterns, backgrounds, and what is left out.

NMF's rank is not the number of distinct patterns of a scan: orientation gradients,
thickness and a support film add real rank, so beyond the number of distinct patterns NMF
splits one orientation into variants, splits the direct beam off into a component of its
own, or fits noise. :func:`assess_fit` turns one fit into clusters:

1. **Reflections** of every component (:func:`reflections`): the component's pattern
   outside the direct-beam disc, minus its azimuthal average (what a ring or a flat level
   explains), lightly smoothed; its local maxima that stand above five times its own
   noise (median absolute deviation) and a tenth of its strongest maximum.
2. **Significance** of every weight (:func:`weight_z`): a weight over its standard error
   under the detector's noise (Poisson counts, or gain times counts plus read noise,
   :mod:`nmf4d.preprocess.dark`), with the pattern's expected intensity approximated by
   the position's total times the mean pattern (the model of the Poisson weighting).
3. **Backgrounds**: components significant at nearly every position (the direct beam, a
   film, an offset), and components with no reflection of their own (diffuse). A
   component significant everywhere is still a crystal when its reflections are its own
   and its share of the intensity has spatial contrast (:func:`share_contrast`): at high dose
   the part of the shared background a crystal component took up makes it significant
   everywhere, but a background has no grain of its own.
4. **One orientation, one cluster**: components that share at least half of their
   reflection intensity beyond chance (reflections within the patterns' spot radius, HWHM
   clipped to 1-5 px, of each other; chance
   coincidences of randomly placed reflections discounted, as Cohen's kappa does) are
   merged when those reflections are of comparable strength (within a factor of 4: a
   component that leaks faint copies of another's reflections, like a beam component,
   is no variant of it); they are variants of one orientation (gradient, thickness),
   since distinct orientations share few reflections.
5. **Labels**: each position belongs to the cluster of its largest *significant* crystal
   component, else to its largest background, else to "nothing significant" (a region
   without signal). Before merging, components that own fewer than ``max(3, 0.2 %)`` of
   the positions are dropped one at a time, the smallest first (their positions
   relabelled): they fit noise.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .background import radial_average
from .beam import beam_peak, direct_beam_region

#: A weight is significant at this many standard errors.
Z_MIN = 5.0
#: Reflections: maxima above this many noise sigmas of the pattern ...
SPOT_Z = 5.0
#: ... and above this share of its strongest maximum.
SPOT_REL = 0.1
#: Two reflections within this many pixels are the same reflection.
SPOT_TOL_PX = 2.5
#: ... and, by default, within the patterns' spot radius, clipped to this range.
TOL_MIN_PX, TOL_MAX_PX = 1.0, 5.0
#: Components sharing at least this share of their reflection intensity are merged ...
SHARED_MIN = 0.5
#: ... when their shared reflections are of comparable strength (within a factor 4): a
#: component that merely leaks faint copies of another's reflections is not a variant.
STRENGTH_MIN = 0.25
#: A component significant at this share of the positions or more is a background ...
UBIQUITY = 0.9
#: ... unless its reflections are its own and its share of the intensity where it is the
#: largest is this many times its share elsewhere (:func:`share_contrast`). A shared background's
#: share changes only with thickness: 1.25-1.8 times on the design half's fits (beam, film,
#: halo; thickness +-30-60 %); crystal components that took up part of the background had
#: 3.3-7 times there.
CONTRAST = 2.0


@dataclass
class Reflections:
    """The reflections of one pattern: ``positions`` (m, 2) (row, col), ``intensity`` (m,)."""

    positions: np.ndarray
    intensity: np.ndarray
    #: half width at half maximum of its reflections (pixels, median over them)
    radius: float = SPOT_TOL_PX

    def __len__(self) -> int:
        return len(self.intensity)


def reflections(pattern: np.ndarray, beam_mask: np.ndarray, centre, *, z: float = SPOT_Z,
                rel: float = SPOT_REL) -> Reflections:
    """The reflections of a pattern (see the module docstring, step 1).

    Parameters
    ----------
    pattern : ndarray of shape (ky, kx)
    beam_mask : ndarray of bool, shape (ky, kx)
        The direct-beam disc (left out).
    centre : (float, float)
        Centre of the azimuthal average (the beam).
    """
    p = np.where(beam_mask, 0.0, np.asarray(pattern, np.float64))
    r = np.clip(p - radial_average(p, centre, beam_mask), 0, None)
    r = ndimage.gaussian_filter(r, 1.0)
    vals = r[~beam_mask]
    if vals.size == 0 or not np.any(vals > 0):
        return Reflections(np.zeros((0, 2), int), np.zeros(0))
    med = float(np.median(vals))
    noise = 1.4826 * float(np.median(np.abs(vals - med)))
    # maxima at the disc's edge are the beam's tail, not reflections
    edge = ndimage.binary_dilation(beam_mask, iterations=2)
    peaks = (r == ndimage.maximum_filter(r, size=5)) & ~edge & \
        (r >= max(z * noise + med, rel * float(r.max()))) & (r > 0)
    yy, xx = np.nonzero(peaks)
    return Reflections(np.stack([yy, xx], axis=1), r[yy, xx], _hwhm(r, yy, xx))


def _hwhm(r: np.ndarray, yy, xx, half: int = 6) -> float:
    """Median half width at half maximum of the peaks at (yy, xx) of ``r``: the radius of
    the disc with the area of the peak's connected region above half its maximum."""
    radii = []
    structure = ndimage.generate_binary_structure(2, 1)
    for y, x in zip(yy, xx):
        y0, x0 = max(0, y - half), max(0, x - half)
        win = r[y0:y + half + 1, x0:x + half + 1]
        lab, _ = ndimage.label(win >= 0.5 * r[y, x], structure=structure)
        area = int((lab == lab[y - y0, x - x0]).sum())
        radii.append(np.sqrt(area / np.pi))
    return float(np.median(radii)) if radii else SPOT_TOL_PX


def _tol(a: "Reflections", b: "Reflections", tol: float | None) -> float:
    """Two reflections are one when closer than the patterns' spot radius (HWHM; at
    least 1 px): a distinct orientation moves its reflections by more than their width."""
    if tol is not None:
        return tol
    return float(np.clip(0.5 * (a.radius + b.radius), TOL_MIN_PX, TOL_MAX_PX))


def shared_reflections(a: Reflections, b: Reflections, *, tol: float | None = None,
                       area: float | None = None) -> float:
    """How far two patterns share their reflections, beyond chance.

    For each pattern, the share of its reflection intensity that the other has a
    reflection for (within ``tol`` pixels), corrected for the share expected by chance
    when the other's reflections were scattered at random over ``area`` pixels
    (``1 - exp(-n_other pi tol^2 / area)``), as Cohen's kappa corrects agreement:
    ``(share - chance) / (1 - chance)``. Returns the smaller of the two (0 when either
    pattern has no reflection). On a small detector with dense spot lattices, chance
    coincidences are frequent; on sparse patterns the correction is negligible.
    """
    if len(a) == 0 or len(b) == 0:
        return 0.0
    tol = _tol(a, b, tol)
    dist = np.linalg.norm(a.positions[:, None, :] - b.positions[None, :, :], axis=2)
    fa = a.intensity[dist.min(axis=1) <= tol].sum() / a.intensity.sum()
    fb = b.intensity[dist.min(axis=0) <= tol].sum() / b.intensity.sum()
    if area:
        ca = 1 - np.exp(-len(b) * np.pi * tol ** 2 / area)
        cb = 1 - np.exp(-len(a) * np.pi * tol ** 2 / area)
        fa = (fa - ca) / max(1 - ca, 1e-12)
        fb = (fb - cb) / max(1 - cb, 1e-12)
    return float(np.clip(min(fa, fb), 0.0, 1.0))


def own_share(a: Reflections, others: list, *, tol: float = SPOT_TOL_PX) -> float:
    """Share of a pattern's reflection intensity that no other pattern has (within
    ``tol`` pixels): 1 for a crystal's own reflections, near 0 for a beam component whose
    few "reflections" leaked from the crystals."""
    if len(a) == 0:
        return 0.0
    pos = [o.positions for o in others if len(o)]
    if not pos:
        return 1.0
    dist = np.linalg.norm(a.positions[:, None, :] - np.concatenate(pos)[None, :, :],
                          axis=2).min(axis=1)
    return float(a.intensity[dist > tol].sum() / a.intensity.sum())


def weight_z(weights: np.ndarray, components: np.ndarray, row_sums: np.ndarray,
             col_means: np.ndarray, *, gain: float = 1.0, read_variance: float = 0.0
             ) -> np.ndarray:
    """Each weight over its standard error (see the module docstring, step 2).

    Parameters
    ----------
    weights : ndarray of shape (k, n)
    components : ndarray of shape (k, p), each summing to 1
    row_sums : ndarray of shape (n,)
        Total intensity of each position.
    col_means : ndarray of shape (p,)
        Mean pattern.
    gain, read_variance : float
        Noise model: variance = gain * mean + read_variance (1 and 0 for counts).

    Returns
    -------
    ndarray of shape (k, n)
    """
    W = np.asarray(weights, np.float64)
    H2 = np.asarray(components, np.float64) ** 2
    u = np.asarray(col_means, np.float64)
    u = u / max(float(u.sum()), 1e-300)
    u = np.maximum(u, 1e-6 * max(float(u.max()), 1e-300))
    T = np.maximum(np.asarray(row_sums, np.float64), 1e-12)
    if read_variance <= 0:
        kappa = (H2 / u[None, :]).sum(axis=1)
        return W * np.sqrt(kappa[:, None] / (max(gain, 1e-12) * T[None, :]))
    # Fisher information sum_p H^2 / (gain T u_p + read_variance): tabulated on a grid of T
    grid = np.geomspace(T.min(), T.max() * 1.0001 + 1e-12, 48)
    info = np.stack([(H2 / (gain * t * u[None, :] + read_variance)).sum(axis=1)
                     for t in grid], axis=1)
    lg, lt = np.log(grid), np.log(T)
    return np.stack([W[c] * np.sqrt(np.interp(lt, lg, info[c])) for c in range(W.shape[0])])


@dataclass
class FitClusters:
    """What :func:`assess_fit` found in one fit.

    Attributes
    ----------
    rank : int
        Components of the fit.
    n_clusters : int
        Distinct patterns: crystal clusters, backgrounds and "nothing significant" that
        own at least ``min_size`` positions.
    labels : ndarray of shape (n,), int
        Cluster of every position: ``cluster_of`` maps components to clusters; label
        ``rank`` is "nothing significant".
    cluster_of : ndarray of shape (rank + 1,), int
        Cluster (a representative component index; ``rank`` for "nothing significant")
        of every component; -1 for dropped components.
    background : list of int
        Background components.
    kinds : dict int -> str
        Why each background is one: "ubiquitous" or "diffuse".
    n_reflections : ndarray of shape (rank,)
    shared : ndarray of shape (rank, rank)
        Shared reflection intensity between components.
    presence : ndarray of shape (rank,)
        Share of positions where each component is significant.
    dropped : list of int
        Components whose cluster owned too few positions.
    merged : list of list of int
        Components merged into one cluster because they share their reflections (groups
        of two or more): one orientation.
    heldout_merged : list of list of int
        Components whose clusters the held-out test merged (:mod:`nmf4d.heldout`: they do
        not differ on held-out counts); each group lists every component of the merged
        cluster. Empty unless the test ran on this fit and merged.
    strength : ndarray of shape (rank, rank)
        :func:`reflection_strength` of the pairs that share enough reflections to be
        considered for a merge (0 elsewhere).
    spot_radius : ndarray of shape (rank,)
        Spot radius (HWHM, px) of every component's reflections.
    contrast : dict int -> float
        :func:`share_contrast` of the components significant nearly everywhere that it
        measured.
    readmitted : list of int
        Those of them that are crystals all the same (contrast at least ``contrast``).
    """

    rank: int
    n_clusters: int
    labels: np.ndarray
    cluster_of: np.ndarray
    background: list
    kinds: dict
    n_reflections: np.ndarray
    shared: np.ndarray
    presence: np.ndarray
    dropped: list = field(default_factory=list)
    merged: list = field(default_factory=list)
    heldout_merged: list = field(default_factory=list)
    strength: np.ndarray | None = None
    spot_radius: np.ndarray | None = None
    contrast: dict = field(default_factory=dict)
    readmitted: list = field(default_factory=list)

    @property
    def clusters(self) -> list[int]:
        """The clusters that own positions (representative indices), sorted."""
        return sorted(set(int(v) for v in np.unique(self.labels)))


def assess_fit(weights: np.ndarray, components: np.ndarray, pattern_shape, *, row_sums,
               col_means, gain: float = 1.0, read_variance: float = 0.0, z_min: float = Z_MIN,
               shared_min: float = SHARED_MIN, ubiquity: float = UBIQUITY,
               contrast: float = CONTRAST, min_size: int = 3, keep_all: bool = False,
               grouping: np.ndarray | None = None) -> FitClusters:
    """Clusters of one fit (see the module docstring).

    Parameters
    ----------
    weights : ndarray of shape (k, n)
        In intensity units.
    components : ndarray of shape (k, p), each summing to 1
    pattern_shape : (int, int)
    row_sums, col_means : ndarray of shape (n,) and (p,)
        Of the data that was fitted (input units).
    gain, read_variance : float
        The detector's noise model.
    z_min, shared_min, ubiquity, contrast : float
    min_size : int
        Fewest positions a cluster must own.
    keep_all : bool
        One cluster per component (a given k): nothing merged or dropped, no "nothing
        significant" label; backgrounds are still found and labels still background-aware.
    grouping : ndarray of shape (k + 1,), int, optional
        The clusters of an earlier assessment of the same components (its
        ``cluster_of``; -1 for a dropped component): the final fit, refined from the
        sweep's fit of the chosen rank, keeps the grouping the decision counted.
    """
    W = np.asarray(weights, np.float64)
    k, n = W.shape
    H = np.asarray(components, np.float64).reshape(k, *pattern_shape)
    mean = H.mean(axis=0)
    mask = direct_beam_region(mean)
    centre, _ = beam_peak(mean)
    refl = [reflections(H[c], mask, centre) for c in range(k)]
    sig = weight_z(W, H.reshape(k, -1), row_sums, col_means, gain=gain,
                   read_variance=read_variance) >= z_min
    presence = sig.mean(axis=1)
    kinds = {c: "ubiquitous" for c in range(k) if presence[c] >= ubiquity}
    contrasts = share_contrast(W, refl, sorted(kinds), ubiquity=ubiquity)
    readmitted = sorted(c for c, v in contrasts.items() if v >= contrast)
    for c in readmitted:
        del kinds[c]
    kinds.update({c: "diffuse" for c in range(k) if len(refl[c]) == 0 and c not in kinds})
    background = sorted(kinds)
    crystal = np.array([c not in kinds for c in range(k)])
    shared = np.zeros((k, k))
    parent = list(range(k + 1))

    def find(a):
        while parent[a] != a:
            a = parent[a]
        return a
    for i in range(k):
        for j in range(i + 1, k):
            if crystal[i] and crystal[j]:
                shared[i, j] = shared[j, i] = shared_reflections(
                    refl[i], refl[j], area=float((~mask).sum()))
    alive = np.ones(k, bool) if grouping is None else np.asarray(grouping[:k]) >= 0
    labels = _labels(W, sig, crystal, alive, k, nothing=not keep_all)
    dropped = [] if grouping is None else [int(c) for c in np.flatnonzero(~alive)]
    if grouping is not None:
        for c in range(k):
            if alive[c]:
                parent[c] = int(grouping[c])
        if len(grouping) > k and int(grouping[k]) != k:     # "nothing" merged into a cluster
            parent[k] = int(grouping[k])
    for _ in range(0 if keep_all or grouping is not None else k):   # drop the component owning fewest, relabel
        counts = np.bincount(labels, minlength=k + 1)
        small = [c for c in range(k) if alive[c] and counts[c] < min_size]
        if not small:
            break
        c = small[int(np.argmin(counts[small]))]
        alive[c] = False
        dropped.append(c)
        labels = _labels(W, sig, crystal, alive, k)
    strength = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            if shared[i, j] >= shared_min:
                strength[i, j] = strength[j, i] = reflection_strength(refl[i], refl[j])
            if not keep_all and grouping is None and alive[i] and alive[j] and \
                    shared[i, j] >= shared_min and strength[i, j] >= STRENGTH_MIN:
                parent[find(j)] = find(i)
    cluster_of = np.array([find(c) if c == k or alive[c] else -1 for c in range(k + 1)])
    labels = cluster_of[labels]
    sizes = {int(v): int(c) for v, c in zip(*np.unique(labels, return_counts=True))}
    if sizes.get(k, min_size) < min_size:       # too few "nothing significant" positions
        rest = labels == k
        labels[rest] = cluster_of[np.argmax(np.where(alive[:, None], W[:, rest], -np.inf), 0)]
    return FitClusters(rank=k, n_clusters=len(np.unique(labels)), labels=labels,
                       cluster_of=cluster_of, background=background, kinds=kinds,
                       n_reflections=np.array([len(r) for r in refl]), shared=shared,
                       presence=presence, dropped=dropped,
                       merged=merged_groups(cluster_of, k), strength=strength,
                       spot_radius=np.array([r.radius for r in refl]),
                       contrast=contrasts, readmitted=readmitted)


def share_contrast(weights: np.ndarray, refl: list, ubiquitous: list, *,
                   ubiquity: float = UBIQUITY) -> dict[int, float]:
    """How far the share of components significant nearly everywhere has a grain of its own.

    NMF is not unique: a crystal's component can take up part of the background every
    pattern shares (a halo, the beam's tail), and at high dose even that small part is
    significant at every position. A background's share of a pattern changes only with
    thickness, slowly; a crystal component's share outside its grain is only the part of
    the background it took up. A member of ``ubiquitous`` is measured when

    * its reflections are its own (at least half of their intensity is not in the crystal
      components, those not in ``ubiquitous``: :func:`own_share`), and
    * it is the largest share, among the components not in ``ubiquitous`` and the
      members of ``ubiquitous`` of the first point, at some positions but not at a
      ``ubiquity`` share of them;

    its contrast is its median share of the intensity where it is the largest over its
    median share elsewhere. :func:`assess_fit` keeps it a crystal at ``CONTRAST`` or more.

    Parameters
    ----------
    weights : ndarray of shape (k, n)
    refl : list of Reflections, length k
    ubiquitous : list of int
        Components significant at a ``ubiquity`` share of the positions or more.

    Returns
    -------
    dict int -> float
        The contrast of every measured member of ``ubiquitous``.
    """
    W = np.asarray(weights, np.float64)
    crys = [c for c in range(W.shape[0]) if c not in ubiquitous]
    own = [c for c in ubiquitous if own_share(refl[c], [refl[j] for j in crys]) >= 0.5]
    cand = crys + own
    share = W / np.maximum(W.sum(axis=0), 1e-300)
    largest = np.asarray(cand)[np.argmax(share[cand], axis=0)] if cand else None
    out = {}
    for c in own:
        owned = largest == c
        if owned.any() and owned.mean() < ubiquity:
            out[int(c)] = float(np.median(share[c][owned]) /
                                max(float(np.median(share[c][~owned])), 1e-300))
    return out


def merged_groups(cluster_of: np.ndarray, rank: int) -> list[list[int]]:
    """Components sharing a cluster (groups of two or more), from ``cluster_of`` of
    shape (rank + 1,) (-1: dropped)."""
    groups: dict[int, list[int]] = {}
    for c in range(rank):
        if cluster_of[c] >= 0:
            groups.setdefault(int(cluster_of[c]), []).append(c)
    return [g for g in groups.values() if len(g) > 1]


def _labels(W, sig, crystal, alive, k, nothing: bool = True):
    """Largest significant crystal, else largest background, else k ("nothing"; the
    largest weight when ``nothing`` is False)."""
    cr = crystal & alive
    Wc = np.where(cr[:, None] & sig, W, -np.inf)
    lab = np.argmax(Wc, axis=0)
    has = np.isfinite(Wc.max(axis=0))
    bg = ~crystal & alive
    if bg.any():
        lab = np.where(has, lab, np.argmax(np.where(bg[:, None], W, -np.inf), axis=0))
        has = has | (sig & bg[:, None]).any(axis=0)
    if not nothing:
        return np.where(has, lab, np.argmax(np.where(alive[:, None], W, -np.inf), axis=0))
    return np.where(has, lab, k)


def reflection_strength(a: Reflections, b: Reflections, *, tol: float | None = None) -> float:
    """Median, over the reflections the two patterns share, of the fainter one's
    intensity over the brighter one's (patterns of unit sum); 0 when none is shared."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    tol = _tol(a, b, tol)
    dist = np.linalg.norm(a.positions[:, None, :] - b.positions[None, :, :], axis=2)
    j = dist.argmin(axis=1)
    near = dist[np.arange(len(a)), j] <= tol
    if not near.any():
        return 0.0
    ia, ib = a.intensity[near], b.intensity[j[near]]
    return float(np.median(np.minimum(ia, ib) / np.maximum(np.maximum(ia, ib), 1e-300)))
