"""nmf4d.index.refine: rotation vectors in orix's convention; local refinement."""
import numpy as np

from _index_support import bank, need_index_deps, simulate

need_index_deps()

from nmf4d.index import Calibration, Preparation, prepare_pattern  # noqa: E402
from nmf4d.index.refine import rotvec_matrices  # noqa: E402
from nmf4d.index.search import _euler_of_matrix, _matrix_of_euler, geometry  # noqa: E402
from nmf4d.index.refine import refine  # noqa: E402


def test_rotvec_matrices_match_orix():
    from orix.quaternion import Rotation

    rng = np.random.default_rng(1)
    v = rng.normal(size=(6, 3)) * 0.3
    ang = np.linalg.norm(v, axis=1)
    ref = Rotation.from_axes_angles(v / ang[:, None], ang).to_matrix()
    np.testing.assert_allclose(rotvec_matrices(v), ref, atol=1e-12)
    np.testing.assert_allclose(rotvec_matrices(np.zeros((1, 3)))[0], np.eye(3))


def test_refinement_recovers_a_rotation_from_a_degree_away():
    from _index_support import SCALE, angle

    truth = np.array([0.4, 0.9, 0.2])
    cal = Calibration(SCALE)
    prep = prepare_pattern(simulate("ti_hcp", truth), cal, options=Preparation(beam_radius=5))
    b = bank(("ti_hcp",), 1.0)
    geo = geometry(prep, cal, b, scale=SCALE, gamma=0.5, sigma=1.0)
    start = _matrix_of_euler(truth) @ rotvec_matrices(np.deg2rad([[0.6, -0.5, 0.4]]))[0]
    assert angle(_euler_of_matrix(start), truth, "ti_hcp") > 0.8
    m, s = refine(b.phases[0].reflections, start, geo, span=1.0)
    assert angle(_euler_of_matrix(m), truth, "ti_hcp") < 0.15
