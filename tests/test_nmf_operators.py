"""Data operators (nmf4d.nmf): the block operator over every source, the QB sketch, the
low-rank operator, and the protocols that are their contract with the solver."""
from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from nmf4d.execution import DaskSource
from nmf4d.nmf import (
    BlockOperator,
    DataOperator,
    FullDataOperator,
    FusedWeightStep,
    InMemoryOperator,
    LowRankOperator,
    non_negative_factorization,
)


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


def test_operators_satisfy_their_protocols(low_rank_data):
    X = low_rank_data
    full = InMemoryOperator(X)
    low = LowRankOperator(*full.qb(8, rng=np.random.default_rng(0)))
    assert isinstance(full, FullDataOperator) and isinstance(full, FusedWeightStep)
    assert isinstance(low, DataOperator) and not isinstance(low, FusedWeightStep)
    assert not isinstance(low, FullDataOperator)
    assert full.in_memory_matrix() is X
    assert InMemoryOperator(X, scales=(np.ones(300), np.ones(200))).in_memory_matrix() is None
    assert low.in_memory_matrix() is None


class _DenseOperator:
    """The smallest DataOperator: dense products, no fused step (the solver must then make
    two products per iteration)."""

    pass_cost = None
    objective_floor = 0.0

    def __init__(self, X):
        self.X = X
        self.shape = X.shape
        self.dtype = np.dtype(np.float32)
        self.products = 0

    def sq_norm(self):
        return float((self.X.astype(np.float64) ** 2).sum())

    def mean(self):
        return float(self.X.mean())

    def x_ht(self, H):
        self.products += 1
        return H @ self.X.T

    def wt_x(self, Wt):
        self.products += 1
        return Wt @ self.X

    def sketch(self, n_components, *, rng):
        U, S, Vt = np.linalg.svd(self.X.astype(np.float64), full_matrices=False)
        return U[:, :n_components], S[:n_components], Vt[:n_components]

    def normalised_coords(self, r, *, rng, scan_shape=None):
        raise NotImplementedError

    def mean_normalised_rows(self, groups):
        raise NotImplementedError

    def in_memory_matrix(self):
        return None


def test_solver_needs_only_the_protocol(low_rank_data):
    """Any object with the DataOperator methods is factorised as the matrix it stands for."""
    X = low_rank_data
    dense = _DenseOperator(X)
    assert isinstance(dense, DataOperator) and not isinstance(dense, FusedWeightStep)
    a = non_negative_factorization(dense, 5, init="nndsvd", max_iter=30)
    b = non_negative_factorization(X, 5, init="nndsvd", max_iter=30)
    assert dense.products >= 2 * a.n_iter              # two products per iteration
    assert a.n_iter == b.n_iter
    np.testing.assert_allclose(a.components, b.components, rtol=1e-3, atol=1e-6)
