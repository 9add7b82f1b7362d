"""nmf4d.index.crystalmap: CrystalMap of the scan; orientation.h5 and .ang read back
with orix with the same orientations."""
import os

import numpy as np
import pytest

from _index_support import make_result, need_index_deps

need_index_deps()

from nmf4d.index import crystal_map, save_crystal_map  # noqa: E402

EULER = np.array([[0.3, 0.5, 0.7], [1.2, 0.9, 0.1], [2.0, 1.1, 2.5], [0, 0, 0]])


@pytest.fixture
def setup():
    res = make_result(EULER, [0, 1, 0, -1], ["al_fcc", "ti_hcp"], background=[3])
    labels = np.array([[0, 0, 1, 1, 3], [2, 2, 1, 3, 3], [0, 2, 1, 1, 3]])
    return res, labels


def test_crystal_map_phases_and_not_indexed(setup):
    res, labels = setup
    xmap = crystal_map(res, labels)
    assert xmap.shape == labels.shape
    assert set(xmap.phases.names) == {"al_fcc", "ti_hcp", "not_indexed"}
    np.testing.assert_array_equal(xmap.phase_id.reshape(labels.shape), res.phase_index[labels])
    assert (~xmap.is_indexed).sum() == (labels == 3).sum()
    np.testing.assert_allclose(xmap.prop["cluster"], labels.ravel())


@pytest.mark.parametrize("fmt", ["h5", "ang"])
def test_files_read_back_with_orix(setup, tmp_path, fmt):
    from orix import io as oio
    from orix.quaternion import Orientation

    res, labels = setup
    xmap = crystal_map(res, labels)
    paths = save_crystal_map(xmap, tmp_path, formats=(fmt,))
    assert paths[fmt] == tmp_path / f"orientation.{fmt}"
    assert sorted(os.listdir(tmp_path)) == [f"orientation.{fmt}"]      # no temporary left
    back = oio.load(paths[fmt])
    assert back.shape == xmap.shape
    for name in ("al_fcc", "ti_hcp"):
        ids_a = xmap.phases.id_from_name(name)
        a = xmap[name]
        b = back[name]
        assert a.size == b.size > 0
        sym = xmap.phases[ids_a].point_group.proper_subgroup
        ang = Orientation(a.rotations.data, symmetry=sym).angle_with(
            Orientation(b.rotations.data, symmetry=sym), degrees=True)
        assert np.all(ang < 0.01), (fmt, name, ang.max())
    assert (~back.is_indexed).sum() == (labels == 3).sum()


def test_atomic_replace_and_bad_folder(setup, tmp_path):
    from nmf4d.errors import InputError

    res, labels = setup
    xmap = crystal_map(res, labels)
    target = tmp_path / "orientation.h5"
    target.write_text("old")
    save_crystal_map(xmap, tmp_path, formats=("h5",))
    assert target.read_bytes()[:4] == b"\x89HDF"
    with pytest.raises(InputError, match="does not exist"):
        save_crystal_map(xmap, tmp_path / "missing")
    with pytest.raises(InputError, match="formats"):
        save_crystal_map(xmap, tmp_path, formats=("ctf",))
