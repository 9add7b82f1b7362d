"""The PCA filter and the filter comparison (compare-filters)."""
import json

import h5py
import numpy as np
import pytest

from nmf4d.cli import main
from nmf4d.compare import compare_filters
from nmf4d.errors import InputError
from nmf4d.filters import gap_rank, pca_filter
from nmf4d.preprocess import PreprocessConfig, preprocess, scan_mean_filter
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
    x, rec = preprocess(low_dose[0], PreprocessConfig(filter="pca", filter_options={"rank": 2}))
    assert rec["filter"] == "pca" and rec["filter_info"]["rank"] == 2
    assert x.shape == low_dose[0].shape


def test_compare_filters_library(low_dose):
    data, truth = low_dose
    comp = compare_filters(data, filters=("raw", "pca"), k_range=(2, 6))
    assert comp.filters == ["raw", "pca"]
    assert all(comp.analyses[n].k == truth.k_true for n in comp.filters)
    m = comp.nsd_matrix()
    assert m.shape == (2, truth.k_true) and np.all(np.isfinite(m))
    with pytest.raises(InputError, match="unknown filter"):
        compare_filters(data, filters=("raw", "nope"))


def test_compare_filters_cli(low_dose, tmp_path, capsys):
    data, truth = low_dose
    src = tmp_path / "d.npy"
    np.save(src, data)
    out = tmp_path / "cf"
    rc = main(["compare-filters", str(src), "-o", str(out), "--filters", "raw,mean3,pca",
               "--k-range", "2:6", "-q"])
    assert rc == 0
    with h5py.File(out / "compare.h5") as f:
        assert json.loads(f.attrs["filters"]) == ["raw", "mean3", "pca"]
        assert f["nsd_matrix"].shape[0] == 3
        assert list(f["filters/pca/sweep/k"][()]) == [2, 3, 4, 5, 6]
        assert int(f["chosen_k"][2]) == truth.k_true
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "filter comparison" in html
    assert (out / "figures" / "filters.png").stat().st_size > 1000
    assert main(["compare-filters", str(src), "-o", str(out), "--filters", "raw"]) == 2  # exists


def test_pca_filter_lazy_matches_in_memory():
    """On a dask array the PCA filter streams (stats + sketch passes) and stays lazy, and
    gives the in-memory result."""
    import dask.array as da

    from nmf4d.filters import pca_filter
    from nmf4d.synthetic import make_polycrystal

    data, truth = make_polycrystal((24, 24), (32, 32), n_grains=3, vacuum=True, dose=500,
                                   seed=4)
    ref, info = pca_filter(data, seed=1)
    lazy, info_l = pca_filter(da.from_array(data, chunks=(5, 24, 32, 32)), seed=1)
    assert isinstance(lazy, da.Array) and info_l["lazy"]
    assert info_l["rank"] == info["rank"] == truth.k_true
    out = lazy.compute()
    assert np.abs(out - ref).max() <= 1e-3 * ref.max()
