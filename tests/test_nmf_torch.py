"""Tests of the optional torch engine (nmf4d.nmf._torch) against the numpy HALS solver."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scipy.optimize import linear_sum_assignment  # noqa: E402

from nmf4d.errors import InputError  # noqa: E402
from nmf4d.execution import resolve_device  # noqa: E402
from nmf4d.nmf import InMemoryOperator, hals, hals_torch, initialise  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_blas_thread")
torch.set_num_threads(1)

HAS_CUDA = torch.cuda.is_available()

# Solver settings compared between the engines (classical and accelerated HALS, the
# orthogonality penalty, L1 penalties).
CASES = {
    "inner1": dict(inner=1),
    "auto": dict(inner="auto"),
    "ortho": dict(inner=1, ortho=0.1),
    "l1": dict(inner="auto", l1_weights=1.0, l1_components=1.0, max_iter=150),
}


@pytest.fixture(scope="module")
def problem():
    """X = W0 H0 + 5% Gaussian noise (clipped at 0), n=300, p=400, k=4, and a start."""
    n, p, k = 300, 400, 4
    rng = np.random.default_rng(0)
    W0 = rng.gamma(2.0, 1.0, (n, k))
    H0 = rng.random((k, p)) * (rng.random((k, p)) < 0.3)
    X0 = (W0 @ H0).astype(np.float32)
    noise = 0.05 * X0.mean() * rng.standard_normal((n, p))
    X = np.maximum(X0 + noise, 0).astype(np.float32)
    Wt, H = initialise(InMemoryOperator(X), k, init="nndsvda", seed=0)
    return dict(X=X, X0=X0, H0=H0, Wt=Wt, H=H)


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _compare(problem, device, **kw):
    X, Wt, H = problem["X"], problem["Wt"], problem["H"]
    ref = hals(InMemoryOperator(X), Wt.copy(), H.copy(), **kw)
    got = hals_torch(X, Wt.copy(), H.copy(), device=device, **kw)
    assert abs(got[2] - ref[2]) <= 1
    m = min(len(ref[3]), len(got[3]))
    assert m >= ref[2] - 1
    np.testing.assert_allclose(got[3][:m], ref[3][:m], rtol=0, atol=1e-4)
    assert _rel(got[0], ref[0]) < 1e-3
    assert _rel(got[1], ref[1]) < 1e-3
    assert got[4] == ref[4]
    return got


@pytest.mark.parametrize("case", list(CASES))
def test_matches_numpy_solver_on_cpu(problem, case):
    _compare(problem, "cpu", **CASES[case])


def test_matches_blocked_numpy_solver_with_one_sweep(problem):
    """With one sweep per pass the numpy solver's row-block split of the weight update
    is exact, so it agrees with the torch engine (which sweeps all weights at once)."""
    X, Wt, H = problem["X"], problem["Wt"], problem["H"]
    ref = hals(InMemoryOperator(X, block_rows=64), Wt.copy(), H.copy(), inner=1)
    got = hals_torch(X, Wt.copy(), H.copy(), inner=1, device="cpu")
    assert abs(got[2] - ref[2]) <= 1
    m = min(len(ref[3]), len(got[3]))
    np.testing.assert_allclose(got[3][:m], ref[3][:m], rtol=0, atol=1e-4)
    assert _rel(got[0], ref[0]) < 1e-3 and _rel(got[1], ref[1]) < 1e-3


def test_recovers_ground_truth(problem):
    Wt, H, n_iter, history, converged = hals_torch(
        problem["X"], problem["Wt"], problem["H"], inner="auto", device="cpu")
    assert converged and n_iter < 500
    assert _rel(Wt.T @ H, problem["X0"]) < 0.05
    # Each true component is found (cosine similarity after the best matching).
    H0 = problem["H0"]
    unit = lambda M: M / np.linalg.norm(M, axis=1, keepdims=True)  # noqa: E731
    cos = unit(H) @ unit(H0).T
    rows, cols = linear_sum_assignment(-cos)
    assert cos[rows, cols].min() > 0.99


def test_return_types_and_inputs_untouched(problem):
    Wt0, H0 = problem["Wt"].copy(), problem["H"].copy()
    Wt, H, n_iter, history, converged = hals_torch(
        problem["X"], Wt0, H0, inner=1, max_iter=7, device="cpu")
    assert isinstance(Wt, np.ndarray) and Wt.dtype == np.float32 and Wt.shape == Wt0.shape
    assert isinstance(H, np.ndarray) and H.dtype == np.float32 and H.shape == H0.shape
    assert type(n_iter) is int and n_iter == 7
    assert len(history) == 7 and all(type(h) is float for h in history)
    assert converged is False
    np.testing.assert_array_equal(Wt0, problem["Wt"])
    np.testing.assert_array_equal(H0, problem["H"])


def test_dead_component_guard_matches_numpy(problem):
    """A zero component (zero Gram diagonal) is skipped and kept alive as in numpy."""
    X, Wt, H = problem["X"], problem["Wt"].copy(), problem["H"].copy()
    Wt[0] = 0.0
    H[0] = 0.0
    ref = hals(InMemoryOperator(X), Wt.copy(), H.copy(), inner=1, max_iter=20)
    got = hals_torch(X, Wt, H, inner=1, max_iter=20, device="cpu")
    np.testing.assert_array_equal(got[1][0], ref[1][0])
    np.testing.assert_array_equal(got[0][0], ref[0][0])
    assert np.all(got[1][0] > 0)
    np.testing.assert_allclose(got[3], ref[3], rtol=0, atol=1e-4)


def test_cuda_without_gpu_is_a_config_error():
    if HAS_CUDA:
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(InputError, match="execution.device='cuda'.*no CUDA GPU"):
        hals_torch(np.ones((3, 3), np.float32), np.ones((1, 3)), np.ones((1, 3)),
                   device="cuda")


# -------------------------------------------------------------------------------- CUDA
@pytest.mark.skipif(not HAS_CUDA, reason="torch sees no CUDA GPU")
@pytest.mark.parametrize("case", list(CASES))
def test_matches_numpy_solver_on_cuda(problem, case):
    assert resolve_device("auto") == "cuda"
    _compare(problem, "cuda", **CASES[case])


@pytest.mark.skipif(not HAS_CUDA, reason="torch sees no CUDA GPU")
def test_recovers_ground_truth_on_cuda(problem):
    Wt, H, n_iter, history, converged = hals_torch(
        problem["X"], problem["Wt"], problem["H"], inner="auto", device="cuda")
    assert converged
    assert _rel(Wt.T @ H, problem["X0"]) < 0.05
