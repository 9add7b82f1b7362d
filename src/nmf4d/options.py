"""The allowed values of nmf4d's options (the vocabulary shared by the config and the stages).

Kept in a module that imports nothing, so the configuration (:mod:`nmf4d.config`) and the
stages that use these values can both import them without importing each other.
"""

#: Starts of an NMF fit (see :func:`nmf4d.nmf.non_negative_factorization`).
INITS = ("spa", "nndsvda", "nndsvd", "random")
#: Noise weighting of the data before NMF (see :mod:`nmf4d.nmf`).
WEIGHTINGS = ("poisson", "none")
#: How decision level one fits every k (see :mod:`nmf4d.sweep`).
SWEEP_METHODS = ("sketch", "full")
#: Intensity scaling and normalisation (see :mod:`nmf4d.preprocess`).
SCALE_METHODS = ("none", "sqrt", "log")
NORMALISE_METHODS = ("none", "sum", "max", "mean_total")
#: Where the denoiser trains and the final fit runs.
DEVICES = ("auto", "cpu", "cuda", "cuda:N")
#: The image-quality metrics of decision level two (see :mod:`nmf4d.iqa`).
METRIC_NAMES = ("ssim", "psnr", "gmsd", "mdsi")
#: Overlap thresholds (second / largest weight) of the overlap maps.
DEFAULT_THRESHOLDS = (0.75, 0.80, 0.85, 0.90, 0.95)
#: Default range of k for decision level one.
DEFAULT_K_RANGE = (2, 20)
