"""Tests of the NMF engine (nmf4d.nmf): ground truth recovery, reference solvers, API."""
from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from sklearn.decomposition import NMF as SklearnNMF
from sklearn.metrics import adjusted_rand_score

from conftest import POLY_VAC, as_matrix, cosine_matrix
from nmf4d.errors import InputError
from nmf4d.nmf import NMF, InMemoryOperator, non_negative_factorization
from nmf4d.options import INITS
from nmf4d.synthetic import make_polycrystal

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def _low_rank(seed, n=80, p=60, r=5, noise=0.05):
    rng = np.random.default_rng(seed)
    return rng.random((n, r)) @ rng.random((r, p)) + noise * rng.random((n, p))


@pytest.fixture(scope="module")
def small():
    """A small noisy synthetic scan as a (n, p) float32 matrix, k_true = 3."""
    data, truth = make_polycrystal(scan_shape=(24, 24), pattern_shape=(32, 32), n_grains=3,
                                   vacuum=False, dose=2000.0, seed=2)
    return as_matrix(data), truth


# ----------------------------------------------------------------- ground truth recovery
@pytest.mark.parametrize("which", ["fit_novac", "fit_vac"])
def test_clusters_match_truth_at_k_true(which, request):
    fit = request.getfixturevalue(which)
    truth = fit.truth
    labels = np.argmax(fit.weights, axis=0)
    outside = ~truth.in_band()
    assert outside.sum() > 0.5 * outside.size
    ari = adjusted_rand_score(truth.labels[outside], labels[outside])
    assert ari >= 0.95


def _assert_patterns_recovered(fit, min_cos=0.95):
    S = cosine_matrix(fit.truth.patterns, fit.components)     # (true, fitted)
    assert S.shape == (fit.truth.k_true, fit.truth.k_true)
    best = S.max(axis=1)
    assert np.all(best >= min_cos), f"best cosine per true pattern: {np.round(best, 3)}"
    rows, cols = linear_sum_assignment(-S)                   # one component per pattern
    assert np.all(S[rows, cols] >= min_cos), \
        f"Hungarian-matched cosines: {np.round(S[rows, cols], 3)}"
    assert len(set(cols.tolist())) == fit.truth.k_true


def test_patterns_recovered_without_vacuum(fit_novac):
    _assert_patterns_recovered(fit_novac)


def test_patterns_recovered_with_vacuum_and_ortho(fit_vac_ortho):
    _assert_patterns_recovered(fit_vac_ortho)


@pytest.mark.parametrize("case", ["small-patterns", "k11", "k6-very-noisy"])
def test_patterns_recovered_by_default_pipeline(case):
    """analyse()'s defaults (Poisson weighting, ortho=0.1 final fit) recover every true
    pattern even where plain NMF gives part of each grain's direct beam to the vacuum
    component (cosines 0.57-0.78 on these scans with ortho=0)."""
    from types import SimpleNamespace

    from nmf4d.config import AnalysisConfig
    from nmf4d.pipeline import analyse
    from nmf4d.synthetic import suite_case

    if case == "small-patterns":
        data, truth = make_polycrystal(**POLY_VAC)
    else:
        data, truth = suite_case(case)
    a = analyse(data, AnalysisConfig.from_flat(k=truth.k_true))
    _assert_patterns_recovered(SimpleNamespace(truth=truth, components=a.components))


def test_vacuum_component_recovered_with_default(fit_vac):
    """The vacuum pattern itself (the beam alone) is found even with default settings."""
    S = cosine_matrix(fit_vac.truth.patterns, fit_vac.components)
    assert S[fit_vac.truth.vacuum_index].max() >= 0.99


