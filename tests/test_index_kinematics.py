"""nmf4d.index.kinematics: the vectorised spots equal diffsims' calculate_diffraction2d."""
import numpy as np
import pytest

from _index_support import need_index_deps, phase

need_index_deps()

from nmf4d.index.kinematics import excited, reflections  # noqa: E402


@pytest.mark.parametrize("name", ["al_fcc", "ti_hcp"])
@pytest.mark.parametrize("precession", [0.0, 1.0])
def test_spots_equal_diffsims(name, precession):
    from diffsims.generators.simulation_generator import SimulationGenerator
    from orix.quaternion import Rotation

    ph = phase(name)
    rng = np.random.default_rng(3)
    q = rng.normal(size=(4, 4))
    rot = Rotation(q / np.linalg.norm(q, axis=1, keepdims=True))
    gen = SimulationGenerator(200, precession_angle=precession)
    sim = gen.calculate_diffraction2d(ph, rot, reciprocal_radius=1.5,
                                      max_excitation_error=0.02, with_direct_beam=False)
    refl = reflections(ph, reciprocal_radius=1.5)
    xy, inten = excited(refl, rot.to_matrix(), wavelength=gen.wavelength,
                        max_excitation_error=0.02, precession_angle=precession)
    for i in range(rot.size):
        c = sim.coordinates[i]
        ref = np.c_[c.data[:, :2], c.intensity]
        ref = ref[ref[:, 2] > 1e-6 * ref[:, 2].max()]
        mine = np.c_[xy[i], inten[i]]
        mine = mine[mine[:, 2] > 1e-6 * ref[:, 2].max()]
        ref = ref[np.lexsort(ref[:, :2].T)]
        mine = mine[np.lexsort(mine[:, :2].T)]
        assert ref.shape == mine.shape
        np.testing.assert_allclose(mine, ref, rtol=1e-6, atol=1e-9)
