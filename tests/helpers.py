"""Helpers shared by the test modules (imported as ``from helpers import ...``)."""
import dask.array as da
import numpy as np
import pytest

from nmf4d.errors import InputError

#: A small 4D array and uneven dask chunks: (3, 3, 1) x (4, 4, 1) scan chunks.
SHAPE = (7, 9, 10, 11)
CHUNKS = (3, 4, -1, -1)


@pytest.fixture
def data():
    """A random float32 array of shape SHAPE."""
    rng = np.random.default_rng(0)
    return rng.random(SHAPE).astype(np.float32)


def run_both(func, arr, *args, **kwargs):
    """Run func on numpy and on dask input; check kinds, no in-place change, equality."""
    before = arr.copy()
    out_np = func(arr, *args, **kwargs)
    assert isinstance(out_np, np.ndarray)
    assert not np.shares_memory(out_np, arr)
    d = da.from_array(arr, chunks=CHUNKS)
    out_da = func(d, *args, **kwargs)
    assert isinstance(out_da, da.Array)
    res = out_da.compute()
    assert res.dtype == out_np.dtype and res.shape == out_np.shape
    np.testing.assert_allclose(res, out_np, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(arr, before)
    return out_np


def assert_input_error(match, func, *args, **kwargs):
    """``func(*args, **kwargs)`` raises InputError matching ``match``."""
    with pytest.raises(InputError, match=match):
        func(*args, **kwargs)


class _Recorder:
    def __init__(self, total):
        self.total = total
        self.n = 0

    def update(self, n=1):
        self.n += n


class RecordingProgress:
    """A Progress that records its bars (desc -> recorder with ``total`` and ``n``) and
    events, for tests of what a stage reports."""

    def __new__(cls):
        from contextlib import contextmanager

        from nmf4d.execution import Progress

        class Recording(Progress):
            def __init__(self):
                super().__init__(log=lambda stage, info: self.events.append((stage, info)))
                self.recorded = {}
                self.events = []

            @contextmanager
            def bar(self, desc, total, unit="it"):
                rec = _Recorder(total)
                self.recorded[desc] = rec
                yield rec
        return Recording()
