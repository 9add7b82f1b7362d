"""NMF engine: accelerated HALS with NNDSVD initialisation (see ``_hals`` for the objective)."""
from ._estimator import NMF, NMFResult, check_k, initialise, non_negative_factorization, normalise_factors
from ._blocked import BlockOperator, DaskSource, InMemoryOperator, NumpySource
from ._operator import randomized_svd
from ._weighting import WEIGHTINGS, apply_scales, poisson_scales, rescale, unscale

__all__ = ["NMF", "NMFResult", "non_negative_factorization", "normalise_factors",
           "initialise", "check_k", "InMemoryOperator", "BlockOperator", "NumpySource",
           "DaskSource", "randomized_svd",
           "WEIGHTINGS", "poisson_scales", "apply_scales", "unscale", "rescale"]
