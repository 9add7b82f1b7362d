"""Data operators: block kernels, the QB sketch, the low-rank operator, the sketched sweep."""
from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from nmf4d.nmf import BlockOperator, DaskSource, InMemoryOperator, non_negative_factorization
from nmf4d.nmf._lowrank import LowRankOperator
from nmf4d.sweep import loss_sweep
from nmf4d.synthetic import make_polycrystal


@pytest.fixture(scope="module")
def low_rank_data():
    rng = np.random.default_rng(0)
    W = rng.random((300, 5))
    H = rng.random((5, 200))
    X = (W @ H + 0.01 * rng.random((300, 200))).astype(np.float32)
    return X


@pytest.fixture(params=["memory", "dask"])
def op_kind(request):
    return request.param


def _op(X, kind, scales=None):
    if kind == "memory":
        return InMemoryOperator(X, block_rows=64, scales=scales)
    return BlockOperator(DaskSource(da.from_array(X, chunks=(70, 200)), scheduler="threads",
                                    num_workers=2), scales=scales)


def test_products_match_numpy(low_rank_data, op_kind):
    X = low_rank_data
    rng = np.random.default_rng(1)
    a, b = rng.random(300) + 0.5, rng.random(200) + 0.5
    Xs = (X * a[:, None] * b[None, :]).astype(np.float32)
    op = _op(X, op_kind, scales=(a, b))
    H = rng.random((4, 200)).astype(np.float32)
    Wt = rng.random((4, 300)).astype(np.float32)
    np.testing.assert_allclose(op.x_ht(H), H @ Xs.T, rtol=1e-4)
    np.testing.assert_allclose(op.wt_x(Wt), Wt @ Xs, rtol=1e-4)
    assert op.sq_norm() == pytest.approx(float((Xs.astype(np.float64) ** 2).sum()), rel=1e-6)
    R = Xs - Wt.T @ H
    mean_abs, sq = op.residuals([(Wt, H), (Wt[:2], H[:2])])
    assert mean_abs[0] == pytest.approx(np.abs(R).mean(), rel=1e-5)
    assert sq[0] == pytest.approx(float((R.astype(np.float64) ** 2).sum()), rel=1e-5)
    assert mean_abs[1] == pytest.approx(np.abs(Xs - Wt[:2].T @ H[:2]).mean(), rel=1e-5)
    np.testing.assert_allclose(op.take_rows([5, 250, 0]), Xs[[5, 250, 0]], rtol=1e-6)
    labels = np.arange(300) % 3
    np.testing.assert_allclose(op.label_means(labels, 3),
                               np.stack([Xs[labels == j].mean(axis=0) for j in range(3)]),
                               rtol=1e-5)


def test_stats_pass(low_rank_data, op_kind):
    X = low_rank_data.copy()
    X[7, 3] = np.nan
    X[120, 5] = -2.0
    st = _op(X, op_kind).stats()
    assert st["n_bad"] == 1 and list(st["bad_rows"]) == [7]
    assert st["n_neg"] == 1 and list(st["neg_rows"]) == [120] and st["min"] == -2.0
    good = np.where(np.isfinite(X), X, 0)
    np.testing.assert_allclose(st["col_sums"], good.sum(axis=0, dtype=np.float64), rtol=1e-6)


def test_qb_captures_range(low_rank_data, op_kind):
    X = low_rank_data
    Q, B = _op(X, op_kind).qb(10, n_iter=2, rng=np.random.default_rng(0))
    np.testing.assert_allclose(Q.T @ Q, np.eye(10), atol=1e-6)
    S = np.linalg.svd(X.astype(np.float64), compute_uv=False)
    err = np.linalg.norm(X - Q @ B, 2)
    assert err <= 1.05 * S[10]          # near the best rank-10 error (Eckart-Young)


def test_low_rank_operator_products(low_rank_data):
    X = low_rank_data
    Q, B = InMemoryOperator(X).qb(8, rng=np.random.default_rng(0))
    low = LowRankOperator(Q, B)
    A = Q @ B
    H = np.random.default_rng(2).random((3, 200)).astype(np.float32)
    np.testing.assert_allclose(low.x_ht(H), H @ A.T, rtol=1e-4)
    assert low.sq_norm() == pytest.approx((A ** 2).sum(), rel=1e-6)
    np.testing.assert_allclose(low.row_sums(), A.sum(axis=1), rtol=1e-6)


@pytest.mark.parametrize("inner, ortho", [(1, 0.0), ("auto", 0.0), (1, 0.1)])
def test_fit_independent_of_blocks(low_rank_data, inner, ortho):
    """The fused per-block step makes the same sweeps whatever the blocks (no per-block
    early stop), so the fit does not depend on how the rows are split."""
    X = low_rank_data
    fits = [non_negative_factorization(InMemoryOperator(X, block_rows=r), 5, init="nndsvda",
                                       inner=inner, ortho=ortho, max_iter=50)
            for r in (7, 64, 300)]
    for f in fits[1:]:
        # float32 sums over blocks in a different order: <= 6e-5 after 50 iterations
        assert np.linalg.norm(f.components - fits[0].components) <= \
            1e-4 * np.linalg.norm(f.components)
        assert np.linalg.norm(f.weights - fits[0].weights) <= 1e-4 * np.linalg.norm(f.weights)
        assert f.n_iter == fits[0].n_iter


def test_sketched_sweep_is_faithful():
    """The sketched level-one loss is within 1 % of full-data fits at every k."""
    data, truth = make_polycrystal((32, 32), (40, 40), n_grains=4, vacuum=True, dose=2000,
                                   seed=5)
    X = data.reshape(32 * 32, -1).astype(np.float32)
    kw = dict(scan_shape=(32, 32), seed=0)
    sk = loss_sweep(X, (2, 9), max_iter=200, tol=1e-4, **kw)
    full = loss_sweep(X, (2, 9), method="full", max_iter=1000, tol=1e-6, **kw)
    assert np.all(np.abs(sk.loss / full.loss - 1) < 0.01), sk.loss / full.loss - 1
    assert sk.knee == full.knee == truth.k_true
    assert set(sk.timings) == {"sketch", "fits", "loss"}
