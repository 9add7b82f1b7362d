"""Tests of nmf4d.synthetic: the ground truth is self-consistent and the noise is Poisson."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import cosine_matrix
from nmf4d.errors import InputError
from nmf4d.synthetic import make_polycrystal, write_polycrystal_zarr

SCAN, PAT = (28, 30), (36, 32)          # all four sizes differ, so a transpose would show


@pytest.fixture(scope="module", params=[(4, True), (3, False)], ids=["vacuum", "no-vacuum"])
def case(request):
    n_grains, vacuum = request.param
    data, truth = make_polycrystal(scan_shape=SCAN, pattern_shape=PAT, n_grains=n_grains,
                                   vacuum=vacuum, dose=1500.0, seed=11, return_clean=True)
    return n_grains, vacuum, data, truth


def test_shapes_and_dtypes(case):
    n_grains, vacuum, data, truth = case
    k = n_grains + int(vacuum)
    assert truth.k_true == k
    assert data.shape == (*SCAN, *PAT)
    assert data.dtype == np.uint16
    assert truth.labels.shape == truth.secondary.shape == truth.ratio.shape == SCAN
    assert truth.labels.dtype == np.int32 and truth.secondary.dtype == np.int32
    assert truth.ratio.dtype == np.float32
    assert truth.patterns.shape == (k, *PAT) and truth.patterns.dtype == np.float32
    assert truth.fractions.shape == (k, *SCAN) and truth.fractions.dtype == np.float32
    assert truth.clean.shape == data.shape and truth.clean.dtype == np.float32
    assert truth.vacuum_index == (n_grains if vacuum else -1)
    assert set(np.unique(truth.labels).tolist()) == set(range(k))   # every pattern present


def test_labels_secondary_ratio_consistent_with_fractions(case):
    _, _, _, truth = case
    fr = truth.fractions.astype(np.float64)
    top = np.take_along_axis(fr, truth.labels[None].astype(np.int64), 0)[0]
    assert np.all(top >= fr.max(axis=0) * (1 - 1e-6))                # labels = argmax
    srt = np.sort(fr, axis=0)
    first, second = srt[-1], srt[-2]
    expected = np.where(first > 0, second / np.where(first > 0, first, 1), 0.0)
    np.testing.assert_allclose(truth.ratio, expected, rtol=1e-5, atol=1e-7)
    assert truth.ratio.min() >= 0 and truth.ratio.max() <= 1
    has2 = truth.ratio > 0
    np.testing.assert_array_equal(truth.secondary >= 0, has2)
    sec = np.take_along_axis(fr, np.maximum(truth.secondary, 0)[None].astype(np.int64), 0)[0]
    np.testing.assert_allclose(sec[has2], second[has2], rtol=1e-5)
    assert np.all(truth.secondary[has2] != truth.labels[has2])
    np.testing.assert_array_equal(truth.in_band(), has2)
    np.testing.assert_array_equal(truth.overlap_mask(0.8), truth.ratio >= 0.8)
    assert has2.any() and (truth.ratio >= 0.75).any()                 # bands exist
    assert (~has2).sum() > 0.5 * has2.size                            # mostly pure grains
    assert np.count_nonzero(fr > 0, axis=0).max() <= 2                # at most two grains mix


def test_vacuum_region(case):
    n_grains, vacuum, _, truth = case
    if not vacuum:
        assert truth.vacuum_index == -1
        return
    vac = truth.labels == truth.vacuum_index
    assert 0.05 < vac.mean() < 0.3                                    # ~15 % by default
    others = np.delete(truth.fractions, truth.vacuum_index, axis=0)
    assert np.all(others[:, vac] == 0) and np.all(truth.ratio[vac] == 0)
    assert np.all(truth.fractions[truth.vacuum_index][~vac] == 0)


def test_clean_is_fractions_times_patterns(case):
    _, _, _, truth = case
    expected = np.einsum("cyx,cij->yxij", truth.fractions.astype(np.float64),
                         truth.patterns.astype(np.float64))
    np.testing.assert_allclose(truth.clean, expected, rtol=1e-5, atol=1e-5 * expected.max())


def test_patterns_normalised_and_distinct(case):
    _, _, _, truth = case
    np.testing.assert_allclose(truth.patterns.sum(axis=(1, 2), dtype=np.float64), 1.0, rtol=1e-5)
    assert truth.patterns.min() >= 0
    C = cosine_matrix(truth.patterns, truth.patterns)
    np.fill_diagonal(C, 0)
    assert C.max() < 0.99


def test_dose_and_thickness(case):
    _, _, _, truth = case
    tv = 0.3                                                          # default variation
    per_pattern = truth.clean.sum(axis=(2, 3), dtype=np.float64)
    assert per_pattern.min() >= 1500 * (1 - tv) * (1 - 1e-4)
    assert per_pattern.max() <= 1500 * (1 + tv) * (1 + 1e-4)
    assert per_pattern.std() > 0.02 * per_pattern.mean()              # thickness varies


def test_poisson_noise(case):
    _, _, data, truth = case
    d = data.astype(np.float64)
    c = truth.clean.astype(np.float64)
    assert not np.array_equal(d, np.rint(c))                          # noise was added
    assert d.sum() == pytest.approx(c.sum(), rel=0.01)
    # mean pattern over the scan matches the clean one (a few % in the bright pixels)
    md, mc = d.mean(axis=(0, 1)), c.mean(axis=(0, 1))
    bright = mc > 0.1 * mc.max()
    np.testing.assert_allclose(md[bright], mc[bright], rtol=0.05)
    # Poisson: variance equals the mean
    assert ((d - c) ** 2).mean() / c.mean() == pytest.approx(1.0, rel=0.05)
    assert np.all(d == np.rint(d)) and d.min() >= 0


def test_noise_free_data_is_clean():
    data, truth = make_polycrystal(scan_shape=(20, 20), pattern_shape=(32, 32), n_grains=3,
                                   dose=None, seed=4, return_clean=True)
    assert data.dtype == np.float32
    np.testing.assert_array_equal(data, truth.clean)
    # without a dose the fractions are in units of the pattern sum (1 per position ~ thickness)
    np.testing.assert_allclose(data.sum(axis=(2, 3)), truth.fractions.sum(axis=0), rtol=1e-4)
    d64, _ = make_polycrystal(scan_shape=(20, 20), pattern_shape=(32, 32), n_grains=3,
                              dose=None, seed=4, dtype=np.float64)
    assert d64.dtype == np.float64
    np.testing.assert_allclose(d64, data, rtol=1e-6)


def test_clean_only_when_asked():
    _, truth = make_polycrystal(scan_shape=(20, 20), pattern_shape=(32, 32), n_grains=2, seed=0)
    assert truth.clean is None


def test_seeded_reproducibility():
    kw = dict(scan_shape=(24, 24), pattern_shape=(32, 32), n_grains=3, dose=800.0)
    a, ta = make_polycrystal(seed=5, **kw)
    b, tb = make_polycrystal(seed=5, **kw)
    c, tc = make_polycrystal(seed=6, **kw)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ta.labels, tb.labels)
    np.testing.assert_array_equal(ta.patterns, tb.patterns)
    assert not np.array_equal(a, c)
    assert not np.array_equal(ta.patterns, tc.patterns)


def test_sharp_boundaries_and_options():
    _, truth = make_polycrystal(scan_shape=(24, 24), pattern_shape=(32, 32), n_grains=3,
                                vacuum=False, overlap_width=0, thickness_variation=0.0,
                                dose=None, seed=2)
    assert not truth.in_band().any()
    np.testing.assert_allclose(truth.fractions.sum(axis=0), 1.0, rtol=1e-6)   # no thickness
    data, truth = make_polycrystal(scan_shape=(20, 20), pattern_shape=(32, 32), n_grains=1,
                                   vacuum=False, seed=0)
    assert truth.k_true == 1 and np.all(truth.labels == 0) and np.all(truth.ratio == 0)
    assert np.all(truth.secondary == -1)
    big, _ = make_polycrystal(scan_shape=(8, 8), pattern_shape=(16, 16), n_grains=2,
                              dose=1e6, seed=0)
    assert big.dtype == np.uint32                       # counts above 65535 do not wrap


@pytest.mark.parametrize("kw", [dict(n_grains=0), dict(n_grains=-2), dict(dose=0),
                                dict(dose=-10.0), dict(thickness_variation=1.0),
                                dict(thickness_variation=-0.1)])
def test_errors(kw):
    with pytest.raises(InputError):
        make_polycrystal(scan_shape=(16, 16), pattern_shape=(16, 16), **kw)


# ---------------------------------------------------------------- out-of-core zarr writer
ZSCAN, ZPAT, ZCHUNKS = (24, 20), (32, 32), (5, 7)     # chunks do not divide the scan
ZOPTS = dict(n_grains=3, vacuum=True, dose=1500.0, seed=7)


@pytest.fixture(scope="module")
def zcase(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zarr")
    path = folder / "scan.zarr"
    truth = write_polycrystal_zarr(path, ZSCAN, ZPAT, chunks=ZCHUNKS, **ZOPTS)
    return folder, path, truth


def _read(path):
    import zarr
    return zarr.open_array(str(path), mode="r")


def test_zarr_shape_chunks_dtype_attrs(zcase):
    folder, path, truth = zcase
    z = _read(path)
    assert z.shape == (*ZSCAN, *ZPAT)
    assert tuple(z.chunks) == (*ZCHUNKS, *ZPAT)
    assert z.dtype == np.float32
    assert z.attrs["k_true"] == truth.k_true == 4
    assert z.attrs["vacuum_index"] == truth.vacuum_index == 3
    assert z.attrs["seed"] == 7 and z.attrs["dose"] == 1500.0 and z.attrs["n_grains"] == 3
    assert z.attrs["chunks"] == list(ZCHUNKS)
    assert sorted(p.name for p in folder.iterdir()) == ["scan.zarr"]   # no temporary left
    from nmf4d.io import open_dataset                                   # the pipeline reads it
    assert open_dataset(path).data.shape == (*ZSCAN, *ZPAT)


def test_zarr_truth_equals_make_polycrystal(zcase):
    _, _, truth = zcase
    _, ref = make_polycrystal(ZSCAN, ZPAT, **ZOPTS)
    for name in ("labels", "secondary", "ratio", "patterns", "fractions"):
        np.testing.assert_array_equal(getattr(truth, name), getattr(ref, name), err_msg=name)
    assert truth.k_true == ref.k_true and truth.vacuum_index == ref.vacuum_index
    assert truth.clean is None


def test_zarr_counts_are_poisson_around_truth(zcase):
    _, path, truth = zcase
    d = _read(path)[...].astype(np.float64)
    fr, pats = truth.fractions.astype(np.float64), truth.patterns.astype(np.float64)
    assert np.all(d == np.rint(d)) and d.min() >= 0
    # per-position mean intensity vs the expected one: z-scores of the position totals
    lam = fr.sum(axis=0)                                                # patterns sum to 1
    z = (d.sum(axis=(2, 3)) - lam) / np.sqrt(lam)
    n = z.size
    assert np.abs(z).max() < 5.5
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs((z ** 2).mean() - 1) < 4 * np.sqrt(2 / n)
    np.testing.assert_allclose(d.mean(axis=(2, 3)), lam / np.prod(ZPAT), rtol=6 / np.sqrt(lam.min()))
    # pixel by pixel: Poisson variance equals the mean
    c = np.einsum("cyx,cij->yxij", fr, pats)
    assert not np.array_equal(d, np.rint(c))
    assert ((d - c) ** 2).mean() / c.mean() == pytest.approx(1.0, rel=0.05)


def test_zarr_deterministic(zcase, tmp_path):
    _, path, truth = zcase
    ref = _read(path)[...]
    write_polycrystal_zarr(tmp_path / "a.zarr", ZSCAN, ZPAT, chunks=ZCHUNKS, **ZOPTS)
    np.testing.assert_array_equal(_read(tmp_path / "a.zarr")[...], ref)
    # the noise follows the chunking, the layout does not
    other = write_polycrystal_zarr(tmp_path / "c.zarr", ZSCAN, ZPAT, chunks=(24, 20), **ZOPTS)
    np.testing.assert_array_equal(other.fractions, truth.fractions)
    write_polycrystal_zarr(tmp_path / "b.zarr", ZSCAN, ZPAT, chunks=ZCHUNKS,
                           **{**ZOPTS, "seed": 8})
    assert not np.array_equal(_read(tmp_path / "b.zarr")[...], ref)


def test_zarr_refuses_existing_and_overwrites(tmp_path):
    path = tmp_path / "s.zarr"
    kw = dict(scan_shape=(12, 12), pattern_shape=(16, 16), chunks=(4, 4), n_grains=2)
    write_polycrystal_zarr(path, seed=1, **kw)
    first = _read(path)[...]
    with pytest.raises(InputError, match="s.zarr"):
        write_polycrystal_zarr(path, seed=2, **kw)
    np.testing.assert_array_equal(_read(path)[...], first)              # untouched
    (tmp_path / "f.zarr").write_text("x")
    with pytest.raises(InputError, match="f.zarr"):
        write_polycrystal_zarr(tmp_path / "f.zarr", seed=2, **kw)
    truth = write_polycrystal_zarr(path, seed=2, overwrite=True, **kw)
    second = _read(path)[...]
    assert not np.array_equal(second, first)
    assert _read(path).attrs["seed"] == 2 and truth.k_true == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.zarr", "s.zarr"]


def test_zarr_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(InputError, match="uint8"):                      # counts overflow
        write_polycrystal_zarr(tmp_path / "x.zarr", (8, 8), (8, 8), chunks=(4, 4),
                               n_grains=2, dose=1e5, dtype="uint8")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError):
        write_polycrystal_zarr(tmp_path / "x.zarr", (8, 8), (8, 8), chunks=(0, 4))
    with pytest.raises(InputError):
        write_polycrystal_zarr(tmp_path / "x.zarr", (8, 8), (8, 8), n_grains=0)
    assert list(tmp_path.iterdir()) == []


def test_zarr_noise_free_and_integer_dtype(tmp_path):
    kw = dict(scan_shape=(10, 9), pattern_shape=(16, 16), chunks=(3, 4), n_grains=2, seed=3)
    truth = write_polycrystal_zarr(tmp_path / "c.zarr", dose=None, **kw)
    clean = np.einsum("cyx,cij->yxij", truth.fractions.astype(np.float64),
                      truth.patterns.astype(np.float64))
    np.testing.assert_allclose(_read(tmp_path / "c.zarr")[...], clean, rtol=1e-5, atol=1e-9)
    write_polycrystal_zarr(tmp_path / "u.zarr", dose=500.0, dtype="uint16", **kw)
    u = _read(tmp_path / "u.zarr")
    assert u.dtype == np.uint16 and _read(tmp_path / "u.zarr").attrs["dose"] == 500.0