def test_weights_are_intensities(fit_novac):
    """With normalised components, the weights at a position add up to its counts."""
    W = fit_novac.result.weights                      # (k, n)
    totals = fit_novac.X.sum(axis=1, dtype=np.float64)
    explained = W.sum(axis=0, dtype=np.float64)
    assert np.allclose(explained.sum(), totals.sum(), rtol=0.02)
    # and each component's weights track the true contribution of its grain
    S = cosine_matrix(fit_novac.truth.patterns, fit_novac.components)
    rows, cols = linear_sum_assignment(-S)
    true_fr = fit_novac.truth.fractions.reshape(fit_novac.truth.k_true, -1)
    for r, c in zip(rows, cols):
        assert np.corrcoef(true_fr[r], W[c])[0, 1] > 0.98


# ----------------------------------------------------------------- determinism, scaling
@pytest.mark.parametrize("init", INITS)
def test_same_seed_same_result(small, init):
    X, _ = small
    a = non_negative_factorization(X, 3, init=init, seed=7, max_iter=60)
    b = non_negative_factorization(X, 3, init=init, seed=7, max_iter=60)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.components, b.components)
    assert a.n_iter == b.n_iter and a.history == b.history


def test_seed_changes_random_start(small):
    X, _ = small
    a = non_negative_factorization(X, 3, init="random", seed=1, max_iter=3)
    b = non_negative_factorization(X, 3, init="random", seed=2, max_iter=3)
    assert not np.array_equal(a.components, b.components)


def test_input_not_modified(small):
    X, _ = small
    before = X.copy()
    non_negative_factorization(X, 3, max_iter=20)
    np.testing.assert_array_equal(X, before)


@pytest.mark.parametrize("init", ["spa", "nndsvda"])
def test_normalisation_keeps_product(small, init):
    X, _ = small
    norm = non_negative_factorization(X, 3, init=init, seed=0, normalise=True, sort=False)
    raw = non_negative_factorization(X, 3, init=init, seed=0, normalise=False, sort=False)
    sums = norm.components.sum(axis=1, dtype=np.float64)
    np.testing.assert_allclose(sums, 1.0, rtol=1e-5)
    prod_norm = norm.weights.T.astype(np.float64) @ norm.components.astype(np.float64)
    prod_raw = raw.weights.T.astype(np.float64) @ raw.components.astype(np.float64)
    np.testing.assert_allclose(prod_norm, prod_raw, rtol=1e-4, atol=1e-4 * prod_raw.max())
    # the unnormalised run is really unnormalised (otherwise the test proves nothing)
    assert not np.allclose(raw.components.sum(axis=1), 1.0, rtol=1e-3)


def test_sorted_by_intensity_explained(fit_novac):
    totals = fit_novac.result.weights.sum(axis=1, dtype=np.float64)
    assert np.all(np.diff(totals) <= 0)


def test_non_negative_factors(small):
    X, _ = small
    for init in INITS:
        r = non_negative_factorization(X, 4, init=init, seed=0, max_iter=50)
        assert r.weights.min() >= 0 and r.components.min() >= 0, init
        assert r.weights.shape == (4, X.shape[0]) and r.components.shape == (4, X.shape[1])
        assert np.isfinite(r.weights).all() and np.isfinite(r.components).all()


def test_history_is_relative_error_and_decreases(small):
    X, _ = small
    Xd = X.astype(np.float64)          # float64 data: the solver works in float64
    r = non_negative_factorization(Xd, 3, seed=0, max_iter=200, tol=1e-9)
    assert r.components.dtype == np.float64
    assert len(r.history) == r.n_iter
    h = np.asarray(r.history)
    assert np.all(np.diff(h) <= 1e-9 * h[0])            # HALS never increases the loss
    assert h[-1] < h[0]
    direct = np.linalg.norm(Xd - r.weights.T @ r.components) / np.linalg.norm(Xd)
    assert r.relative_error == pytest.approx(direct, rel=1e-6)
    # float32 data: same error up to float32 rounding of the history's formula
    r32 = non_negative_factorization(X, 3, seed=0, max_iter=200, tol=1e-9)
    assert r32.components.dtype == np.float32
    direct32 = np.linalg.norm(Xd - r32.weights.T.astype(np.float64) @ r32.components) \
        / np.linalg.norm(Xd)
    assert r32.relative_error == pytest.approx(direct32, rel=1e-4)
    assert r32.relative_error == pytest.approx(r.relative_error, rel=1e-3)


