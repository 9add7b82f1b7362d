"""Tests of nmf4d.datachecks: identical patterns and nearly empty data, from the
statistics of the loading pass."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from nmf4d.datachecks import check_degenerate, pattern_variation
from nmf4d.errors import DataWarning
from nmf4d.prepare import load


def _fd(data):
    return load(np.asarray(data, np.float32))


def test_identical_patterns():
    rng = np.random.default_rng(0)
    pattern = rng.poisson(50, (24, 24)).astype(np.float32)
    fd = _fd(np.broadcast_to(pattern, (6, 5, 24, 24)))
    assert pattern_variation(fd.stats, 30) < 1e-6
    with pytest.warns(DataWarning, match="all 30 patterns are identical.*so k = 1"):
        assert check_degenerate(fd, "auto") == 1
    with pytest.warns(DataWarning, match=r"the other 3 of the k = 4 components"):
        assert check_degenerate(fd, 4) == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_degenerate(fd, 1) == 1                # nothing to say


def test_varied_patterns_pass_silently():
    rng = np.random.default_rng(1)
    fd = _fd(rng.poisson(5, (6, 5, 24, 24)))
    assert pattern_variation(fd.stats, 30) > 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_degenerate(fd, "auto") == "auto"


def test_nearly_empty_data():
    data = np.zeros((6, 5, 24, 24), np.float32)
    data[0, 0, 3, 4] = 10.0
    data[1, 2, 5, 5] = 3.0
    with pytest.warns(DataWarning) as rec:
        check_degenerate(_fd(data), "auto")
    text = " | ".join(str(w.message) for w in rec)
    assert "28 of the 30 patterns hold no intensity" in text
    assert "only 2 of the 576 detector pixels are ever non-zero" in text


def test_k_equal_to_the_number_of_patterns():
    rng = np.random.default_rng(2)
    fd = _fd(rng.poisson(5, (4, 4, 16, 16)))
    with pytest.warns(DataWarning, match=r"k = 16 is the number of patterns \(16\)"):
        assert check_degenerate(fd, 16) == 16
