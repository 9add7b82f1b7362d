"""Tests for nmf4d.beam: the direct-beam finder, its disc and mask."""
import dask.array as da
import numpy as np
import pytest

from helpers import CHUNKS, assert_input_error, data, run_both  # noqa: F401
from nmf4d.errors import InputError
from nmf4d import beam


@pytest.mark.parametrize("cy, cx, width", [(20.3, 25.7, 2.0), (31.5, 30.25, 3.5), (12.8, 40.1, 1.2)])
def test_find_direct_beam(cy, cx, width):
    yy, xx = np.mgrid[:64, :56]
    rng = np.random.default_rng(2)
    p = 100 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width ** 2))
    p += 5 * np.exp(-((yy - 50) ** 2 + (xx - 10) ** 2) / 8)        # weaker second spot
    p += rng.random(p.shape)                                         # background noise
    fy, fx = beam.find_direct_beam(p)
    assert abs(fy - cy) < 0.1 and abs(fx - cx) < 0.1
    fy, fx = beam.find_direct_beam(da.from_array(p, chunks=16), sigma=0)
    assert abs(fy - cy) < 0.1 and abs(fx - cx) < 0.1
    assert isinstance(fy, float)


def test_find_direct_beam_errors():
    assert_input_error("mean_pattern", beam.find_direct_beam, np.zeros((2, 3, 4)))
    assert_input_error("sigma", beam.find_direct_beam, np.zeros((4, 4)), sigma=-1)
    assert beam.find_direct_beam(np.ones((5, 7))) == (2.0, 3.0)


def test_direct_beam_mask():
    m = beam.direct_beam_mask((10, 11), radius=2.5)
    ref = np.zeros((10, 11), bool)
    for y in range(10):
        for x in range(11):
            ref[y, x] = (y - 4.5) ** 2 + (x - 5) ** 2 <= 2.5 ** 2
    np.testing.assert_array_equal(m, ref)
    m = beam.direct_beam_mask((3, 4, 10, 11), radius=1, centre=(0, 10))
    assert m.dtype == bool and m.shape == (10, 11)
    assert set(zip(*np.nonzero(m))) == {(0, 10), (1, 10), (0, 9)}
    assert_input_error("radius", beam.direct_beam_mask, (10, 11), radius=0)
    assert_input_error("shape", beam.direct_beam_mask, (10,), radius=1)
    assert_input_error("centre", beam.direct_beam_mask, (10, 11), radius=1, centre="x")
