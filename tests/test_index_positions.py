"""nmf4d.index.positions: per-position refinement streams row blocks and recovers an
orientation gradient inside a grain."""
import numpy as np
import pytest

from _index_support import SCALE, angle, bank, need_index_deps, noisy, phase, simulate

need_index_deps()

from nmf4d.errors import InputError  # noqa: E402
from nmf4d.index import Calibration, index_clusters, refine_positions  # noqa: E402

BASE = np.array([1.1, 0.75, 2.3])


def _rotated(deg):
    """BASE turned by ``deg`` about the sample x axis (a bend of the grain)."""
    from orix.quaternion import Rotation

    r = Rotation.from_euler(BASE[None]) * Rotation.from_axes_angles([1, 0, 0], np.deg2rad(deg))
    return r.to_euler()[0]


@pytest.fixture(scope="module")
def scan():
    sy, sx = 3, 4
    bend = np.linspace(-0.8, 0.8, sx)
    truth = np.array([[_rotated(d) for d in bend] for _ in range(sy)])
    data = np.stack([np.stack([noisy(simulate("ti_hcp", truth[y, x]), 40000, seed=y * sx + x)
                               for x in range(sx)]) for y in range(sy)])
    return data, truth, bend


def test_gradient_recovered_streaming_dask_blocks(scan):
    da = pytest.importorskip("dask.array")
    data, truth, bend = scan
    comp = data.mean(axis=(0, 1))[None]
    res = index_clusters(comp, phases=[phase("ti_hcp")], calibration=Calibration(SCALE),
                         templates=bank(("ti_hcp",), 1.0))
    calls = []
    pos = refine_positions(da.from_array(data, chunks=(1, 4, 96, 96)),
                           np.zeros(data.shape[:2], int), res, block_rows=1,
                           progress=lambda done, total: calls.append(done))
    assert calls == [1, 2, 3]                                  # one row block at a time
    assert pos.euler.shape == data.shape[:2] + (3,)
    assert angle(res.euler[0], BASE, "ti_hcp") < 0.3           # (not its Friedel twin)
    errs = [angle(pos.euler[y, x], truth[y, x], "ti_hcp")
            for y in range(data.shape[0]) for x in range(data.shape[1])]
    assert max(errs) < 0.25                                     # each position its own
    # the deviation from the cluster's orientation follows the bend
    assert np.allclose(pos.deviation.mean(axis=0), np.abs(bend), atol=0.3)


def test_shape_errors(scan):
    data, _, _ = scan
    res = index_clusters(data.mean(axis=(0, 1))[None], phases=[phase("ti_hcp")],
                         calibration=Calibration(SCALE), templates=bank(("ti_hcp",), 1.0))
    with pytest.raises(InputError, match="labels have shape"):
        refine_positions(data, np.zeros((2, 2), int), res)
    with pytest.raises(InputError, match="4D"):
        refine_positions(data[0], np.zeros((3, 4), int), res)
