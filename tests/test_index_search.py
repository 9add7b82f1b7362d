"""nmf4d.index.search: a known rotation is recovered; the Friedel ambiguity is flagged
where it exists and not where the half turn about the beam is a crystal symmetry."""
import numpy as np
import pytest

from _index_support import SCALE, angle, bank, need_index_deps, noisy, simulate

need_index_deps()

from nmf4d.index import Calibration, Preparation, prepare_pattern  # noqa: E402
from nmf4d.index.search import index_pattern  # noqa: E402

CAL = Calibration(SCALE)
TRUTH = np.array([1.1, 0.75, 2.3])        # Ti, a tilted orientation, about 15 spots


def _index(pattern, names=("ti_hcp",)):
    b = bank(tuple(names), 1.0)
    br = 0.5 * b.innermost_radius()
    prep = prepare_pattern(pattern, CAL, options=Preparation(beam_radius=br))
    return b, index_pattern(prep, b, scale=SCALE, gamma=0.5, sigma=1.0)


def _error(m, truth, name):
    """Error of the solution, or of its Friedel partner when that is flagged."""
    e = angle(m.euler, truth, name)
    return min(e, angle(m.friedel_euler, truth, name)) if m.friedel else e


def test_noise_free_pattern_recovers_the_rotation_well_below_the_sampling():
    b, m = _index(simulate("ti_hcp", TRUTH))
    assert b.phases[m.phase].phase.name == "ti_hcp"
    assert _error(m, TRUTH, "ti_hcp") < 0.3          # sampling 1 degree
    assert m.correlation > 0.6 and 0 <= m.reliability <= 1


def test_noisy_pattern_and_the_right_phase_among_two():
    truth = np.array([2.0, 1.2, 0.4])
    pattern = noisy(simulate("al_fcc", truth, precession=0.0), dose=3000, seed=2)
    b, m = _index(pattern, ("ti_hcp", "al_fcc"))
    assert b.phases[m.phase].phase.name == "al_fcc"
    assert _error(m, truth, "al_fcc") < 1.0


def test_friedel_flagged_at_cubic_111_where_the_half_turn_is_no_symmetry():
    # beam along [111]: a 3-fold axis; the kinematic pattern looks 6-fold (Friedel)
    e111 = np.array([0.3, np.arccos(1 / np.sqrt(3)), np.pi / 4])
    b, m = _index(simulate("al_fcc", e111), ("al_fcc",))
    assert m.friedel
    assert m.friedel_angle > 30                        # a genuinely different orientation
    assert m.friedel_correlation > 0.9 * m.correlation
    assert min(angle(m.euler, e111, "al_fcc"), angle(m.friedel_euler, e111, "al_fcc")) < 0.5


@pytest.mark.parametrize("name, euler", [("ti_hcp", [0.4, 0.0, 0.0]),        # [0001]: 6-fold
                                         ("al_fcc", [0.2, 0.0, 0.0])])       # [001]: 4-fold
def test_friedel_not_flagged_where_the_half_turn_is_a_symmetry(name, euler):
    b, m = _index(simulate(name, np.array(euler)), (name,))
    assert not m.friedel
    assert m.friedel_angle < 2.0
    assert angle(m.euler, np.array(euler), name) < 0.5
