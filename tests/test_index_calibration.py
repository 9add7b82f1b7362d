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


def test_find_beam_centre_subpixel():
    import numpy as np

    from nmf4d.index import find_beam_centre

    yy, xx = np.indices((64, 80))
    img = 1000 * np.exp(-((yy - 30.3) ** 2 + (xx - 41.7) ** 2) / 8) + 5
    img += 300 * np.exp(-((yy - 10) ** 2 + (xx - 60) ** 2) / 2)       # a Bragg spot
    r, c = find_beam_centre(img)
    assert abs(r - 30.3) < 0.1 and abs(c - 41.7) < 0.1
    with pytest.raises(InputError, match="threshold"):
        find_beam_centre(img, threshold=2)
