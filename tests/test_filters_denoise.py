"""The learned denoiser (conv autoencoder, Noise2Noise neighbour target, Poisson loss)."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the denoise filter needs PyTorch "
                                            '(pip install "nmf4d[denoise]")')

from nmf4d.config import DenoiseConfig, PreprocessConfig  # noqa: E402
from nmf4d.errors import InputError  # noqa: E402
from nmf4d.execution import Progress  # noqa: E402
from nmf4d.filters import FILTERS  # noqa: E402
from nmf4d.filters.denoise import DenoiseModel, denoise_filter, load_model  # noqa: E402
from nmf4d.preprocess import preprocess  # noqa: E402
from nmf4d.synthetic import make_polycrystal  # noqa: E402

OPTS = dict(epochs=10, batch_size=32, latent=16, seed=0, device="cpu", progress=False)


@pytest.fixture(scope="module")
def poly():
    return make_polycrystal(scan_shape=(16, 16), pattern_shape=(32, 32), n_grains=3,
                            dose=300, seed=0, return_clean=True)


@pytest.fixture(scope="module")
def trained(poly, tmp_path_factory):
    data, _ = poly
    path = tmp_path_factory.mktemp("denoise") / "model.pt"
    out, info = denoise_filter(data, save_model=path, **OPTS)
    return out, info, path


def test_training_output_and_info(poly, trained):
    data, _ = poly
    out, info, path = trained
    assert out.shape == data.shape
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out)) and out.min() >= 0
    hist = info["loss_history"]
    assert len(hist) == OPTS["epochs"] and hist[-1] < hist[0]
    assert info["final_loss"] == hist[-1]
    assert info["trained"] is True and info["model_path"] == str(path)
    assert info["method"] == "conv-autoencoder" and "noise2noise" in info["target"]
    assert (info["epochs"], info["latent"], info["seed"], info["device"]) == (10, 16, 0, "cpu")
    json.dumps(info)


def test_denoised_closer_to_truth_than_raw(poly, trained):
    data, truth = poly
    clean = truth.clean.astype(np.float64)
    mse_raw = np.mean((data.astype(np.float64) - clean) ** 2)
    mse_out = np.mean((trained[0].astype(np.float64) - clean) ** 2)
    assert mse_out < 0.6 * mse_raw, (mse_out, mse_raw)
    # Output stays in the input's units (counts): total intensity preserved roughly.
    assert abs(trained[0].sum() / data.sum() - 1) < 0.1


def test_same_seed_same_output(poly, trained):
    data, _ = poly
    out, _ = denoise_filter(data, **OPTS)
    np.testing.assert_array_equal(out, trained[0])


def test_save_load_reuse(poly, trained):
    data, _ = poly
    out0, _, path = trained
    model = load_model(path)
    assert isinstance(model, DenoiseModel) and model.pattern_shape == (32, 32)
    for m in (model, path, str(path)):
        out, info = denoise_filter(data, model=m, device="cpu", progress=False)
        assert info["trained"] is False and info["loss_history"] == []
        assert info["final_loss"] is None and info["model_path"] == str(path)
        np.testing.assert_allclose(out, out0, rtol=1e-6, atol=1e-6)


def test_pattern_shape_mismatch(trained):
    path = trained[2]
    other = np.random.default_rng(0).poisson(1.0, (4, 4, 24, 24))
    with pytest.raises(InputError, match="24x24"):
        denoise_filter(other, model=path, device="cpu", progress=False)
    with pytest.raises(InputError, match="trained on 32x32"):
        load_model(path, pattern_shape=(24, 24))


def test_bad_model_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="cannot read"):
        load_model(bad)


def test_cuda_unavailable(poly):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(InputError, match="no CUDA GPU"):
        denoise_filter(poly[0], device="cuda", progress=False)


def test_bad_inputs(poly):
    with pytest.raises(InputError, match="at least 16x16"):
        denoise_filter(np.ones((4, 4, 8, 8)), progress=False)
    with pytest.raises(InputError, match="epochs"):
        denoise_filter(poly[0], epochs=0, progress=False)
    with pytest.raises(InputError, match="device"):
        denoise_filter(poly[0], device="tpu", progress=False)


def test_dask_input_and_odd_shape(trained, poly):
    da = pytest.importorskip("dask.array")
    data, _ = poly
    x = da.from_array(data, chunks=(5, 16, 32, 32))
    out, info = denoise_filter(x, model=trained[2], device="cpu", progress=False)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, trained[0], rtol=1e-6, atol=1e-6)
    # Training reads the same patterns from dask as from numpy.
    small = dict(epochs=1, batch_size=64, latent=4, max_train=100, device="cpu",
                 progress=False)
    np.testing.assert_array_equal(denoise_filter(x, **small)[0],
                                  denoise_filter(data, **small)[0])
    # Pattern sizes that are not a multiple of the total stride are padded and cropped.
    odd = np.random.default_rng(2).poisson(1.0, (6, 5, 21, 19)).astype(np.uint16)
    out, info = denoise_filter(odd, epochs=1, batch_size=8, latent=4, device="cpu",
                               progress=False)
    assert out.shape == odd.shape and out.dtype == np.float32


def test_through_preprocess(poly, capsys):
    assert "denoise" in FILTERS
    data, _ = poly
    cfg = PreprocessConfig(filter="denoise", denoise=DenoiseConfig(epochs=2, batch_size=32,
                                                                   latent=8))
    x, rec, artifacts = preprocess(data, cfg, device="cpu",
                                   progress=Progress(bars=True, tty_only=False))
    assert x.shape == data.shape and x.dtype == np.float32
    assert rec["filter"] == "denoise"
    assert rec["filter_info"]["epochs"] == 2 and rec["filter_info"]["trained"] is True
    assert rec["filter_info"]["latent"] == 8
    json.dumps(rec)
    assert "denoise" in capsys.readouterr().err    # tqdm bar on stderr
    # the trained model comes back to be saved beside the results
    assert isinstance(artifacts["denoiser"], DenoiseModel)
    assert artifacts["denoiser"].latent == 8