# ------------------------------------------------------------------ estimator vs function
def test_class_and_function_identical(small):
    X, _ = small
    kw = dict(init="spa", max_iter=150, tol=1e-6, seed=3)
    est = NMF(3, **kw)
    W = est.fit_transform(X)
    res = non_negative_factorization(X, 3, **kw)
    np.testing.assert_array_equal(W, res.weights.T)            # scikit-learn's W (n, k)
    np.testing.assert_array_equal(est.weights_, res.weights)
    np.testing.assert_array_equal(est.components_, res.components)
    assert est.n_iter_ == res.n_iter and est.loss_history_ == res.history


def test_estimator_attributes(small):
    X, _ = small
    est = NMF(3, max_iter=100)
    params = set(inspect.signature(NMF.__init__).parameters) - {"self"}
    assert set(vars(est)) == params                      # __init__ only stores arguments
    assert not [a for a in vars(est) if a.endswith("_")]
    assert est.fit(X) is est
    fitted = {a for a in vars(est) if a not in params}
    assert fitted and all(a.endswith("_") for a in fitted), fitted
    assert {"components_", "weights_", "n_iter_", "converged_", "loss_history_",
            "reconstruction_err_"} <= fitted
    Xd = X.astype(np.float64)
    err = np.linalg.norm(Xd - est.weights_.T.astype(np.float64) @ est.components_)
    assert est.reconstruction_err_ == pytest.approx(err, rel=1e-3)
    np.testing.assert_allclose(est.inverse_transform(est.weights_.T),
                               est.weights_.T @ est.components_)
    # transform: the weights of the fitted data are the fit's own (a stationary point in W)
    W = est.transform(X)
    assert W.shape == est.weights_.T.shape
    fit_err = np.linalg.norm(Xd - est.weights_.T.astype(np.float64) @ est.components_)
    new_err = np.linalg.norm(Xd - W.astype(np.float64) @ est.components_)
    assert new_err <= fit_err * (1 + 1e-4)
    np.testing.assert_allclose(W, est.weights_.T, rtol=0.05, atol=0.02 * float(W.max()))
    with pytest.raises(InputError, match="fit the estimator first"):
        NMF(3).transform(X)
    with pytest.raises(InputError, match="pixels per pattern"):
        est.transform(X[:, :5])


# ------------------------------------------------------------------ reference libraries
@pytest.mark.parametrize("seed,k", [(0, 3), (0, 5), (1, 3), (2, 5)])
def test_not_worse_than_sklearn(seed, k):
    X = _low_rank(seed)
    ours = NMF(k, init="nndsvda", tol=1e-8, max_iter=5000).fit(X)
    ours_err = np.linalg.norm(X - ours.weights_.T @ ours.components_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                   # ConvergenceWarning
        ref = SklearnNMF(k, solver="cd", init="nndsvda", tol=1e-6, max_iter=2000).fit(X)
    ref_err = np.linalg.norm(X - ref.transform(X) @ ref.components_)
    ref_err = min(ref_err, ref.reconstruction_err_)
    assert ours_err <= ref_err * (1 + 1e-3)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-6), (np.float32, 1e-3)])
def test_sketch_svd_matches_numpy(dtype, rtol):
    """The one randomized SVD (the operator's range finder) against numpy's SVD."""
    rng = np.random.default_rng(0)
    A = (rng.random((200, 6)) @ rng.random((6, 150))).astype(dtype)   # rank 6 exactly
    op = InMemoryOperator(A, block_rows=37)
    U, S, Vt = op.sketch(6, rng=np.random.default_rng(1))
    ref = np.linalg.svd(A.astype(np.float64), compute_uv=False)
    assert U.shape == (200, 6) and S.shape == (6,) and Vt.shape == (6, 150)
    np.testing.assert_allclose(S, ref[:6], rtol=max(rtol, 1e-3))
    np.testing.assert_allclose(U.T @ U, np.eye(6), atol=1e-5)
    recon = (U * S) @ Vt
    assert np.linalg.norm(recon - A) <= 10 * rtol * np.linalg.norm(A)
    # fewer components: the leading singular values of the full matrix
    _, S3, _ = op.sketch(3, rng=np.random.default_rng(2))
    np.testing.assert_allclose(S3, ref[:3], rtol=1e-3)


