"""nmf4d.index.templates: orix's sampling, the in-plane convention, full coverage."""
import numpy as np
import pytest

from _index_support import need_index_deps, phase

need_index_deps()

from nmf4d.index import Calibration, build_templates  # noqa: E402
from nmf4d.errors import InputError  # noqa: E402


def test_beam_directions_are_orix_reduced_fundamental_of_the_proper_group():
    from orix.sampling import get_sample_reduced_fundamental

    bank = build_templates([phase("ti_hcp")], Calibration(0.03), pattern_shape=(64, 64),
                           resolution=3.0)
    proper = phase("ti_hcp").point_group.proper_subgroup
    ref = get_sample_reduced_fundamental(3.0, point_group=proper)
    np.testing.assert_allclose(bank.phases[0].rotations.data, ref.data)
    assert bank.n_angles == 120


def test_template_matrices_turn_phi1():
    from orix.quaternion import Rotation

    pt = build_templates([phase("al_fcc")], Calibration(0.03), pattern_shape=(64, 64),
                         resolution=5.0).phases[0]
    idx = np.arange(pt.size)
    psi = np.linspace(0, 6, pt.size)
    m = pt.matrices(idx, psi)
    ref = Rotation.from_euler(np.c_[psi, pt.euler[:, 1:]]).to_matrix()
    clean = pt.euler[:, 1] > 1e-6                # Phi = 0: orix puts the turn into phi1
    np.testing.assert_allclose(m[clean], ref[clean], atol=1e-9)
    beam = np.array([0, 0, 1.0])
    np.testing.assert_allclose(m @ beam, pt.rotations.to_matrix() @ beam, atol=1e-12)


def test_in_plane_angle_rotates_the_pattern_by_plus_psi():
    """Euler (psi, Phi, phi2) gives the spots of (0, Phi, phi2) turned by +psi (diffsims)."""
    from diffsims.generators.simulation_generator import SimulationGenerator
    from orix.quaternion import Rotation

    gen = SimulationGenerator(200)
    base, psi = np.array([0.0, 0.6, 0.3]), 0.7
    turned = base + [psi, 0, 0]
    a = gen.calculate_diffraction2d(phase("al_fcc"), Rotation.from_euler(base[None]),
                                    reciprocal_radius=1.5, with_direct_beam=False).coordinates
    b = gen.calculate_diffraction2d(phase("al_fcc"), Rotation.from_euler(turned[None]),
                                    reciprocal_radius=1.5, with_direct_beam=False).coordinates
    c, s = np.cos(psi), np.sin(psi)
    rot = a.data[:, :2] @ np.array([[c, s], [-s, c]])
    order = lambda v: v[np.lexsort(np.round(v, 6).T)]
    np.testing.assert_allclose(order(rot), order(b.data[:, :2]), atol=1e-9)


def test_directions_times_in_plane_angles_cover_orientation_space():
    """Every random orientation lies within the sampling resolution of a grid point."""
    from orix.quaternion import Orientation

    res = 5.0
    for name in ("al_fcc", "ti_hcp"):
        ph = phase(name)
        bank = build_templates([ph], Calibration(0.03), pattern_shape=(64, 64), resolution=res)
        e = np.repeat(bank.phases[0].euler, bank.n_angles, axis=0)
        e[:, 0] = np.tile(np.arange(bank.n_angles) * np.deg2rad(res), bank.phases[0].size)
        sym = ph.point_group.proper_subgroup
        grid = Orientation.from_euler(e, symmetry=sym)
        rng = np.random.default_rng(0)
        q = rng.normal(size=(40, 4))
        rnd = Orientation(q / np.linalg.norm(q, axis=1, keepdims=True), symmetry=sym)
        nearest = rnd.angle_with_outer(grid, degrees=True).min(axis=1)
        assert nearest.max() < res, (name, nearest.max())


def test_bad_options():
    with pytest.raises(InputError, match="resolution"):
        build_templates([phase("al_fcc")], Calibration(0.03), pattern_shape=(64, 64),
                        resolution=0)
    with pytest.raises(InputError, match="max_excitation_error"):
        build_templates([phase("al_fcc")], Calibration(0.03), pattern_shape=(64, 64),
                        max_excitation_error=-1)
