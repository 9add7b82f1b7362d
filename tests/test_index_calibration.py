"""nmf4d.index.calibration: validation with errors naming the option."""
import pytest

from _index_support import need_index_deps

need_index_deps()

from nmf4d.errors import InputError  # noqa: E402
from nmf4d.index import Calibration  # noqa: E402


@pytest.mark.parametrize("value", [0, -0.01, "abc", float("nan")])
def test_reciprocal_scale_must_be_positive(value):
    with pytest.raises(InputError, match="reciprocal_scale"):
        Calibration(value)


def test_other_options_are_named():
    with pytest.raises(InputError, match="voltage"):
        Calibration(0.02, voltage=0)
    with pytest.raises(InputError, match="precession_angle"):
        Calibration(0.02, precession_angle=-1)
    with pytest.raises(InputError, match="beam_centre"):
        Calibration(0.02, beam_centre=(1, 2, 3))


def test_defaults_and_wavelength():
    from diffsims.utils.sim_utils import get_electron_wavelength

    c = Calibration(0.02)
    assert (c.voltage, c.precession_angle, c.beam_centre) == (200.0, 0.0, None)
    assert c.centre((96, 128)) == (47.5, 63.5)
    assert Calibration(0.02, beam_centre=(40, 50)).centre((96, 96)) == (40.0, 50.0)
    assert c.wavelength == pytest.approx(get_electron_wavelength(200))
    assert c.with_scale(0.03).reciprocal_scale == 0.03
