"""nmf4d.index.core: index_clusters end to end on simulated component patterns."""
import numpy as np
import pytest

from _index_support import (SCALE, SHAPE, angle, bank, need_index_deps, noisy, phase,
                            simulate, write_cif)

need_index_deps()

from nmf4d.errors import InputError  # noqa: E402
from nmf4d.index import Calibration, index_clusters  # noqa: E402

E_TI = np.array([1.1, 0.75, 2.3])
E_AL = np.array([2.0, 1.2, 0.4])


def _film():
    yy, xx = np.indices(SHAPE)
    r = np.hypot(yy - 47.5, xx - 47.5)
    f = np.exp(-r ** 2 / 8) + 0.3 * np.exp(-(r * SCALE - 0.47) ** 2 / (2 * 0.06 ** 2))
    return f / f.sum()


def _error(res, c, truth, name):
    """Error of cluster c, or of its Friedel partner when that is flagged."""
    e = angle(res.euler[c], truth, name)
    return min(e, angle(res.friedel_euler[c], truth, name)) if res.friedel[c] else e


@pytest.fixture(scope="module")
def components():
    rng = np.random.default_rng(0)
    e_ti_equiv = E_TI + [0, 0, np.pi / 3]           # the same Ti orientation (6-fold)
    comps = [simulate("ti_hcp", E_TI), simulate("al_fcc", E_AL),
             simulate("ti_hcp", e_ti_equiv), _film(), _film()]
    return np.stack([noisy(c, 20000, seed=i) for i, c in enumerate(comps)]) + 0 * rng.random()


@pytest.fixture(scope="module")
def result(components):
    return index_clusters(components, phases=[phase("ti_hcp"), phase("al_fcc")],
                          calibration=Calibration(SCALE), background=[3],
                          templates=bank(("ti_hcp", "al_fcc"), 1.0))


def test_phases_orientations_and_background(result):
    assert list(result.phase) == ["ti_hcp", "al_fcc", "ti_hcp", "not indexed", "not indexed"]
    assert list(result.phase_index) == [0, 1, 0, -1, -1]
    assert _error(result, 0, E_TI, "ti_hcp") < 0.3
    assert _error(result, 1, E_AL, "al_fcc") < 0.3
    assert np.isnan(result.euler[3]).all()
    assert result.correlation[4] < result.min_correlation       # film not given: rejected
    assert result.euler.dtype == np.float64 and result.euler.shape == (5, 3)
    assert not result.scale_searched                            # good correlation


def test_misorientation_matrix_and_groups(result):
    m = result.misorientation
    assert m.shape == (5, 5)
    assert m[0, 2] < 0.5                                        # symmetry-equivalent
    assert np.isnan(m[0, 1]) and np.isnan(m[3]).all()
    assert [0, 2] in result.groups and [1] in result.groups


def test_spots_of_the_solution(result):
    s = result.spots[0]
    assert s.shape[1] == 6 and len(s) > 5
    assert (s[:, 0] >= 0).all() and (s[:, 0] <= SHAPE[0] - 1).all()
    assert result.spots[3] is None


def test_scale_search_finds_a_miscalibrated_scale(components):
    b = bank(("ti_hcp",), 1.0)
    res = index_clusters(components[:1], phases=[phase("ti_hcp")],
                         calibration=Calibration(SCALE * 1.06), templates=b,
                         scale_search=True, scale_range=0.1, scale_step=0.02)
    assert res.scale_searched
    assert res.calibration.reciprocal_scale == pytest.approx(SCALE, rel=0.01)
    assert _error(res, 0, E_TI, "ti_hcp") < 0.5
    assert len(res.scale_scores) >= 11


def test_bad_inputs(tmp_path, components):
    cif = write_cif(tmp_path, "al_fcc")
    with pytest.raises(InputError, match="components must be 3D"):
        index_clusters(np.zeros((2, 3, 4, 5)), phases=[cif], calibration=Calibration(SCALE))
    with pytest.raises(InputError, match="background index 9"):
        index_clusters(components, phases=[cif], calibration=Calibration(SCALE),
                       background=[9])
    with pytest.raises(InputError, match="calibration"):
        index_clusters(components, phases=[cif], calibration=0.03)
    with pytest.raises(InputError, match="scale_search"):
        index_clusters(components, phases=[cif], calibration=Calibration(SCALE),
                       scale_search="yes")
    with pytest.raises(InputError, match="reciprocal_scale"):
        index_clusters(components, phases=[cif], calibration=Calibration(-1))


def test_missing_extra_names_it(monkeypatch):
    import builtins

    from nmf4d.index import _deps

    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.split(".")[0] in ("diffsims", "orix"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(InputError, match=r'pip install "nmf4d\[index\]"'):
        _deps.require()


def test_worker_threads_give_the_same_result(components, result):
    again = index_clusters(components, phases=[phase("ti_hcp"), phase("al_fcc")],
                           calibration=Calibration(SCALE), background=[3], workers=1,
                           templates=bank(("ti_hcp", "al_fcc"), 1.0))
    np.testing.assert_array_equal(again.phase_index, result.phase_index)
    np.testing.assert_allclose(again.euler, result.euler, equal_nan=True)
    np.testing.assert_allclose(again.reliability, result.reliability)
