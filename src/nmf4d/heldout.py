"""A held-out test of the clusters: do two clusters differ on counts they were not fitted to?

At low dose NMF can split one region (a film, a diffuse background, one grain) into
several components that each fit part of its noise; every test of :mod:`nmf4d.clustering`
is in-sample (the components were fitted to the very counts the tests look at), so such
splits pass them. Count splitting (binomial thinning; Neufeld, Dharamshi, Gao & Witten,
"Inference after latent variable estimation for single-cell RNA sequencing data", 2023)
gives two independent halves of Poisson counts: each count of ``D`` goes to ``A`` with
probability 1/2, ``B = D - A``; for Poisson data A and B are independent Poisson with half
the mean each. For every pair of clusters (i, j) of the decision's fit:

1. **Split on A**: the positions of i and j are ordered by the log-likelihood ratio of
   their A-counts under the two clusters' mean patterns (multinomial, the position's own
   counts left out of its own cluster's mean, so a position is not scored against a
   pattern made of its own noise), averaged over the 3x3 scan neighbours that belong to
   the pair (a crystal region is contiguous; noise is independent per position); the
   ``n_j`` highest go to side j, the rest to side i.
2. **Test on B**: the summed B-counts of the two sides (binned to at most 64x64 pixels)
   are compared by the chi-square test of homogeneity, standardised:
   ``z = (X^2 - dof) / sqrt(2 dof)``. The split never saw B, so when i and j are one
   pattern the two sides' B-counts differ by noise only: z is about N(0, 1). Two distinct
   patterns give z in the tens to thousands. The same is done the other way round (split
   on B, tested on A) and the two are averaged, ``z = (z_AB + z_BA) / sqrt(2)``: twice the
   counts for the same question, and less dependence on one random split.
3. Pairs with ``z < heldout_z`` (default 1: less than one standard deviation above what
   noise gives) are merged, in order of increasing z. A pair is tested only when both
   clusters own at least the minimum cluster size and each side holds at least as many
   held-out counts as there are bins (a side with fewer cannot show a difference). Two
   groups are joined only when no pair across them is untested or differs (z >= 3), so a
   cluster with little signal cannot bridge two distinct ones. Merging only happens on
   evidence of *no* held-out difference, and the split is made on A alone, so the
   in-sample fit cannot make a noise split look reproducible.

The test needs counts: the pipeline gives it the input after the steps that keep counts
(crop, bin, mask) and before descan interpolation, filters, scaling and
normalisation (:func:`nmf4d.pipeline.heldout_counts`); float data are read as counts when
their values sit on multiples of one count quantum (:mod:`nmf4d.pseudocounts`), other
non-integer data are skipped, and the result says why. The thinning is a function of (``seed``, position, pixel), so
results are reproducible and do not depend on the executor or the blocks.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

#: Patterns are sum-binned to at most this many pixels across for the chi-square test.
TEST_MAX_SIZE = 64
#: Pseudo-count added to every pixel of a cluster's summed pattern before its logarithm.
EPS = 0.5
#: Two groups are not joined when a pair across them has at least this held-out z (they
#: differ) or was not tested.
Z_CONFLICT = 3.0


@dataclass
class HeldoutTest:
    """Outcome of :func:`heldout_test`.

    Attributes
    ----------
    applied : bool
        False when the data are not counts (``reason`` says why).
    clusters : ndarray of shape (m,), int
        The cluster labels tested (representative component indices).
    sizes : ndarray of shape (m,), int
        Positions of each.
    z : ndarray of shape (m, m)
        Standardised held-out chi-square of every pair (inf where not tested: a cluster
        smaller than the minimum size).
    group : ndarray of shape (m,), int
        The cluster each one is merged into (itself when not merged).
    z_max : float
    seed : int
    reason : str
    counts : dict
        How float data were read as counts (:mod:`nmf4d.pseudocounts`: ``quantum``,
        ``quantum_offset``, ``coherence``, ``coherence_min``); empty for integer data.
    """

    applied: bool
    clusters: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    sizes: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    z: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    group: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    z_max: float = 1.0
    seed: int = 0
    reason: str = ""
    counts: dict = field(default_factory=dict)

    @property
    def merged(self) -> list[list[int]]:
        """Groups of two or more clusters merged (cluster labels)."""
        out: dict[int, list[int]] = {}
        for c, g in zip(self.clusters.tolist(), self.group.tolist()):
            out.setdefault(int(g), []).append(int(c))
        return [sorted(v) for v in out.values() if len(v) > 1]


def thin(block, seed: int, start: int) -> np.ndarray:
    """Half A of the counts of ``block`` (rows ``start``, ``start + 1``, ...): each count
    kept with probability 1/2 (dense array of float64, the shape of ``block``).

    A pixel with ``n`` counts keeps the number of ones among ``n`` random bits, a
    Binomial(n, 1/2) draw. The bits are a hash (SplitMix64, Steele, Lea & Flood 2014) of
    (``seed``, row, pixel, word), so the halves do not depend on how the rows are blocked
    (executor, memory budget) and a whole block is drawn at once (numpy's generators give
    no per-position stream short of one generator per row). Only non-zero pixels are drawn.
    """
    X = _csr(block)
    out = np.zeros(X.shape, np.float64)
    rows, cols = _coords(X)
    out[rows, cols] = thin_values(X.data, rows + start, cols, seed)
    return out


def thin_values(n: np.ndarray, rows: np.ndarray, cols: np.ndarray, seed: int) -> np.ndarray:
    """The kept counts of the pixels (``rows``, ``cols``) holding ``n`` counts (see
    :func:`thin`); ``rows`` are absolute row indices."""
    n = np.asarray(n).astype(np.int64)
    if n.size == 0:
        return np.zeros(0)
    words = (n + 63) // 64                            # 64 counts per random word
    idx = np.repeat(np.arange(n.size), words)
    j = np.arange(idx.size) - np.repeat(np.cumsum(words) - words, words)
    h = _mix(_mix(_mix(_mix(np.full(idx.size, np.uint64(seed))) ^
                       np.asarray(rows)[idx].astype(np.uint64)) ^
                  np.asarray(cols)[idx].astype(np.uint64)) ^ j.astype(np.uint64))
    left = np.clip(n[idx] - 64 * j, 0, 64).astype(np.uint64)   # counts in this word
    part = left < 64
    h[part] &= (np.uint64(1) << left[part]) - np.uint64(1)
    return np.bincount(idx, weights=_popcount(h), minlength=n.size)


def _csr(block):
    from scipy import sparse

    return block.tocsr() if sparse.issparse(block) else sparse.csr_array(np.asarray(block))


def _coords(X) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every stored value of a CSR matrix, in storage order."""
    return np.repeat(np.arange(X.shape[0]), np.diff(X.indptr)), X.indices


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's step and finaliser on an array of uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def _popcount(words: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):                  # numpy >= 2.0
        return np.bitwise_count(words).astype(np.float64)
    return _POPCOUNT8[words.view(np.uint8).reshape(-1, 8)].sum(axis=1).astype(np.float64)


