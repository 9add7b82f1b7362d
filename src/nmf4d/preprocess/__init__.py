"""Preparation of 4D-STEM data (scan_y, scan_x, ky, kx) before NMF.

:func:`preprocess` applies a :class:`~nmf4d.config.PreprocessConfig` in the order
crop -> bin -> mask -> filter -> scale -> normalise and records what it did. The steps
(:mod:`.steps`) are pure functions on numpy or dask arrays (dask stays lazy); the scan
filters are in :mod:`nmf4d.filters`, the direct-beam finder in :mod:`nmf4d.beam`, the
shape and value checks in :mod:`nmf4d.arrays`. All of them are importable from here.
"""
from ..arrays import check_values, from_matrix, raise_bad_values, to_matrix, validate_4d
from ..beam import direct_beam_mask, find_direct_beam
from ..filters.scan import scan_mean_filter
from .chain import Preprocessed, preprocess
from .steps import (
    apply_mask,
    bin_patterns,
    centre_crop,
    crop_patterns,
    normalise_patterns,
    scale_intensity,
)

__all__ = ["preprocess", "Preprocessed", "bin_patterns", "crop_patterns", "centre_crop",
           "apply_mask", "scale_intensity", "normalise_patterns", "scan_mean_filter",
           "find_direct_beam", "direct_beam_mask", "validate_4d", "check_values",
           "raise_bad_values", "to_matrix", "from_matrix"]
