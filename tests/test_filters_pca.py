"""The PCA filter (nmf4d.filters.pca): rank, denoising, streaming."""
import numpy as np
import pytest

from nmf4d.config import PreprocessConfig
from nmf4d.errors import InputError
from nmf4d.filters.pca import gap_rank, pca_filter
from nmf4d.filters.scan import scan_mean_filter
from nmf4d.preprocess import preprocess
from nmf4d.synthetic import make_polycrystal


@pytest.fixture(scope="module")
def low_dose():
    return make_polycrystal((24, 24), (32, 32), n_grains=3, dose=300, seed=2, return_clean=True)


def test_pca_rank_and_denoising(low_dose):
    data, truth = low_dose
    out, info = pca_filter(data)
    assert out.shape == data.shape and out.dtype == np.float32 and out.min() >= 0
    assert info["rank"] == truth.k_true                       # signal rank of the scan
    clean = truth.clean
    mse = {n: float(np.mean((x - clean) ** 2)) for n, x in
           [("raw", data.astype(np.float32)), ("mean3", scan_mean_filter(data.astype(np.float32))),
            ("pca", out)]}
    assert mse["pca"] < mse["mean3"] < mse["raw"], mse


def test_pca_fixed_rank_is_exact_for_low_rank_data():
    rng = np.random.default_rng(0)
    W, H = rng.random((36, 3)), rng.random((3, 64))
    data = (W @ H).reshape(6, 6, 8, 8).astype(np.float32)
    out, info = pca_filter(data, rank=3)
    np.testing.assert_allclose(out, data, rtol=1e-3, atol=1e-4)
    assert info["rank"] == 3


def test_gap_rank():
    S = np.r_[[40.0, 20, 18, 15], np.linspace(7.0, 6.0, 30)]
    assert gap_rank(S) == (4, 7.0)


@pytest.mark.parametrize("rank", [0, -1, 2.5, "x", 10_000])
def test_pca_rank_errors(low_dose, rank):
    with pytest.raises(InputError, match="rank"):
        pca_filter(low_dose[0], rank=rank)


def test_pca_through_preprocess(low_dose):
    x, rec, _ = preprocess(low_dose[0], PreprocessConfig(filter="pca", pca_rank=2), seed=3)
    assert rec["filter"] == "pca" and rec["filter_info"]["rank"] == 2
    assert rec["filter_info"]["seed"] == 3
    assert x.shape == low_dose[0].shape


def test_pca_filter_lazy_matches_in_memory():
    """On a dask array the PCA filter streams (stats + sketch passes) and stays lazy, and
    gives the in-memory result."""
    import dask.array as da

    data, truth = make_polycrystal((24, 24), (32, 32), n_grains=3, vacuum=True, dose=500,
                                   seed=4)
    ref, info = pca_filter(data, seed=1)
    lazy, info_l = pca_filter(da.from_array(data, chunks=(5, 24, 32, 32)), seed=1)
    assert isinstance(lazy, da.Array) and info_l["lazy"]
    assert info_l["rank"] == info["rank"] == truth.k_true
    out = lazy.compute()
    assert np.abs(out - ref).max() <= 1e-3 * ref.max()