def bin_factor(pattern_shape, max_size: int = TEST_MAX_SIZE) -> int:
    """Smallest integer factor that sum-bins ``pattern_shape`` to at most ``max_size``."""
    return max(1, int(np.ceil(max(pattern_shape) / max_size)))


def _binned_map(pattern_shape, f: int) -> tuple[np.ndarray, int]:
    """Bin of every pixel when sum-binning by ``f`` (-1 for edge pixels that do not fill a
    bin) and the number of bins."""
    ky, kx = pattern_shape
    by, bx = ky // f, kx // f
    yy, xx = np.divmod(np.arange(ky * kx), kx)
    b = (yy // f) * bx + xx // f
    b[(yy >= by * f) | (xx >= bx * f)] = -1
    return b, by * bx


def homogeneity_z(sa: np.ndarray, sb: np.ndarray) -> float:
    """Standardised chi-square of homogeneity of two count vectors (pixels where either
    has counts): ``(X^2 - dof) / sqrt(2 dof)``; inf when either is empty.

    ``X^2`` is Pearson's statistic of the 2 x p contingency table, as
    ``scipy.stats.chi2_contingency`` computes it (tested against it); written out because
    it runs on hundreds of pairs of sums and needs only one line.
    """
    na, nb = float(sa.sum()), float(sb.sum())
    tot = sa + sb
    m = tot > 0
    dof = int(m.sum()) - 1
    if na <= 0 or nb <= 0 or dof < 1:
        return float("inf")
    x2 = float(((sa[m] * np.sqrt(nb / na) - sb[m] * np.sqrt(na / nb)) ** 2 / tot[m]).sum())
    return (x2 - dof) / np.sqrt(2.0 * dof)


def counts_source(counts):
    """A block source over a 4D array of counts (numpy, memory-mapped or dask) as a
    matrix of shape (scan_y * scan_x, ky * kx)."""
    from .arrays import is_dask
    from .execution.budget import aligned_rows
    from .execution.sources import BLOCK_ELEMENTS, DaskSource, NumpySource

    sy, sx, ky, kx = (int(v) for v in counts.shape)
    if is_dask(counts):
        target = max(1, BLOCK_ELEMENTS // max(sx * ky * kx, 1))
        return DaskSource.scan_rows(counts, min(sy, aligned_rows(target, counts.chunks[0][0])))
    return NumpySource(np.asarray(counts).reshape(sy * sx, ky * kx))


def heldout_test(source, labels: np.ndarray, scan_shape, pattern_shape, *, seed: int = 0,
                 z_max: float = 1.0, min_size: int = 3, nothing: int | None = None
                 ) -> HeldoutTest:
    """The held-out test of the clusters ``labels`` (see the module docstring).

    Parameters
    ----------
    source : nmf4d.execution.sources.BlockSource
        The data matrix of shape (n, p), input units (counts).
    labels : ndarray of shape (n,), int
        Cluster of every position.
    scan_shape, pattern_shape : (int, int)
    seed : int
    z_max : float
        Pairs with a held-out z below this are merged.
    min_size : int
        Clusters smaller than this are not tested (too few positions to tell).
    nothing : int, optional
        The label of "nothing significant": never the representative of a merged group.

    Returns
    -------
    HeldoutTest
    """
    labels = np.asarray(labels).ravel()
    n = labels.size
    clusters, inv, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    m = len(clusters)
    blocks = source.blocks
    per = [(s, inv[s:e]) for s, e in blocks]

    def sums(X, s, lab):
        X = _csr(X).astype(np.float64)
        v = X.data
        counts = bool(np.all(v >= 0) and np.all(v == np.round(v)))
        onehot = np.zeros((len(lab), m))
        onehot[np.arange(len(lab)), lab] = 1.0
        return (X.T @ onehot).T, counts
    parts = source.map(sums, per)
    if not all(c for _, c in parts):
        return HeldoutTest(applied=False, z_max=z_max, seed=seed,
                           reason="the data are not counts (non-integer values)")
    S = sum(p for p, _ in parts)                                    # (m, p) cluster sums of D
    tot = (S + EPS).sum(axis=1)
    logmu = np.log(S + EPS) - np.log(tot)[:, None]

    def scores(X, s, lab):
        X = _csr(X).astype(np.float64)
        rows, cols = _coords(X)
        a = thin_values(X.data, rows + s, cols, seed)
        # own cluster, leaving the position out: log(S - x + eps) = log(S + eps) +
        # log1p(-x / (S + eps)), the correction non-zero only where x is; the total too
        corr = np.log1p(-X.data / (S[lab[rows], cols] + EPS))
        xsum = np.bincount(rows, weights=X.data, minlength=len(lab))
        shift = np.log(tot[lab]) - np.log(tot[lab] - xsum)
        out = []
        for v in (a, X.data - a):                                   # split on A, then on B
            V = X.copy()
            V.data = v                                              # same pattern as X
            sc = np.asarray(V @ logmu.T)                            # (rows, m)
            own = np.bincount(rows, weights=v * corr, minlength=len(lab))
            sc[np.arange(len(lab)), lab] += own + np.bincount(
                rows, weights=v, minlength=len(lab)) * shift
            out.append(sc)
        return np.stack(out), xsum > 0
    parts = source.map(scores, per)
    sc = np.concatenate([p[0] for p in parts], axis=1)              # (2, n, m)
    # positions without counts carry no evidence: neither scored nor tested
    has = np.concatenate([p[1] for p in parts])
    active = np.bincount(inv[has], minlength=m)
    testable = active >= min_size
    pairs = [(i, j) for i in range(m) for j in range(i + 1, m) if testable[i] and testable[j]]
    member = np.zeros((2, 2 * len(pairs), n), bool)    # [split half][(pair, side)]
    for t, (i, j) in enumerate(pairs):
        inpair = ((inv == i) | (inv == j)) & has
        idx = np.flatnonzero(inpair)
        w = ndimage.uniform_filter(inpair.reshape(scan_shape).astype(np.float64), 3,
                                   mode="constant")
        for h in range(2):
            d = np.where(inpair, sc[h, :, j] - sc[h, :, i], 0.0).reshape(scan_shape)
            d = (ndimage.uniform_filter(d, 3, mode="constant") / np.maximum(w, 1e-12)).ravel()
            to_j = np.zeros(n, bool)
            to_j[idx[np.argsort(-d[idx], kind="stable")[:int(active[j])]]] = True
            member[h, 2 * t], member[h, 2 * t + 1] = inpair & ~to_j, to_j

    bins, n_bins = _binned_map(pattern_shape, bin_factor(pattern_shape))

    def sums_other(X, s, lab):
        from scipy import sparse

        X = _csr(X).astype(np.float64)
        rows, cols = _coords(X)
        a = thin_values(X.data, rows + s, cols, seed)
        keep = bins[cols] >= 0
        out = []
        # the split made on A is tested on B, the split made on B on A
        for h, v in ((0, X.data - a), (1, a)):
            Bb = sparse.csr_array((v[keep], (rows[keep], bins[cols[keep]])),
                                  shape=(len(lab), n_bins))
            out.append((Bb.T @ member[h, :, s:s + len(lab)].T.astype(np.float64)).T)
        return np.stack(out)
    T = sum(source.map(sums_other, per)) if pairs else np.zeros((2, 0, 1))
    z = np.full((m, m), np.inf)
    for t, (i, j) in enumerate(pairs):
        # a side with fewer held-out counts than bins cannot show a difference: untested
        if min(T[h, 2 * t + q].sum() for h in range(2) for q in range(2)) < max(1, n_bins):
            continue
        both = [homogeneity_z(T[h, 2 * t], T[h, 2 * t + 1]) for h in range(2)]
        z[i, j] = z[j, i] = (both[0] + both[1]) / np.sqrt(2.0)
    group = _merge(z, z_max, sizes, clusters, nothing)
    return HeldoutTest(applied=True, clusters=clusters, sizes=sizes, z=z, group=group,
                       z_max=z_max, seed=seed)


def _merge(z, z_max, sizes, clusters, nothing, z_conflict: float = Z_CONFLICT) -> np.ndarray:
    """Groups of clusters: pairs are joined in order of increasing ``z`` while ``z <
    z_max``, and two groups only when no pair across them was untested or differs
    (``z >= z_conflict``), so that no cluster bridges two distinct ones. Each group is
    represented by its largest cluster other than ``nothing``."""
    m = len(sizes)
    z = np.asarray(z, np.float64)
    root = np.arange(m)
    for q in np.argsort(z, axis=None, kind="stable"):
        i, j = divmod(int(q), m)
        if i >= j or not z[i, j] < z_max:
            continue
        a, b = np.flatnonzero(root == root[i]), np.flatnonzero(root == root[j])
        if root[i] == root[j] or np.any(z[np.ix_(a, b)] >= z_conflict):
            continue
        root[b] = root[i]
    rep = {}
    for r in np.unique(root):
        members = np.flatnonzero(root == r)
        key = [(clusters[c] != nothing, sizes[c], -c) for c in members]
        rep[r] = int(clusters[members[max(range(len(members)), key=lambda t: key[t])]])
    return np.array([rep[r] for r in root])
