"""nmf4d.index.figures: Agg figures without pyplot state; the table data."""
import numpy as np
import pytest

from _index_support import make_result, need_index_deps

need_index_deps()

from nmf4d.index import (cluster_patterns_figure, misorientation_table,  # noqa: E402
                         orientation_map_figure, phase_map_figure)
from nmf4d.index.figures import ipf_colours  # noqa: E402

EULER = np.array([[0.3, 0.5, 0.7], [1.2, 0.9, 0.1], [2.0, 1.1, 2.5], [0, 0, 0]])
LABELS = np.array([[0, 0, 1, 1, 3], [2, 2, 1, 3, 3]])


@pytest.fixture
def res():
    r = make_result(EULER, [0, 1, 0, -1], ["al_fcc", "ti_hcp"], background=[3])
    r.spots[0] = np.array([[10.0, 12.0, 1.0, 1, 1, 1], [20.0, 5.0, 0.4, 2, 0, 0]])
    return r


def test_figures_render_without_pyplot(res, tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    al_only = np.where(LABELS == 1, 0, LABELS)        # one colour key is enough here
    for fig in (orientation_map_figure(res, al_only), phase_map_figure(res, LABELS),
                cluster_patterns_figure(res)):
        fig.savefig(tmp_path / "f.png", dpi=40)
        assert (tmp_path / "f.png").stat().st_size > 500
    assert plt.get_fignums() == before


def test_ipf_colours_are_orix_colours(res):
    from orix.plot import IPFColorKeyTSL
    from orix.quaternion import Orientation
    from orix.vector import Vector3d

    rgb = ipf_colours(res, LABELS)
    assert rgb.shape == LABELS.shape + (3,)
    assert np.all(rgb[LABELS == 3] == 0)
    al = res.phases[0]
    ref = IPFColorKeyTSL(al.point_group.laue, direction=Vector3d.zvector()).orientation2color(
        Orientation.from_euler(res.euler[:1], symmetry=al.point_group.proper_subgroup))
    np.testing.assert_allclose(rgb[0, 0], ref.reshape(3))


def test_misorientation_table(res):
    t = misorientation_table(res)
    assert t["columns"][:2] == ["cluster", "phase"] and len(t["columns"]) == 6
    assert t["rows"][0][:3] == ["0", "al_fcc", "0.0"]
    assert t["rows"][0][3] == ""                                # other phase
    assert t["values"].shape == (4, 4)