# ------------------------------------------------------------------ penalties
def _zero_fraction(a):
    return float(np.mean(np.asarray(a) == 0))


@pytest.mark.parametrize("init", ["nndsvda", "spa"])
def test_l1_penalties_sparsify_both_factors(init):
    X = _low_rank(0)
    kw = dict(init=init, seed=0, normalise=False, tol=1e-7, max_iter=3000)
    base = non_negative_factorization(X, 5, **kw)
    pen = non_negative_factorization(X, 5, l1_weights=0.1, l1_components=0.1, **kw)
    assert _zero_fraction(pen.weights) > _zero_fraction(base.weights) + 0.03
    assert _zero_fraction(pen.components) > _zero_fraction(base.components) + 0.03
    # the price is a (small) loss of fit
    assert pen.relative_error >= base.relative_error
    assert pen.relative_error < 0.1


def test_l1_on_one_factor_sparsifies_it():
    X = _low_rank(0)
    kw = dict(init="nndsvda", seed=0, normalise=False, tol=1e-7, max_iter=3000)
    base = non_negative_factorization(X, 5, **kw)
    w = non_negative_factorization(X, 5, l1_weights=0.1, **kw)
    h = non_negative_factorization(X, 5, l1_components=0.1, **kw)
    assert _zero_fraction(w.weights) > _zero_fraction(base.weights)
    assert _zero_fraction(h.components) > _zero_fraction(base.components)


# ------------------------------------------------------------------ start and errors
def test_start_at_truth_stays_at_truth(fit_novac):
    truth = fit_novac.truth
    k = truth.k_true
    Wt = truth.fractions.reshape(k, -1)
    H = truth.patterns.reshape(k, -1)
    r = non_negative_factorization(fit_novac.X, k, start=(Wt, H), sort=False, max_iter=100)
    S = cosine_matrix(truth.patterns, r.components)
    assert np.all(np.diag(S) >= 0.99)
    with pytest.raises(InputError):
        non_negative_factorization(fit_novac.X, k, start=(Wt[:-1], H[:-1]))


@pytest.mark.parametrize("k", [0, -1, 2.5, "3", True, None])
def test_bad_k(small, k):
    X, _ = small
    with pytest.raises(InputError):
        non_negative_factorization(X, k)
    with pytest.raises(InputError):
        NMF(k).fit(X)


def test_k_above_min_dimension():
    rng = np.random.default_rng(0)
    tall = rng.random((30, 8))            # 8 pixels
    wide = rng.random((6, 40))            # 6 patterns
    with pytest.raises(InputError, match="9"):
        non_negative_factorization(tall, 9)
    with pytest.raises(InputError):
        non_negative_factorization(wide, 7)
    # the largest allowed k works
    assert non_negative_factorization(tall, 8, init="nndsvda", max_iter=5).components.shape == (8, 8)
    assert non_negative_factorization(wide, 6, init="random", max_iter=5).weights.shape == (6, 6)
    assert non_negative_factorization(tall, 8, init="nndsvda", max_iter=5).weights.shape == (8, 30)


def test_bad_init_name(small):
    X, _ = small
    with pytest.raises(InputError, match="init"):
        non_negative_factorization(X, 3, init="svd")
    with pytest.raises(InputError):
        NMF(3, init="nonsense").fit(X)


@pytest.mark.parametrize("shape", [(50,), (4, 5, 6)])
def test_not_2d_input(shape):
    X = np.random.default_rng(0).random(shape)
    with pytest.raises(InputError, match="2D"):
        non_negative_factorization(X, 2)
    with pytest.raises(InputError):
        NMF(2).fit(X)


@pytest.mark.parametrize("kw", [dict(max_iter=0), dict(tol=-1.0), dict(l1_weights=-0.1),
                                dict(l1_components=-1.0)])
