"""Cluster and overlap maps from NMF weights, and background (vacuum) detection."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .beam import direct_beam_region
from .errors import InputError
from .options import DEFAULT_THRESHOLDS

if TYPE_CHECKING:
    from .config import MapsConfig


def _check_weights(weights: np.ndarray) -> np.ndarray:
    w = np.asarray(weights)
    if w.ndim != 3:
        raise InputError(f"weights must be 3D (k, scan_y, scan_x), got shape {w.shape}")
    return w


def cluster_map(weights: np.ndarray) -> np.ndarray:
    """Index of the largest weight at each scan position.

    Parameters
    ----------
    weights : ndarray of shape (k, scan_y, scan_x)

    Returns
    -------
    labels : ndarray of shape (scan_y, scan_x), int32
    """
    w = _check_weights(weights)
    return np.argmax(w, axis=0).astype(np.int32)


def overlap_ratio(weights: np.ndarray, *, background=()) -> tuple[np.ndarray, np.ndarray]:
    """Second-largest / largest weight at each position (the paper's overlap measure).

    Background components (vacuum) are never the overlapping partner: the ratio and the
    partner are taken among the other components, and positions whose largest weight
    is a background component get ratio 0 and partner -1.

    Parameters
    ----------
    weights : ndarray of shape (k, scan_y, scan_x)
        Non-negative weights (in intensity units when components sum to 1, so the ratio
        does not depend on NMF's arbitrary scaling).
    background : sequence of int
        Indices of background components.

    Returns
    -------
    ratio : ndarray of shape (scan_y, scan_x), float32
        In [0, 1]; 0 where the largest weight is 0.
    partner : ndarray of shape (scan_y, scan_x), int32
        Index of the second-largest (overlapping) component, -1 where there is none.
    """
    w = _check_weights(weights).astype(np.float64)
    k = w.shape[0]
    labels = np.argmax(w, axis=0)
    bg = [int(b) for b in background if 0 <= int(b) < k]
    if k < 2:
        return np.zeros(w.shape[1:], np.float32), np.full(w.shape[1:], -1, np.int32)
    wf = w.copy()
    if bg:
        wf[bg] = -np.inf
    order = np.argsort(-wf, axis=0, kind="stable")
    first = np.take_along_axis(wf, order[:1], 0)[0]
    second = np.take_along_axis(wf, order[1:2], 0)[0]
    ok = np.isfinite(first) & (first > 0) & np.isfinite(second) & (second > 0)
    if bg:
        ok &= ~np.isin(labels, bg)
    ratio = np.where(ok, second / np.where(ok, first, 1.0), 0.0)
    partner = np.where(ok, order[1], -1)
    return ratio.astype(np.float32), partner.astype(np.int32)


def overlap_masks(ratio: np.ndarray, thresholds=DEFAULT_THRESHOLDS) -> np.ndarray:
    """Boolean masks ``ratio >= t`` for each threshold, shape (n, scan_y, scan_x)."""
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 1 or np.any((t < 0) | (t > 1)):
        raise InputError(f"thresholds must be values in [0, 1], got {thresholds}")
    r = np.asarray(ratio)
    # compare in the ratio's precision, so float32(0.9) >= 0.9 as the user reads it
    t = t.astype(r.dtype) if np.issubdtype(r.dtype, np.floating) else t
    return r[None] >= t[:, None, None]


def detect_background(components: np.ndarray, *, beam_mask: np.ndarray | None = None,
                      threshold: float = 0.8) -> list[int]:
    """Indices of background (vacuum) components: patterns that are the direct beam alone.

    A component is background when at least ``threshold`` of its intensity lies inside
    the direct-beam disc: a vacuum pattern holds the beam only, a crystal scatters a
    good share of the intensity into reflections and diffuse background.

    Parameters
    ----------
    components : ndarray of shape (k, ky, kx)
    beam_mask : ndarray of shape (ky, kx), bool, optional
        Direct-beam disc; by default found from the mean of the components.

    Returns
    -------
    list of int
    """
    c = np.asarray(components, np.float64)
    if c.ndim != 3:
        raise InputError(f"components must be 3D (k, ky, kx), got shape {c.shape}")
    if beam_mask is None:
        beam_mask = direct_beam_region(c.mean(axis=0))
    tot = c.sum(axis=(1, 2))
    inside = c[:, beam_mask].sum(axis=1)
    frac = np.where(tot > 0, inside / np.where(tot > 0, tot, 1), 0.0)
    return [int(i) for i in np.flatnonzero(frac >= threshold)]


@dataclass
class Maps:
    """The maps of one fit.

    Attributes
    ----------
    labels : ndarray of shape (scan_y, scan_x), int32
        Index of the largest weight.
    background : list of int
        Background (vacuum) components.
    ratio : ndarray of shape (scan_y, scan_x), float32
        Second-largest / largest weight among non-background components.
    partner : ndarray of shape (scan_y, scan_x), int32
        The overlapping (second) component, -1 where none.
    thresholds : ndarray of shape (n,), float32
    masks : ndarray of shape (n, scan_y, scan_x), bool
        ``ratio >= threshold`` for each threshold.
    """

    labels: np.ndarray
    background: list
    ratio: np.ndarray
    partner: np.ndarray
    thresholds: np.ndarray
    masks: np.ndarray


def make_maps(weights: np.ndarray, components: np.ndarray,
              config: "MapsConfig | None" = None) -> Maps:
    """The maps stage: labels, background components, overlap ratio and masks.

    Parameters
    ----------
    weights : ndarray of shape (k, scan_y, scan_x)
    components : ndarray of shape (k, ky, kx)
    config : MapsConfig, optional
        Overlap thresholds (default 0.75..0.95).
    """
    thresholds = DEFAULT_THRESHOLDS if config is None else config.thresholds
    labels = cluster_map(weights)
    background = detect_background(components)
    ratio, partner = overlap_ratio(weights, background=background)
    thr = np.asarray(thresholds, dtype=np.float32)
    return Maps(labels=labels, background=background, ratio=ratio, partner=partner,
                thresholds=thr, masks=overlap_masks(ratio, thr))


@dataclass
class ClusterMaps:
    """The maps of one fit, per cluster (:func:`cluster_maps`).

    Attributes
    ----------
    components : ndarray of shape (m, ky, kx), float32
        Pattern of each cluster, summing to 1: the intensity-weighted mean of its
        components (for "nothing significant": filled in from the data afterwards).
    weights : ndarray of shape (m, scan_y, scan_x), float32
        Intensity of each cluster at each position (the sum of its components'; for
        "nothing significant", the positions' total where it is the label).
    labels : ndarray of shape (scan_y, scan_x), int32
        nmf4d's cluster map: the largest significant crystal cluster, else the largest
        background (see :mod:`nmf4d.clustering`).
    argmax_labels : ndarray of shape (scan_y, scan_x), int32
        The paper's map: the cluster of largest weight.
    background : list of int
        Non-crystal clusters.
    kinds : list of str
        "crystal", "vacuum", "ubiquitous", "diffuse" or "nothing" for each cluster.
    members : list of list of int
        The NMF components of each cluster.
    ratio, partner : ndarray of shape (scan_y, scan_x)
        Second / largest crystal-cluster weight, and the second cluster (-1 where none);
        0 and -1 where the label is not a crystal.
    thresholds : ndarray of shape (n,), float32
    masks : ndarray of shape (n, scan_y, scan_x), bool
    background_fraction : ndarray of shape (scan_y, scan_x), float32
        Share of each position's intensity explained by background clusters.
    """

    components: np.ndarray
    weights: np.ndarray
    labels: np.ndarray
    argmax_labels: np.ndarray
    background: list
    kinds: list
    members: list
    ratio: np.ndarray
    partner: np.ndarray
    thresholds: np.ndarray
    masks: np.ndarray
    background_fraction: np.ndarray

    @property
    def k(self) -> int:
        return int(self.components.shape[0])


def cluster_maps(weights: np.ndarray, components: np.ndarray, clusters, scan_shape,
                 pattern_shape, config: "MapsConfig | None" = None) -> ClusterMaps:
    """Cluster-level patterns, weights and maps of a fit and its
    :class:`nmf4d.clustering.FitClusters` (clusters ordered by decreasing intensity,
    "nothing significant" last).

    Parameters
    ----------
    weights : ndarray of shape (rank, n), components : ndarray of shape (rank, p)
        The fit, in input units (components summing to 1).
    clusters : FitClusters
    scan_shape, pattern_shape : (int, int)
    config : MapsConfig, optional
    """
    W = np.asarray(weights, np.float64)
    H = np.asarray(components, np.float64)
    rank = W.shape[0]
    sy, sx = scan_shape
    reps = [r for r in clusters.clusters if r != rank]
    members = {r: [c for c in range(rank) if clusters.cluster_of[c] == r] for r in reps}
    Wg = {r: W[members[r]].sum(axis=0) for r in reps}
    order = sorted(reps, key=lambda r: -float(Wg[r].sum()))
    nothing = rank in clusters.clusters
    m = len(order) + int(nothing)
    comps = np.zeros((m, H.shape[1]))
    wts = np.zeros((m, W.shape[1]))
    for i, r in enumerate(order):
        tot = W[members[r]].sum(axis=1)
        comps[i] = (tot[:, None] * H[members[r]]).sum(axis=0) / max(float(tot.sum()), 1e-300)
        wts[i] = Wg[r]
    index = {r: i for i, r in enumerate(order)}
    if nothing:
        index[rank] = m - 1
        where = clusters.labels == rank
        wts[m - 1, where] = W[:, where].sum(axis=0)
    labels = np.array([index[int(v)] for v in clusters.labels], np.int32).reshape(sy, sx)
    bg_comps = set(clusters.background)
    kinds = []
    for r in order:
        if not set(members[r]) & bg_comps:
            kinds.append("crystal")
        else:
            kinds.append(clusters.kinds.get(members[r][0], "diffuse"))
    if nothing:
        kinds.append("nothing")
    weights_k = wts.reshape(m, sy, sx)
    comps_k = comps.reshape(m, *pattern_shape)
    kinds = _vacuum(comps_k, kinds)
    background = [i for i, kd in enumerate(kinds) if kd != "crystal"]
    ratio, partner = _crystal_ratio(weights_k, [i for i in range(m) if i not in background])
    crystal_label = ~np.isin(labels, background)
    ratio = np.where(crystal_label, ratio, 0).astype(np.float32)
    partner = np.where(crystal_label, partner, -1).astype(np.int32)
    thresholds = DEFAULT_THRESHOLDS if config is None else config.thresholds
    thr = np.asarray(thresholds, dtype=np.float32)
    total = weights_k.sum(axis=0)
    bgf = weights_k[background].sum(axis=0) / np.where(total > 0, total, 1) if background \
        else np.zeros((sy, sx))
    return ClusterMaps(components=comps_k.astype(np.float32), weights=weights_k.astype(np.float32),
                       labels=labels, argmax_labels=cluster_map(weights_k), background=background,
                       kinds=kinds, members=[members[r] for r in order] + ([[]] if nothing else []),
                       ratio=ratio, partner=partner, thresholds=thr,
                       masks=overlap_masks(ratio, thr), background_fraction=bgf.astype(np.float32))


def _crystal_ratio(weights: np.ndarray, crystal: list) -> tuple[np.ndarray, np.ndarray]:
    """Second / largest weight among the crystal clusters (whatever the backgrounds
    weigh), and the second cluster's index (-1 where there is none)."""
    shape = weights.shape[1:]
    if len(crystal) < 2:
        return np.zeros(shape, np.float32), np.full(shape, -1, np.int32)
    w = np.asarray(weights, np.float64)[crystal]
    order = np.argsort(-w, axis=0, kind="stable")
    first = np.take_along_axis(w, order[:1], 0)[0]
    second = np.take_along_axis(w, order[1:2], 0)[0]
    ok = (first > 0) & (second > 0)
    ratio = np.where(ok, second / np.where(ok, first, 1.0), 0.0)
    partner = np.where(ok, np.asarray(crystal)[order[1]], -1)
    return ratio.astype(np.float32), partner.astype(np.int32)


def _vacuum(components: np.ndarray, kinds: list) -> list:
    """Clusters whose pattern is the direct beam alone are "vacuum": at least 80 % of the
    intensity in the beam disc, and no reflections of their own (what little lies outside
    the disc is the other clusters' reflections, shared with them)."""
    from .beam import beam_fraction, beam_peak
    from .clustering import own_share, reflections

    mask = direct_beam_region(components.mean(axis=0))
    centre, _ = beam_peak(components.mean(axis=0))
    frac = beam_fraction(components, mask)
    refl = [reflections(c, mask, centre) for c in components]
    out = list(kinds)
    for i, kd in enumerate(kinds):
        if kd == "nothing" or frac[i] < 0.8:
            continue
        others = [refl[j] for j in range(len(kinds)) if j != i and kinds[j] != "nothing"]
        if kd != "crystal" or own_share(refl[i], others) < 0.5:
            out[i] = "vacuum"
    return out
