"""The paper's filter comparison (nmf4d.filter_comparison and ``nmf4d compare-filters``)."""
import json

import h5py
import numpy as np
import pytest

from nmf4d.cli import main
from nmf4d.config import AnalysisConfig
from nmf4d.errors import InputError
from nmf4d.filter_comparison import compare_filters
from nmf4d.synthetic import make_polycrystal


@pytest.fixture(scope="module")
def low_dose():
    return make_polycrystal((24, 24), (32, 32), n_grains=3, dose=300, seed=2, return_clean=True)


def test_compare_filters_library(low_dose):
    data, truth = low_dose
    comp = compare_filters(data, AnalysisConfig.from_flat(k_range=(2, 6)), filters=("raw", "pca"))
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


def test_compare_filters_skips_a_missing_extra(low_dose, monkeypatch):
    """A filter whose optional dependency is missing is skipped with the reason, by the
    error's type (MissingDependencyError), not by its text."""
    import nmf4d.filters.denoise as dn
    from nmf4d.errors import MissingDependencyError

    def no_torch():
        raise MissingDependencyError("the denoise filter", "PyTorch", "denoise")
    monkeypatch.setattr(dn, "_torch", no_torch)
    comp = compare_filters(low_dose[0], AnalysisConfig.from_flat(k=3), filters=("raw", "denoise"))
    assert comp.filters == ["raw"]
    assert comp.skipped == {"denoise": 'the denoise filter needs PyTorch: pip install "nmf4d[denoise]"'}
