"""Data operators (nmf4d.nmf): the block operator over every source, the QB sketch, the
low-rank operator, and the protocols that are their contract with the solver."""
from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from nmf4d.execution import DaskSource
from nmf4d.nmf import (
    BlockOperator,
    kernels,
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


@pytest.fixture(params=["memory", "sparse", "dask"])
def op_kind(request):
    return request.param


def _op(X, kind, scales=None):
    if kind == "memory":
        return InMemoryOperator(X, block_rows=64, scales=scales)
    if kind == "sparse":        # the same matrix held as CSR (sparse counts)
        return InMemoryOperator(kernels.to_csr(X), block_rows=64, scales=scales)
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


def counts_and_fits(seed=0, m=200, p=300, n_fits=5):
    """Sparse Poisson counts (about 4 % non-zero) and non-negative fits of them."""
    rng = np.random.default_rng(seed)
    H0 = rng.random((3, p)) ** 8
    rate = (rng.random((m, 3)) @ H0) * 0.2
    X = rng.poisson(rate).astype(np.uint16)
    fits = []
    for i in range(n_fits):
        k = 2 + i
        H = (rng.random((k, p)) ** 8).astype(np.float32)
        Wt = (rng.random((k, m)) * 0.3).astype(np.float32)
        fits.append((Wt, H))
    return X, fits


def _reference(X, fits):
    Xd = X.astype(np.float64)
    out = []
    for Wt, H in fits:
        R = Xd - Wt.T.astype(np.float64) @ H.astype(np.float64)
        out.append((np.abs(R).sum(), (R * R).sum()))
    return np.array(out)


@pytest.mark.parametrize("form", ["uint16", "float32", "csr", "weighted"])
def test_losses_on_sparse_counts(form):
    """The loss kernel's sparse identities (products only on the columns a tile has counts
    in) give the dense result, for every form a block may take."""
    X, fits = counts_and_fits()
    assert 0.01 < np.count_nonzero(X) / X.size < 0.1
    r = c = None
    if form == "weighted":
        rng = np.random.default_rng(5)
        r, c = rng.random(X.shape[0]) + 0.5, rng.random(X.shape[1]) + 0.5
        ref = _reference(X * r[:, None] * c[None, :], fits)
    else:
        ref = _reference(X, fits)
    block = {"uint16": X, "float32": X.astype(np.float32), "csr": kernels.to_csr(X),
             "weighted": X}[form]
    got = kernels.residuals(block, fits, r, c)
    np.testing.assert_allclose(got, ref, rtol=2e-6)


@pytest.mark.parametrize("form", ["uint16", "csr"])
def test_losses_with_empty_positions(form):
    """Tiles of patterns that hold no count at all (pyxem's positions outside every
    crystal) are covered by the identities alone (BLAS on an empty tile raised)."""
    X, fits = counts_and_fits()
    X[:40] = 0                                      # more than one 16-row tile empty
    X[100:180] = 0
    block = X if form == "uint16" else kernels.to_csr(X)
    np.testing.assert_allclose(kernels.residuals(block, fits), _reference(X, fits), rtol=2e-6)


def test_losses_nearly_exact_fit_and_negative_factors():
    """A fit that leaves almost no residual is recomputed without the cancelling identity;
    factors with negative entries take the dense route."""
    X, fits = counts_and_fits(n_fits=1)
    Wt, H = fits[0]
    exact = (Wt.T @ H).astype(np.float32)
    exact[exact < np.quantile(exact, 0.95)] = 0          # sparse, and nearly the model
    for fit in ((Wt, H), (Wt, H - 0.01)):
        got = kernels.residuals(exact, [fit])
        ref = _reference(exact, [fit])
        np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_maps_pass_is_the_separate_passes(low_rank_data, op_kind):
    X = low_rank_data
    op = _op(X, op_kind)
    rng = np.random.default_rng(3)
    Wt = rng.random((3, 300)).astype(np.float32)
    H = rng.random((3, 200)).astype(np.float32)
    labels = np.argmax(Wt, axis=0)
    rows = [299, 0, 57]
    res = op.maps_pass(Wt, H, labels, 3, rows, func=_first_row)
    mean_abs, sq = op.residuals([(Wt, H)])
    assert res["mean_abs"] == pytest.approx(mean_abs[0], rel=1e-6)
    assert res["sq"] == pytest.approx(sq[0], rel=1e-6)
    np.testing.assert_allclose(res["label_means"], op.label_means(labels, 3), rtol=1e-6)
    np.testing.assert_allclose(res["rows"], op.take_rows(rows), rtol=1e-6)
    assert [f[0] for f in res["func"]] == [f[0] for f in op.map_rows(_first_row)]


def _first_row(block, start):
    return start, float(block[0, 0])


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


def test_csr_pieces_of_scan_chunks_assemble_in_row_order():
    """Rectangles of scan positions read in any order become one CSR matrix in row order."""
    from nmf4d.nmf import vstack_rows

    X, _ = counts_and_fits(m=42)                     # a 6 x 7 scan of 300-pixel patterns
    pos = np.arange(42).reshape(6, 7)
    pieces = [(pos[y:y + 3, x:x + 4].ravel(), kernels.to_csr(X[pos[y:y + 3, x:x + 4].ravel()]))
              for y in (3, 0) for x in (4, 0)]
    M = vstack_rows(pieces, 42, 300)
    np.testing.assert_array_equal(M.toarray(), X)
    st = kernels.stats(pieces[0][1], pieces[0][0])
    np.testing.assert_allclose(st["row_sums"], X[pieces[0][0]].sum(axis=1))


def test_fit_weights_same_on_every_operator(low_rank_data, op_kind):
    # the weights-only refit (one pass over the data) runs on streamed and sparse data
    # as in memory
    from nmf4d.nmf import fit_weights
    X = low_rank_data
    rng = np.random.default_rng(2)
    H = rng.random((5, 200)).astype(np.float32)
    ref = fit_weights(X, H).weights
    got = fit_weights(_op(X, op_kind), H).weights
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-4)
