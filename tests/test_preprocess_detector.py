"""Tests of the detector corrections: dark offset (nmf4d.preprocess.dark) and descan
(nmf4d.preprocess.descan), on data with a known offset and a known drift."""
import dask.array as da
import numpy as np
import pytest

from nmf4d.config import AnalysisConfig, PreprocessConfig
from nmf4d.errors import ConfigError
from nmf4d.pipeline import analyse
from nmf4d.preprocess import preprocess
from nmf4d.preprocess.dark import estimate_dark
from nmf4d.preprocess.descan import beam_centres, gather, sample_positions, shift_patterns
from nmf4d.synthetic import make_polycrystal


@pytest.fixture(scope="module")
def scan():
    return make_polycrystal((24, 30), (48, 48), n_grains=3, vacuum=True, dose=3000, seed=4)


def _drifted(data, amplitude=3.0):
    """Each pattern shifted by a linear descan: (dy, dx) = amplitude * (u, -v) / 2."""
    sy, sx = data.shape[:2]
    u, v = np.meshgrid(np.linspace(-1, 1, sy), np.linspace(-1, 1, sx), indexing="ij")
    shifts = np.stack([amplitude / 2 * u, -amplitude / 2 * v], axis=-1).reshape(-1, 2)
    flat = data.reshape(-1, *data.shape[2:]).astype(np.float32)
    return shift_patterns(flat, shifts).reshape(data.shape), shifts


def test_shift_patterns_moves_a_spot_exactly():
    p = np.zeros((1, 20, 20), np.float32)
    p[0, 8, 9] = 1.0
    out = shift_patterns(p, np.array([[2.25, -1.5]]))
    yy, xx = np.indices((20, 20))
    assert out.sum() == pytest.approx(1.0)
    assert (out[0] * yy).sum() == pytest.approx(10.25) and (out[0] * xx).sum() == pytest.approx(7.5)


def test_beam_centres_are_sub_pixel(scan):
    data, _ = scan
    drifted, shifts = _drifted(data)
    flat = drifted.reshape(-1, 48, 48)
    c, strength = beam_centres(flat, (23.5, 23.5), 9.0)
    err = c - (np.array([23.5, 23.5]) + shifts)
    assert np.sqrt(np.mean(err ** 2)) < 0.2 and np.all(strength > 0.2)


def test_descan_is_corrected_and_k_kept(scan):
    data, truth = scan
    drifted, _ = _drifted(data)
    x, rec, _ = preprocess(drifted, PreprocessConfig(centre="auto"))
    c = rec["centre"]
    assert c["applied"] and c["model"] == "quadratic" and 2.0 < c["drift_px"] < 2.3     # corner: 1.5 * sqrt(2)
    flat = np.asarray(x).reshape(-1, 48, 48)
    centres, _ = beam_centres(flat, tuple(c["reference"]), c["radius_px"])
    assert np.max(np.linalg.norm(centres - c["reference"], axis=1)) < 0.3
    lazy, rec_l, _ = preprocess(da.from_array(drifted, chunks=(5, 30, 48, 48)),
                                PreprocessConfig(centre="auto"))
    np.testing.assert_allclose(lazy.compute(), x, rtol=1e-5, atol=1e-4)
    a = analyse(drifted, AnalysisConfig.from_flat(k_range=(2, 8)))
    assert a.k == truth.k_true                              # one component per orientation


def test_no_descan_is_left_alone(scan):
    data, _ = scan
    x, rec, _ = preprocess(data, PreprocessConfig())
    assert rec["centre"]["applied"] is False and rec["centre"]["drift_px"] < 0.5
    np.testing.assert_array_equal(x, data.astype(np.float32))


def test_centre_on_without_a_beam_names_the_option():
    flat = np.random.default_rng(0).poisson(5.0, (6, 6, 16, 16)).astype(np.float32)
    with pytest.raises(ConfigError) as err:
        preprocess(flat, PreprocessConfig(centre="on"))
    assert err.value.field == "preprocessing.centre" and "no direct beam" in err.value.reason
    _, rec, _ = preprocess(flat, PreprocessConfig(centre="auto"))
    assert rec["centre"]["applied"] is False and "no clear direct beam" in rec["centre"]["reason"]


def test_dark_offset_estimated_and_removed(scan):
    data, _ = scan
    rng = np.random.default_rng(1)
    cam = data.astype(np.float32) * 3.0 + 100.0 + rng.normal(0, 4.0, data.shape).astype(np.float32)
    yx = sample_positions(data.shape[:2])
    offset, noise = estimate_dark(gather(cam, yx))
    assert offset == pytest.approx(100.0, abs=2.0) and noise == pytest.approx(4.0, rel=0.2)
    assert estimate_dark(gather(data, yx)) == (0.0, 0.0)         # counts reach 0
    x, rec, _ = preprocess(cam, PreprocessConfig(dark="auto", centre="off"))
    assert rec["dark"]["mode"] == "auto" and rec["dark"]["negative_allowed"]
    assert abs(float(np.median(x)) - 0) < 5                     # the floor is gone
    assert x.min() < 0                              # read noise around 0 is not clipped
    x2, rec2, _ = preprocess(cam, PreprocessConfig(dark=100.0, centre="off"))
    assert rec2["dark"] == {"mode": "value", "offset": 100.0, "negative_allowed": True}
    np.testing.assert_allclose(x2, cam - 100, rtol=1e-6, atol=1e-4)
    a = analyse(cam, AnalysisConfig.from_flat(k=4, dark="auto"))   # negatives accepted
    assert a.k == 4 and a.preprocessing["dark"]["offset"] == pytest.approx(100.0, abs=2.0)


def test_dark_frame_file(scan, tmp_path):
    data, _ = scan
    frame = np.full((48, 48), 7.0, np.float32)
    path = tmp_path / "dark.npy"
    np.save(path, frame)
    x, rec, _ = preprocess(data + 7, PreprocessConfig(dark=str(path), centre="off"))
    np.testing.assert_allclose(x, data, atol=1e-4)
    assert rec["dark"]["mode"] == "file" and rec["dark"]["mean"] == 7.0
    np.save(tmp_path / "wrong.npy", np.zeros((32, 32)))
    np.save(tmp_path / "text.npy", np.array(["a"] * 4).reshape(2, 2))
    for bad, words in ((tmp_path / "wrong.npy", "shape (32, 32)"), (tmp_path / "none.npy",
                                                                    "no such dark frame"),
                       (tmp_path / "text.npy", "")):
        with pytest.raises(ConfigError) as err:
            preprocess(data, PreprocessConfig(dark=str(bad)))
        assert err.value.field == "preprocessing.dark" and words in str(err.value)
    with pytest.raises(ConfigError, match="preprocessing.dark=-3"):
        PreprocessConfig(dark=-3)


def test_cli_names_the_options(tmp_path, capsys):
    from nmf4d.cli import main

    data = np.random.default_rng(0).poisson(2.0, (8, 8, 16, 16)).astype(np.uint16)
    src = tmp_path / "d.npy"
    np.save(src, data)
    rc = main(["run", str(src), "-o", str(tmp_path / "o"), "--dark", "-1"])
    assert rc == 2 and "--dark -1" in capsys.readouterr().err
    rc = main(["run", str(src), "-o", str(tmp_path / "o"), "--center", "on", "--k", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("nmf4d: error: --centre on:")
