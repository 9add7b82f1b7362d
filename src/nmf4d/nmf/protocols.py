"""The contracts between the NMF solver and the data it factorises.

The solver (:func:`nmf4d.nmf.non_negative_factorization`, :func:`._hals.hals`), the
initialisation and the k sweep touch the data matrix X (n patterns x p pixels) only
through a :class:`DataOperator`. Two implementations exist: the block operator over the
full data (:class:`nmf4d.nmf.BlockOperator`, in memory or streamed, optionally
Poisson-weighted on the fly) and the low-rank operator over a ``Q B`` sketch
(:class:`nmf4d.nmf.LowRankOperator`). An operator that can update a block's weights and
form its share of ``Wt @ X`` from one read of the block also satisfies
:class:`FusedWeightStep`; the solver then reads X once per iteration instead of twice.
:class:`FullDataOperator` adds the passes over the full data that the k sweep and the
maps make (losses of many fits at once, cluster means, chosen rows, the range finder).

Shapes: ``Wt`` is (k, n) (weights, component axis first), ``H`` is (k, p) (components).
"""
from __future__ import annotations

from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class DataOperator(Protocol):
    """What the solver and the initialisation need of the data X of shape (n, p).

    Attributes
    ----------
    shape : (int, int)
    dtype : numpy dtype
        float32 or float64: the dtype the factors are computed in.
    pass_cost : float or None
        Cost of one product with the data per component (``n p`` when None; a rank-l
        sketch costs ``(n + p) l``), for accelerated HALS' inner-sweep bound.
    objective_floor : float
        Part of the full-data objective the operator's data cannot represent
        (``0.5 ||X - QB||^2`` for a sketch, 0 for the full data): HALS stops relative to
        the full-data objective.
    """

    shape: tuple
    dtype: np.dtype
    pass_cost: float | None
    objective_floor: float

    def sq_norm(self) -> float:
        """``||X||_F^2`` (float64)."""

    def mean(self) -> float:
        """Mean entry of X."""

    def x_ht(self, H: np.ndarray) -> np.ndarray:
        """``H @ X.T``, ndarray of shape (k, n)."""

    def wt_x(self, Wt: np.ndarray) -> np.ndarray:
        """``Wt @ X``, ndarray of shape (k, p)."""

    def sketch(self, n_components: int, *, rng: np.random.Generator):
        """Truncated SVD ``X ~ U S Vt``: U (n, r), S (r,), Vt (r, p)."""

    def normalised_coords(self, r: int, *, rng: np.random.Generator,
                          scan_shape=None) -> np.ndarray:
        """Coordinates (n, r) of the sum-normalised rows in their top-r SVD subspace
        (3x3 scan-averaged when ``scan_shape`` is given)."""

    def mean_normalised_rows(self, groups: Sequence[np.ndarray]) -> np.ndarray:
        """Mean of the sum-normalised rows of each index array, shape (len(groups), p)."""

    def in_memory_matrix(self) -> np.ndarray | None:
        """X itself when it is an unweighted matrix in memory (the GPU engine copies it),
        else None."""


@runtime_checkable
class FusedWeightStep(Protocol):
    """A HALS weight update fused with ``Wt @ X`` (one read of each block of X)."""

    def hals_w_step(self, Wt: np.ndarray, H: np.ndarray, HHt: np.ndarray, *,
                    l1: float = 0.0, inner: int = 1, mu: float = 0.0, eps: float = 0.1,
                    need_b: bool = True):
        """Update the weights from ``H @ X.T`` and the Gram ``HHt``, then form
        ``B = Wt @ X`` with the new weights.

        Returns
        -------
        Wt : ndarray of shape (k, n)
        B : ndarray of shape (k, p), or None when ``need_b`` is False
        WtW : ndarray of shape (k, k)
        dec : float
            Lower bound on the objective decrease (see ``_hals._sweep``).
        """


@runtime_checkable
class FullDataOperator(DataOperator, FusedWeightStep, Protocol):
    """The passes over the full data that the sweep, the refinement and the maps make."""

    n_blocks: int

    def stats(self) -> dict:
        """Row sums (n,), column sums (p,), squared norm and bad-value counts of X."""

    def row_sums(self) -> np.ndarray:
        """Total of each row, shape (n,), float64."""

    def residuals(self, fits: Sequence[tuple]) -> tuple[np.ndarray, np.ndarray]:
        """``mean |X - Wt.T @ H|`` and ``||X - Wt.T @ H||^2`` of each (Wt, H), one pass."""

    def sq_residual(self, Wt: np.ndarray, H: np.ndarray) -> float:
        """``||X - Wt.T @ H||_F^2`` in float64."""

    def qb(self, l: int, *, n_iter: int = 2, rng: np.random.Generator,
           row_factor: np.ndarray | None = None):
        """Randomized range finder ``X ~ Q B``: Q (n, l) orthonormal, B (l, p)."""

    def take_rows(self, idx) -> np.ndarray:
        """Rows ``idx`` of X, shape (len(idx), p)."""

    def label_means(self, labels: np.ndarray, k: int) -> np.ndarray:
        """Mean row of each label 0..k-1, shape (k, p), float64."""

    def map_rows(self, func: Callable) -> list:
        """``[func(X_block, start) for each row block]`` in block order."""


#: ``callback(iteration, relative_error)`` after each solver iteration.
IterationCallback = Callable[[int, float], None]
