"""Tests of nmf4d.errors: what each kind of error says, and that callers can tell them apart."""
import numpy as np
import pytest

from nmf4d.arrays import validate_4d
from nmf4d.config import AnalysisConfig
from nmf4d.errors import ConfigError, InputError, MissingDependencyError


def test_input_errors_of_real_calls_are_value_errors():
    """Library users catch bad input as ValueError (InputError's base) from real calls."""
    with pytest.raises(ValueError, match="must be 4D"):
        validate_4d(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="seed"):
        AnalysisConfig(seed=-2)


def test_config_error_carries_field_value_reason():
    e = ConfigError("sweep.k_range", (5, 6), "must satisfy MAX >= MIN + 2")
    assert isinstance(e, InputError)
    assert (e.field, e.value, e.reason) == ("sweep.k_range", (5, 6), "must satisfy MAX >= MIN + 2")
    assert str(e) == "sweep.k_range=(5, 6): must satisfy MAX >= MIN + 2"


def test_missing_dependency_names_the_extra():
    e = MissingDependencyError("the denoise filter", "PyTorch", "denoise")
    assert isinstance(e, InputError) and not isinstance(e, ConfigError)
    assert e.extra == "denoise"
    assert str(e) == 'the denoise filter needs PyTorch: pip install "nmf4d[denoise]"'
