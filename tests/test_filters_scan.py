"""Tests for nmf4d.filters.scan: the paper's 3x3 scan-neighbour mean."""
import dask.array as da
import numpy as np
import pytest

from helpers import CHUNKS, assert_input_error, data, run_both  # noqa: F401
from nmf4d.errors import InputError
from nmf4d.filters.scan import scan_mean_filter


def ref_scan_mean(a, size):
    r = size // 2
    sy, sx = a.shape[:2]
    out = np.zeros(a.shape)
    for i in range(sy):
        for j in range(sx):
            acc, n = np.zeros(a.shape[2:]), 0
            for di in range(-r, r + 1):
                for dj in range(-r, r + 1):
                    if 0 <= i + di < sy and 0 <= j + dj < sx:
                        acc += a[i + di, j + dj]
                        n += 1
            out[i, j] = acc / n
    return out


@pytest.mark.parametrize("size", [1, 3, 5])
def test_scan_mean_filter(size):
    a = np.random.default_rng(3).random((7, 9, 5, 4)).astype(np.float32)
    out = run_both(scan_mean_filter, a, size=size)
    assert out.dtype == np.float32 and out.shape == a.shape
    np.testing.assert_allclose(out, ref_scan_mean(a, size), rtol=1e-6)


def test_scan_mean_filter_corner_and_chunks():
    a = np.random.default_rng(4).random((7, 9, 5, 4))
    out = scan_mean_filter(a, size=3)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out[0, 0], a[:2, :2].mean(axis=(0, 1)))
    for chunks in [(1, 2, 5, 4), (7, 9, 5, 4), (2, 5, 3, 2)]:
        d = scan_mean_filter(da.from_array(a, chunks=chunks), size=5)
        np.testing.assert_allclose(d.compute(), ref_scan_mean(a, 5), rtol=1e-10)


@pytest.mark.parametrize("size", [0, 2, -3, 3.0])
def test_scan_mean_filter_errors(data, size):
    assert_input_error("size", scan_mean_filter, data, size=size)
