"""Raw vs NMF per cluster (the paper's Figure 4d/e and its IQA), in one pass over the data.

The pass (cluster means and representative patterns) is either made here on an operator,
or by the caller that reads the data once for the whole maps stage
(:func:`nmf4d.pipeline.analyse`): it asks for the rows :func:`representatives` names and
passes the means and rows in.
"""
from __future__ import annotations

import numpy as np

from . import iqa
from .options import METRIC_NAMES


def representatives(weights: np.ndarray) -> np.ndarray:
    """Row (scan position, row-major) of each component's largest weight, shape (k,).

    Parameters
    ----------
    weights : ndarray of shape (k, scan_y, scan_x)
    """
    return np.argmax(weights.reshape(weights.shape[0], -1), axis=1)


def compare_clusters(op, components: np.ndarray, weights: np.ndarray,
                     labels: np.ndarray, *, raw_mean: np.ndarray | None = None,
                     rows: np.ndarray | None = None) -> dict:
    """Mean raw pattern vs NMF pattern of every cluster.

    Parameters
    ----------
    op : FullDataOperator, ndarray of shape (scan_y, scan_x, ky, kx), or None
        The (preprocessed) data that was factorised; one pass for the cluster means
        (None when ``raw_mean`` and ``rows`` are given).
    components : ndarray of shape (k, ky, kx)
    weights : ndarray of shape (k, scan_y, scan_x)
    labels : ndarray of shape (scan_y, scan_x)
    raw_mean : ndarray of shape (k, ky * kx), optional
        Mean data row of each label, from the caller's pass.
    rows : ndarray of shape (k, ky * kx), optional
        The data rows :func:`representatives` names, from the caller's pass.

    Returns
    -------
    dict with
        raw_mean : (k, ky, kx) mean pattern of the positions labelled c (0 if none)
        nmf_pattern : (k, ky, kx) component c scaled by its largest weight
        representative : (k, 2) scan position of the largest weight of c
        iqa/<metric> : (k,) nmf_pattern (distorted) vs raw_mean (reference), both scaled
            by their common maximum
        nsd : (k,) the paper's noise standard deviation of the representative pattern
        immerkaer : (k,) Immerkaer's noise sigma of the representative pattern
        count : (k,) positions labelled c
    """
    from .nmf import InMemoryOperator

    k = components.shape[0]
    ky, kx = components.shape[1:]
    if isinstance(op, np.ndarray):
        op = InMemoryOperator(np.asarray(op).reshape(-1, ky * kx))
    flat_lab = labels.ravel()
    count = np.bincount(flat_lab, minlength=k)
    if raw_mean is None:
        raw_mean = op.label_means(flat_lab, k)
    raw_mean = np.asarray(raw_mean).reshape(k, ky, kx)
    wflat = weights.reshape(k, -1)
    best = representatives(weights)
    nmf_pattern = components * wflat[np.arange(k), best][:, None, None]
    rep = np.asarray(op.take_rows(best) if rows is None else rows,
                     np.float64).reshape(k, ky, kx)
    mx = np.maximum(raw_mean.max(axis=(1, 2)), nmf_pattern.max(axis=(1, 2)))
    mx[mx <= 0] = 1.0
    a = raw_mean / mx[:, None, None]
    b = nmf_pattern / mx[:, None, None]
    out = {"raw_mean": raw_mean.astype(np.float32), "nmf_pattern": nmf_pattern.astype(np.float32),
           "representative": np.stack(np.unravel_index(best, labels.shape), axis=1).astype(np.int32),
           "count": count.astype(np.int64),
           "nsd": iqa.nsd(rep), "immerkaer": iqa.immerkaer_sigma(rep)}
    for m in METRIC_NAMES:
        out[f"iqa/{m}"] = np.atleast_1d(iqa.METRICS[m](b, a, data_range=1.0)).astype(np.float64)
    return out
