"""nmf4d.index.prepare: beam disc and smooth background removed, spots kept."""
import numpy as np

from _index_support import need_index_deps

need_index_deps()

from nmf4d.index import Calibration, Preparation, prepare_pattern  # noqa: E402
from nmf4d.index.prepare import polar_transform, radial_median  # noqa: E402


def _rings_and_spots():
    yy, xx = np.indices((64, 64))
    r = np.hypot(yy - 31.5, xx - 31.5)
    smooth = 1000 * np.exp(-r ** 2 / 8) + 50 * np.exp(-(r - 18) ** 2 / 8) + 5
    spots = np.zeros((64, 64))
    for y, x in [(10, 31), (45, 50), (31, 5)]:
        spots += 40 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 2)
    return smooth, spots


def test_radial_median_removes_rotationally_symmetric_intensity():
    smooth, spots = _rings_and_spots()
    bg = radial_median(smooth + spots, (31.5, 31.5))
    r = np.hypot(*(np.indices((64, 64)) - 31.5))
    inner = (r > 5) & (r < 30)                    # outside the (masked) beam disc
    # the ring and the beam's tail are removed to a few % of the ring; spots survive
    assert np.abs(smooth - bg)[inner].max() < 0.1 * 50
    assert (smooth + spots - bg)[10, 31] > 0.9 * 40


def test_prepared_pattern_keeps_spots_masks_beam_and_is_unit_norm_before_blur():
    smooth, spots = _rings_and_spots()
    cal = Calibration(0.03)
    p = prepare_pattern(smooth + spots, cal, options=Preparation(beam_radius=5, gamma=1,
                                                                  spot_sigma=0.5))
    assert p[31, 31] == 0                         # beam disc
    assert p[10, 31] > 10 * np.median(p[p > 0])   # a spot
    q = prepare_pattern(smooth + spots, cal, options=Preparation(beam_radius=5,
                                                                  spot_sigma=1e-3))
    assert np.linalg.norm(q) == np.float64(np.linalg.norm(q))
    assert abs(np.linalg.norm(q) - 1) < 1e-3
    assert not np.any(prepare_pattern(smooth, cal, options=Preparation(beam_radius=5)) > 0.2)


def test_polar_transform_angle_convention():
    """Angle measured from +x (columns) towards +y (rows): atan2(y, x)."""
    img = np.zeros((41, 41))
    img[20 + 10, 20] = 1.0                        # +y (row below the centre) at r = 10
    polar = polar_transform(img, (20, 20), n_radii=15, n_angles=360)
    r, t = np.unravel_index(np.argmax(polar), polar.shape)
    assert (r, t) == (10, 90)
