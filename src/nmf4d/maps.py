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
