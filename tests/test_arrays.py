"""Tests for nmf4d.arrays: shape/dtype/value checks and the matrix views."""
import dask.array as da
import numpy as np
import pytest

from helpers import CHUNKS, assert_input_error, data, run_both  # noqa: F401
from nmf4d.errors import InputError
from nmf4d import arrays as ar


def test_validate_4d_ok(data):
    ar.validate_4d(data)
    ar.validate_4d(da.from_array(data, chunks=CHUNKS))


@pytest.mark.parametrize("arr, match", [
    (np.zeros((10, 64, 64)), r"data must be 4D \(scan_y, scan_x, ky, kx\), got shape \(10, 64, 64\)"),
    (np.zeros((2, 2, 3, 3), complex), "data must be real"),
    (np.zeros((0, 4, 8, 8)), r"data is empty.*\(0, 4, 8, 8\)"),
    (np.zeros((2, 2, 3, 3), object), "data must have an integer or float"),
])
def test_validate_4d_errors(arr, match):
    assert_input_error(match, ar.validate_4d, arr)
    assert_input_error(match.replace("data", "stack"), ar.validate_4d, arr, name="stack")


def test_validate_4d_dask_does_not_compute():
    def boom(block):
        raise AssertionError("computed")
    d = da.zeros((4, 4, 5, 5), chunks=2).map_blocks(boom, dtype=float)
    ar.validate_4d(d)


def test_check_values(data):
    ar.check_values(data)
    ar.check_values(da.from_array(data, chunks=CHUNKS))
    ar.check_values(data.astype(np.uint16))
    for kind in (np.asarray, lambda a: da.from_array(a, chunks=CHUNKS)):
        bad = data.copy()
        bad[2, 5, 1, 1] = np.nan
        bad[4, 0, 0, 0] = np.inf
        with pytest.raises(InputError, match=r"data contains 2 NaN/inf.*2 pattern.*\(2, 5\)"):
            ar.check_values(kind(bad))
        neg = data.copy()
        neg[1, 3, 0, 0] = -0.5
        neg[6, 8, 2, 2] = -2.0
        neg[6, 8, 2, 3] = -1.0
        with pytest.raises(InputError, match=r"frame contains 3 negative.*2 pattern.*"
                                              r"\(1, 3\).*minimum value -2"):
            ar.check_values(kind(neg), name="frame")
    with pytest.raises(InputError, match="negative"):
        ar.check_values(np.full((2, 2, 2, 2), -1, np.int16))


def test_check_values_one_compute(data, monkeypatch):
    calls = []
    real = da.compute
    monkeypatch.setattr(da, "compute", lambda *a, **k: calls.append(1) or real(*a, **k))
    ar.check_values(da.from_array(data, chunks=CHUNKS))
    assert len(calls) == 1


def test_to_from_matrix(data):
    m = ar.to_matrix(data)
    assert m.shape == (63, 110) and np.shares_memory(m, data)
    for iy in range(7):
        for ix in range(9):
            np.testing.assert_array_equal(m[iy * 9 + ix], data[iy, ix].ravel())
    md = ar.to_matrix(da.from_array(data, chunks=CHUNKS))
    assert isinstance(md, da.Array)
    np.testing.assert_array_equal(md.compute(), m)
    back = ar.from_matrix(m, (7, 9), (10, 11))
    np.testing.assert_array_equal(back, data)
    np.testing.assert_array_equal(ar.from_matrix(md, (7, 9), (10, 11)).compute(), data)
    assert_input_error("matrix", ar.from_matrix, m, (9, 7), (11, 11))
