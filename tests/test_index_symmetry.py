"""nmf4d.index.symmetry: misorientations with crystal symmetry (against orix), merging,
the Friedel partner."""
import numpy as np
import pytest

from _index_support import need_index_deps, phase

need_index_deps()

from nmf4d.errors import InputError  # noqa: E402
from nmf4d.index import friedel_partner, merge_clusters, misorientation_matrix  # noqa: E402
from nmf4d.index.symmetry import misorientation_angle, reduce_euler  # noqa: E402


def _random_euler(n, seed=0):
    from orix.quaternion import Rotation

    q = np.random.default_rng(seed).normal(size=(n, 4))
    return Rotation(q / np.linalg.norm(q, axis=1, keepdims=True)).to_euler()


@pytest.mark.parametrize("name", ["al_fcc", "ti_hcp"])
def test_symmetry_equivalent_rotations_have_zero_misorientation(name):
    from orix.quaternion import Rotation

    ph = phase(name)
    e = _random_euler(1, 1)
    r = Rotation.from_euler(e)
    sym = ph.point_group.proper_subgroup
    equivalents = (Rotation(sym.data) * r).to_euler()      # s * g: same crystal, same pattern
    angles = misorientation_angle(np.repeat(e, len(equivalents), 0), equivalents, ph)
    assert np.all(angles < 1e-4)
    np.testing.assert_allclose(misorientation_angle(reduce_euler(e, ph), e, ph), 0, atol=1e-4)


def test_known_angles():
    al, ti = phase("al_fcc"), phase("ti_hcp")
    e = np.array([[0.3, 0.5, 0.7]])
    turn = lambda deg: (np.array([[np.deg2rad(deg), 0, 0]]) + e)   # about the beam
    assert misorientation_angle(e, turn(10), al)[0] == pytest.approx(10, abs=1e-6)
    base = np.zeros((1, 3))
    assert misorientation_angle(base, np.array([[np.pi / 2, 0, 0]]), al)[0] < 1e-6  # 4-fold
    assert misorientation_angle(base, np.array([[np.pi / 3, 0, 0]]), ti)[0] < 1e-6  # 6-fold
    assert misorientation_angle(base, np.array([[np.pi / 2, 0, 0]]), ti)[0] == \
        pytest.approx(30, abs=1e-6)


def test_matrix_equals_orix_misorientations():
    from orix.quaternion import Orientation

    al = phase("al_fcc")
    e = _random_euler(5, 2)
    got = misorientation_matrix(np.vstack([e, e[:1]]), np.array([0] * 6), [al])
    sym = al.point_group.proper_subgroup
    o = Orientation.from_euler(e, symmetry=sym)
    ii, jj = np.meshgrid(np.arange(5), np.arange(5), indexing="ij")
    m = o[jj.ravel()] - o[ii.ravel()]            # orix: o_j * ~o_i, reduced with symmetry
    np.testing.assert_allclose(got[:5, :5], np.rad2deg(m.angle).reshape(5, 5), atol=1e-4)
    assert got[0, 5] == pytest.approx(0, abs=1e-4)
    np.testing.assert_allclose(got, got.T)


def test_matrix_nan_across_phases_and_for_background():
    e = _random_euler(3, 3)
    m = misorientation_matrix(e, np.array([0, 1, 0]), [phase("al_fcc"), phase("ti_hcp")],
                              exclude=[2])
    assert np.isnan(m[0, 1]) and np.isnan(m[2]).all() and np.isnan(m[:, 2]).all()
    assert m[1, 1] == 0 and m[0, 0] == 0


def test_merge_clusters_single_linkage():
    m = np.array([[0, 1.5, 3.0, np.nan],
                  [1.5, 0, 1.8, np.nan],
                  [3.0, 1.8, 0, np.nan],
                  [np.nan, np.nan, np.nan, 0]])
    assert merge_clusters(m, tolerance=2.0) == [[0, 1, 2], [3]]
    assert merge_clusters(m, tolerance=1.0) == [[0], [1], [2], [3]]
    with pytest.raises(InputError, match="square"):
        merge_clusters(np.zeros((2, 3)))
    with pytest.raises(InputError, match="tolerance"):
        merge_clusters(m, tolerance=-1)


def test_friedel_partner_is_a_half_turn_about_the_beam():
    from orix.quaternion import Rotation

    e = _random_euler(4, 4)
    got = Rotation.from_euler(friedel_partner(e)).to_matrix()
    half = Rotation.from_axes_angles([0, 0, 1], np.pi)
    ref = (Rotation.from_euler(e) * half).to_matrix()
    np.testing.assert_allclose(got, ref, atol=1e-12)