def test_bad_options(small, kw):
    X, _ = small
    with pytest.raises(InputError):
        non_negative_factorization(X, 3, **kw)


def _sweep_expressions(F, A, G, l1, max_inner, eps=0.1, ortho=0.0):
    """The HALS row sweep written as plain expressions (the form _sweep's buffers follow)."""
    k = F.shape[0]
    first, total, decrease = None, (F.sum(axis=0) if ortho else None), 0.0
    for _ in range(max_inner):
        delta = 0.0
        for j in range(k):
            gjj = G[j, j]
            if gjj <= 1e-12:
                continue
            step = A[j] - G[j] @ F
            if l1:
                step -= l1
            if ortho:
                step -= ortho * (total - F[j])
            new = F[j] + step / gjj
            np.maximum(new, 0.0, out=new)
            diff = new - F[j]
            d2 = float(diff @ diff)
            delta += d2
            decrease += 0.5 * gjj * d2
            F[j] = new
            if ortho:
                total += diff
        if first is None:
            first = delta
            if first == 0.0:
                break
        elif delta <= eps * eps * first:
            break
    dead = ~np.any(F > 0, axis=1)
    F[dead] = 1e-12
    return decrease


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("l1, ortho, inner", [(0.0, 0.0, 1), (0.3, 0.0, 5), (0.1, 0.2, 30)])
def test_sweep_buffers_are_bitwise_the_expressions(dtype, l1, ortho, inner):
    from nmf4d.nmf._hals import _sweep

    rng = np.random.default_rng(0)
    H = rng.random((6, 50)).astype(dtype)
    G, A = H @ H.T, (rng.random((6, 400)) * 20).astype(dtype)
    F0 = rng.random((6, 400)).astype(dtype)
    F1, F2 = F0.copy(), F0.copy()
    assert _sweep(F1, A, G, l1, inner, ortho=ortho) == \
        _sweep_expressions(F2, A, G, l1, inner, ortho=ortho)
    np.testing.assert_array_equal(F1, F2)


def test_fit_weights_matches_scipy_nnls():
    # non-negative least squares per pattern: scipy.optimize.nnls is the reference, also
    # for nearly collinear components (a shared pattern plus 3 % of each's own), with the
    # default settings
    from scipy.optimize import nnls

    from nmf4d.nmf import fit_weights
    rng = np.random.default_rng(4)
    for spread in (1.0, 0.03):
        base = rng.gamma(0.5, 1.0, 60)
        H = base[None, :] + spread * rng.gamma(0.5, 1.0, (4, 60))
        Wtrue = rng.gamma(1.0, 1.0, (4, 30)) * (rng.random((4, 30)) > 0.3)
        X = Wtrue.T @ H + rng.normal(0, 0.05, (30, 60))
        res = fit_weights(X, H)
        ref = np.stack([nnls(H.T, x)[0] for x in X], axis=1)
        opt = np.linalg.norm(X - ref.T @ H)
        assert np.linalg.norm(X - res.weights.T @ H) <= opt * (1 + 1e-5), spread
        np.testing.assert_allclose(res.weights, ref, atol=1e-3 * float(ref.max()))
        assert res.history[0] == pytest.approx(opt / np.linalg.norm(X), rel=1e-5)
        np.testing.assert_array_equal(res.components, H)
    # the L1 penalty: scipy's reference on the augmented problem (a row of sqrt terms is
    # not linear in w; compare objectives instead)
    lam = 0.5
    pen = fit_weights(X, H, l1_weights=lam).weights
    obj = lambda W: 0.5 * np.sum((X - W.T @ H) ** 2) + lam * W.sum()
    assert obj(pen) <= obj(ref) and obj(pen) <= obj(np.clip(ref - 0.01, 0, None))
    assert pen.sum() < ref.sum()
    with pytest.raises(InputError, match="components must have shape"):
        fit_weights(X, H[:, :10])
    with pytest.raises(InputError, match="finite and non-negative"):
        fit_weights(X, -H)
