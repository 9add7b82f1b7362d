"""nmf4d.index.store: the orientation/ group of a results file round-trips."""
import h5py
import numpy as np
import pytest

from _index_support import make_result, need_index_deps

need_index_deps()

from nmf4d.errors import InputError  # noqa: E402
from nmf4d.index import (PositionOrientations, read_orientation_group,  # noqa: E402
                         write_orientation_group)

EULER = np.array([[0.3, 0.5, 0.7], [1.2, 0.9, 0.1], [0, 0, 0]])


def test_round_trip(tmp_path):
    res = make_result(EULER, [0, 1, -1], ["al_fcc", "ti_hcp"], background=[2])
    pos = PositionOrientations(phase_index=np.zeros((2, 3), int),
                               euler=np.ones((2, 3, 3)), correlation=np.full((2, 3), 0.7),
                               deviation=np.full((2, 3), 0.1))
    with h5py.File(tmp_path / "results.h5", "w") as f:
        f.create_dataset("labels", data=np.zeros((2, 3), np.int32))
        write_orientation_group(f, res, positions=pos)
        write_orientation_group(f, res, positions=pos)          # replaces, no error
    with h5py.File(tmp_path / "results.h5", "r") as f:
        g = read_orientation_group(f)
        assert f["orientation/euler"].dtype == np.float64
    assert list(g["phase"]) == ["al_fcc", "ti_hcp", "not indexed"]
    np.testing.assert_array_equal(g["phase_index"], [0, 1, -1])
    np.testing.assert_allclose(g["euler"][:2], EULER[:2])
    assert np.isnan(g["euler"][2]).all()
    for key in ("correlation", "reliability", "friedel_correlation"):
        np.testing.assert_allclose(g[key], getattr(res, key))
    assert g["misorientation"].shape == (3, 3)
    assert g["friedel"].dtype == bool and g["friedel_euler"].shape == (3, 3)
    a = g["attrs"]
    assert [p["name"] for p in a["phases"]] == ["al_fcc", "ti_hcp"]
    assert a["phases"][1]["space_group"] == 194
    assert a["calibration"]["reciprocal_scale"] == res.calibration.reciprocal_scale
    assert a["resolution"] == 1.0 and a["scale_searched"] is False
    assert a["background"] == [2]
    np.testing.assert_allclose(g["positions"]["correlation"], 0.7)


def test_errors(tmp_path):
    with h5py.File(tmp_path / "r.h5", "w") as f:
        with pytest.raises(InputError, match="no 'orientation' group"):
            read_orientation_group(f)
    with pytest.raises(InputError, match="open h5py"):
        write_orientation_group("results.h5", make_result(EULER, [0, 0, 0], ["al_fcc"]))
