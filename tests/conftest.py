"""Shared fixtures: small synthetic polycrystals with known ground truth and their fits.

Everything here is small (scans of 24x24 to 32x32 positions, patterns of 32x32 to
40x40 pixels) so that the whole suite runs in about a minute on two cores.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from nmf4d.nmf import NMFResult, non_negative_factorization
from nmf4d.synthetic import SyntheticTruth, make_polycrystal

# Small synthetic scans used by several test modules (all deterministic).
POLY_NOVAC = dict(scan_shape=(32, 32), pattern_shape=(40, 40), n_grains=4, vacuum=False,
                  dose=2000.0, seed=1)
POLY_VAC = dict(scan_shape=(32, 32), pattern_shape=(40, 40), n_grains=4, vacuum=True,
                dose=2000.0, seed=1)


@pytest.fixture(scope="session")
def two_grain_scan(tmp_path_factory):
    """A 16x16 scan of 32x32 patterns (2 grains and vacuum) and its .npy file, which
    tests read and never write (the fault and exit tests check its bytes)."""
    data, _ = make_polycrystal(scan_shape=(16, 16), pattern_shape=(32, 32), n_grains=2,
                               vacuum=True, dose=2000.0, seed=3)
    path = tmp_path_factory.mktemp("two-grain-input") / "scan.npy"
    np.save(path, data)
    return data, path


@pytest.fixture(scope="module")
def one_blas_thread():
    """Run a module with single-threaded BLAS.

    The matrices of these tests are small; on a machine shared with other jobs a
    multi-threaded BLAS spends most of its time synchronising (a k sweep that takes
    0.2 s single-threaded took 6 s with two busy threads). Results do not depend on it.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(limits=1):
        yield


@dataclass
class Fit:
    """A dataset, its ground truth and an NMF fit at k_true in the library's axis order."""

    data: np.ndarray              # (sy, sx, ky, kx)
    truth: SyntheticTruth
    X: np.ndarray                 # (n, p) float32
    result: NMFResult
    weights: np.ndarray           # (k, sy, sx)
    components: np.ndarray        # (k, ky, kx)


def as_matrix(data: np.ndarray) -> np.ndarray:
    sy, sx, ky, kx = data.shape
    return np.ascontiguousarray(data.reshape(sy * sx, ky * kx), dtype=np.float32)


def fit_at_k_true(cfg: dict, **nmf_options) -> Fit:
    data, truth = make_polycrystal(**cfg)
    sy, sx, ky, kx = data.shape
    X = as_matrix(data)
    res = non_negative_factorization(X, truth.k_true, seed=0, **nmf_options)
    return Fit(data=data, truth=truth, X=X, result=res,
               weights=res.weights.reshape(truth.k_true, sy, sx),
               components=res.components.reshape(truth.k_true, ky, kx))


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity between the rows of a (m, ...) and the rows of b (n, ...)."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


@pytest.fixture(scope="session")
def fit_novac() -> Fit:
    """4 grains, no vacuum, k_true = 4, default NMF settings."""
    return fit_at_k_true(POLY_NOVAC)


@pytest.fixture(scope="session")
def fit_vac() -> Fit:
    """4 grains and vacuum, k_true = 5, default NMF settings."""
    return fit_at_k_true(POLY_VAC)


@pytest.fixture(scope="session")
def fit_vac_ortho() -> Fit:
    """4 grains and vacuum, k_true = 5, with the orthogonality penalty."""
    return fit_at_k_true(POLY_VAC, ortho=0.1)
