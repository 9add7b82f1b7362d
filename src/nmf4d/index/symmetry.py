"""Orientations with crystal symmetry: misorientations, merging, the Friedel partner.

Every angle here comes from orix (:meth:`Orientation.angle_with` /
:meth:`~Orientation.angle_with_outer`) with the phase's **proper** point group: the
rotations that map the crystal onto itself (for the centrosymmetric phases of
metallurgy, the rotations of the Laue group).

Convention: an orientation is Bunge ZXZ Euler angles in radians, orix's convention
(``Rotation.from_euler``), equal to the rotation that diffsims'
``calculate_diffraction2d`` is given to reproduce the pattern (see
:mod:`nmf4d.index.kinematics`).
"""
from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np

from ..errors import InputError
from ._deps import require


_PROPER: dict = {}


def proper_group(phase):
    """The proper point group of ``phase`` (orix's ``proper_subgroup``, cached: orix
    recomputes every subgroup on each access, ~10 ms)."""
    pg = phase.point_group
    key = (pg.name, pg.data.tobytes())
    if key not in _PROPER:
        _PROPER[key] = pg.proper_subgroup
    return _PROPER[key]


def orientations(euler: np.ndarray, phase):
    """orix ``Orientation`` of Euler angles (n, 3) (radians) with ``phase``'s proper group."""
    require()
    from orix.quaternion import Orientation

    e = np.asarray(euler, dtype=np.float64).reshape(-1, 3)
    return Orientation.from_euler(e, symmetry=proper_group(phase))


def reduce_euler(euler: np.ndarray, phase) -> np.ndarray:
    """The symmetry-equivalent Euler angles (n, 3) in orix's fundamental zone."""
    return orientations(euler, phase).reduce().to_euler().reshape(-1, 3)


def misorientation_angle(a: np.ndarray, b: np.ndarray, phase) -> np.ndarray:
    """Symmetry-reduced misorientation angles in degrees between Euler rows of ``a``, ``b``.

    Parameters
    ----------
    a, b : ndarray of shape (n, 3) (or broadcastable (3,)), radians
    phase : orix.crystal_map.Phase

    Returns
    -------
    ndarray of shape (n,)
    """
    oa, ob = orientations(a, phase), orientations(b, phase)
    if oa.size != ob.size:
        if oa.size == 1:
            oa = orientations(np.repeat(np.asarray(a).reshape(1, 3), ob.size, 0), phase)
        elif ob.size == 1:
            ob = orientations(np.repeat(np.asarray(b).reshape(1, 3), oa.size, 0), phase)
    return np.atleast_1d(oa.angle_with(ob, degrees=True))


@contextlib.contextmanager
def _one_numba_thread():
    """orix's outer misorientation is a parallel Numba kernel; on the small arrays here its
    thread start-up dominates (measured 1.4 ms with two threads, 0.4 ms with one, up to
    7 ms on a loaded machine), so it runs on the calling thread only."""
    try:
        import numba
    except ImportError:  # pragma: no cover - orix depends on numba
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def misorientation_outer(a: np.ndarray, b: np.ndarray, phase) -> np.ndarray:
    """All misorientation angles (n, m) in degrees between Euler rows of ``a`` and ``b``."""
    oa, ob = orientations(a, phase), orientations(b, phase)
    with _one_numba_thread():
        out = oa.angle_with_outer(ob, degrees=True)
    return np.asarray(out).reshape(oa.size, ob.size)


def misorientation_matrix(euler: np.ndarray, phase_index: np.ndarray, phases: Sequence, *,
                          exclude: Sequence[int] = ()) -> np.ndarray:
    """Misorientation between every pair of clusters, in degrees.

    Parameters
    ----------
    euler : ndarray of shape (k, 3), radians
    phase_index : ndarray of shape (k,)
        Index into ``phases``; -1 for a cluster that is not indexed.
    phases : sequence of orix.crystal_map.Phase
    exclude : sequence of int
        Clusters left out (background): their rows and columns are NaN.

    Returns
    -------
    ndarray of shape (k, k)
        Symmetric, 0 on the diagonal of indexed clusters; NaN between clusters of
        different phases (no misorientation is defined) and for excluded or unindexed
        clusters.
    """
    e = np.asarray(euler, dtype=np.float64).reshape(-1, 3)
    pi = np.asarray(phase_index).reshape(-1)
    k = len(e)
    out = np.full((k, k), np.nan)
    skip = set(int(c) for c in exclude)
    for p, ph in enumerate(phases):
        idx = np.array([c for c in range(k) if pi[c] == p and c not in skip], dtype=np.int64)
        if len(idx) == 0:
            continue
        m = misorientation_outer(e[idx], e[idx], ph)
        m = 0.5 * (m + m.T)
        np.fill_diagonal(m, 0.0)
        out[np.ix_(idx, idx)] = m
    return out


def merge_clusters(misorientation: np.ndarray, *, tolerance: float = 2.0) -> list[list[int]]:
    """Groups of clusters with the same orientation (and phase).

    Two clusters are joined when their misorientation is at most ``tolerance`` degrees
    (NaN, i.e. different phases or not indexed, never joins); groups are the connected
    components of that relation (single linkage), so a chain of small steps merges.

    Parameters
    ----------
    misorientation : ndarray of shape (k, k), degrees (:func:`misorientation_matrix`)
    tolerance : float, degrees (>= 0)

    Returns
    -------
    list of list of int
        Every cluster in exactly one group, groups ordered by their smallest member.
    """
    if not (tolerance >= 0):
        raise InputError(f"tolerance must be >= 0 degrees, got {tolerance!r}")
    m = np.asarray(misorientation, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise InputError(f"misorientation must be a square (k, k) matrix, got shape {m.shape}")
    k = len(m)
    parent = list(range(k))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    with np.errstate(invalid="ignore"):
        close = m <= tolerance
    for i, j in zip(*np.nonzero(np.triu(close, 1))):
        a, b = find(int(i)), find(int(j))
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(k):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def friedel_partner(euler: np.ndarray) -> np.ndarray:
    """The orientation turned by 180 degrees about the beam, Euler (n, 3) radians.

    Kinematic patterns obey Friedel's law, so ``R`` and ``R * Rz(180)`` give patterns
    that differ only through the Ewald sphere's curvature; this is ``phi1 + pi``.
    """
    e = np.array(euler, dtype=np.float64).reshape(-1, 3)
    e[:, 0] = np.mod(e[:, 0] + np.pi, 2 * np.pi)
    return e
