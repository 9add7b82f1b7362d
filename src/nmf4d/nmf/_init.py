"""Initialisation of the NMF factors: NNDSVD from a truncated SVD, and SPA vertices."""
from __future__ import annotations

import numpy as np


def smooth_scan(values: np.ndarray, scan_shape) -> np.ndarray:
    """Mean over each position's 3x3 scan neighbourhood (existing neighbours only).

    Parameters
    ----------
    values : ndarray of shape (scan_y * scan_x, r)
        One row per scan position, row-major.
    scan_shape : (int, int)

    Returns
    -------
    ndarray of shape (scan_y * scan_x, r), float64

    Used for vertex hunting only: inside a grain the mean of neighbours is the same
    pure pattern with a third of the counting noise, and along a boundary it is a
    mixture, which SPA never picks as a vertex.
    """
    from scipy.ndimage import uniform_filter

    sy, sx = scan_shape
    v = values.reshape(sy, sx, -1).astype(np.float64)
    ones = np.ones((sy, sx))
    num = uniform_filter(v, size=(3, 3, 1), mode="constant") * 9.0
    den = uniform_filter(ones, size=3, mode="constant")[..., None] * 9.0
    return (num / den).reshape(sy * sx, -1)


def nndsvd(U: np.ndarray, S: np.ndarray, Vt: np.ndarray, k: int, *,
           fill: float | None = None, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative double SVD (Boutsidis & Gallopoulos 2008).

    Parameters
    ----------
    U : ndarray of shape (n, r)
    S : ndarray of shape (r,)
    Vt : ndarray of shape (r, p)
        Leading singular triplets of the data matrix, r >= k.
    k : int
        Number of components.
    fill : float, optional
        Value written where NNDSVD gives exact zeros ("nndsvda" when it is the mean of
        the data, as in scikit-learn). Zeros are kept when None.

    Returns
    -------
    Wt : ndarray of shape (k, n)
        Initial weights (transposed).
    H : ndarray of shape (k, p)
        Initial components.
    """
    if S.size < k:
        raise ValueError(f"need at least k={k} singular triplets, got {S.size}")
    n, p = U.shape[0], Vt.shape[1]
    Wt = np.zeros((k, n), dtype=np.float64)
    H = np.zeros((k, p), dtype=np.float64)
    Wt[0] = np.sqrt(S[0]) * np.abs(U[:, 0])
    H[0] = np.sqrt(S[0]) * np.abs(Vt[0])
    for j in range(1, k):
        x, y = U[:, j], Vt[j]
        xp, xn = np.maximum(x, 0), np.maximum(-x, 0)
        yp, yn = np.maximum(y, 0), np.maximum(-y, 0)
        nxp, nyp = np.linalg.norm(xp), np.linalg.norm(yp)
        nxn, nyn = np.linalg.norm(xn), np.linalg.norm(yn)
        mp, mn = nxp * nyp, nxn * nyn
        if mp >= mn:
            u, v, sigma = xp / max(nxp, 1e-300), yp / max(nyp, 1e-300), mp
        else:
            u, v, sigma = xn / max(nxn, 1e-300), yn / max(nyn, 1e-300), mn
        lbd = np.sqrt(S[j] * sigma)
        Wt[j] = lbd * u
        H[j] = lbd * v
    if fill is not None:
        Wt[Wt < 1e-12] = fill
        H[H < 1e-12] = fill
    return Wt.astype(dtype), H.astype(dtype)


def spa_vertices(Y: np.ndarray, k: int) -> list[int]:
    """Successive projection algorithm (Araujo et al. 2001; Gillis & Vavasis 2014).

    Picks k rows of ``Y`` (ndarray of shape (n, r)) that span the vertices of the
    convex cone of the data: repeatedly take the row of largest norm and project every
    row onto the orthogonal complement of it. Greedy, so the picks for k are the first
    k picks for any larger k on the same coordinates.
    """
    R = np.array(Y, dtype=np.float64, copy=True)
    picks: list[int] = []
    for _ in range(k):
        norms = np.einsum("ij,ij->i", R, R)
        norms[picks] = -1.0
        i = int(np.argmax(norms))
        picks.append(i)
        nrm = np.sqrt(norms[i])
        if nrm <= 0:
            continue
        u = R[i] / nrm
        R -= np.outer(R @ u, u)
    return picks


def spa_components(coords: np.ndarray, k: int, mean_rows, *, n_neighbours: int = 8) -> np.ndarray:
    """Initial components from SPA vertices, each averaged with its nearest neighbours.

    Parameters
    ----------
    coords : ndarray of shape (n, r)
        Low-rank coordinates of the sum-normalised patterns (denoised by projection).
    k : int
    mean_rows : callable
        ``mean_rows(list_of_index_arrays) -> ndarray of shape (len, p)``: the mean of the
        sum-normalised data rows of each index array.

    Returns
    -------
    H : ndarray of shape (k, p)
    """
    Y = coords[:, :k] if coords.shape[1] >= k else coords
    picks = spa_vertices(Y, k)
    groups = []
    nn = max(1, min(n_neighbours, coords.shape[0]))
    for i in picks:
        d = np.einsum("ij,ij->i", Y - Y[i], Y - Y[i])
        groups.append(np.argpartition(d, nn - 1)[:nn])
    return mean_rows(groups)
