"""Tests for nmf4d.preprocess: each step against an explicit numpy reference, for numpy input
and for dask input with uneven scan chunks, and the chain of steps of a PreprocessConfig."""
import json

import dask.array as da
import numpy as np
import pytest

from helpers import CHUNKS, assert_input_error, data, run_both  # noqa: F401
from nmf4d.errors import InputError
from nmf4d import preprocess as pp
from nmf4d.config import PreprocessConfig
from nmf4d.errors import ConfigError
from nmf4d.filters import FILTERS, register_filter
from test_filters_scan import ref_scan_mean


def ref_bin(a, fy, fx, reduce):
    ny, nx = a.shape[2] // fy, a.shape[3] // fx
    out = np.zeros(a.shape[:2] + (ny, nx))
    for i in range(ny):
        for j in range(nx):
            blk = a[:, :, i * fy:(i + 1) * fy, j * fx:(j + 1) * fx].astype(np.float64)
            out[:, :, i, j] = blk.sum(axis=(2, 3)) if reduce == "sum" else blk.mean(axis=(2, 3))
    return out


@pytest.mark.parametrize("factor", [1, 2, 3, (2, 5), (10, 11)])
@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_bin_patterns(data, factor, reduce):
    out = run_both(pp.bin_patterns, data, factor, reduce=reduce)
    fy, fx = (factor, factor) if np.isscalar(factor) else factor
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref_bin(data, fy, fx, reduce), rtol=1e-6)


def test_bin_sum_preserves_total():
    counts = np.random.default_rng(1).poisson(3.0, (4, 5, 12, 8)).astype(np.uint16)
    out = run_both(pp.bin_patterns, counts, 4)
    assert out.shape == (4, 5, 3, 2)
    assert out.dtype == np.float32
    assert out.sum(dtype=np.float64) == counts.sum(dtype=np.float64)
    assert pp.bin_patterns(counts.astype(np.float64), 2).dtype == np.float64


def test_bin_detector_chunked(data):
    d = da.from_array(data, chunks=(3, 4, 5, 4))
    np.testing.assert_allclose(pp.bin_patterns(d, 2).compute(), ref_bin(data, 2, 2, "sum"),
                               rtol=1e-6)


@pytest.mark.parametrize("factor", [0, -1, 11, (2, 12), (1, 2, 3), 1.5])
def test_bin_errors(data, factor):
    assert_input_error("factor", pp.bin_patterns, data, factor)


def test_bin_reduce_error(data):
    assert_input_error("reduce", pp.bin_patterns, data, 2, reduce="max")


@pytest.mark.parametrize("box", [(0, 10, 0, 11), (2, 7, 3, 11), (1, -1, -5, -2)])
def test_crop_patterns(data, box):
    out = run_both(pp.crop_patterns, data, box=box)
    np.testing.assert_array_equal(out, data[:, :, box[0]:box[1], box[2]:box[3]])


@pytest.mark.parametrize("box", [(0, 11, 0, 5), (5, 5, 0, 5), (3, 2, 0, 5), (0, 5, 0, 12),
                                 (0, 5), (0, 5.0, 0, 5), None])
def test_crop_errors(data, box):
    assert_input_error("box", pp.crop_patterns, data, box=box)


def test_centre_crop(data):
    out = run_both(pp.centre_crop, data, size=4)   # centre (4.5, 5): start round(c - 1.5)
    np.testing.assert_array_equal(out, data[:, :, 3:7, 4:8])
    out = run_both(pp.centre_crop, data, size=3, centre=(2, 7.2))
    np.testing.assert_array_equal(out, data[:, :, 1:4, 6:9])
    odd = np.arange(2 * 1 * 9 * 9, dtype=np.float32).reshape(2, 1, 9, 9)
    np.testing.assert_array_equal(pp.centre_crop(odd, size=5), odd[:, :, 2:7, 2:7])


def test_centre_crop_errors(data):
    assert_input_error("size", pp.centre_crop, data, size=0)
    assert_input_error("size", pp.centre_crop, data, size=11)
    assert_input_error("size", pp.centre_crop, data, size=2.0)
    assert_input_error("centre", pp.centre_crop, data, size=5, centre=(1, 1))
    assert_input_error("centre", pp.centre_crop, data, size=4, centre=(1,))


def test_apply_mask(data):
    mask = pp.direct_beam_mask(data.shape[2:], radius=3)
    out = run_both(pp.apply_mask, data, mask)
    ref = data.copy()
    for y, x in zip(*np.nonzero(mask)):
        ref[:, :, y, x] = 0
    np.testing.assert_array_equal(out, ref)
    out = run_both(pp.apply_mask, data, mask, fill=-1.5)
    assert np.all(out[:, :, mask] == -1.5) and np.array_equal(out[:, :, ~mask], data[:, :, ~mask])
    ints = (data * 100).astype(np.uint16)
    assert run_both(pp.apply_mask, ints, mask).dtype == np.uint16
    assert run_both(pp.apply_mask, ints, mask, fill=-1).dtype == np.float32


def test_apply_mask_errors(data):
    assert_input_error("mask", pp.apply_mask, data, np.ones((10, 10), bool))
    assert_input_error("mask", pp.apply_mask, data, np.ones((10, 11)))
    assert_input_error("fill", pp.apply_mask, data, np.ones((10, 11), bool), fill="x")


@pytest.mark.parametrize("method, ref", [("sqrt", np.sqrt), ("log", np.log1p)])
def test_scale_intensity(data, method, ref):
    out = run_both(pp.scale_intensity, data * 50, method=method)
    np.testing.assert_allclose(out, ref(data.astype(np.float64) * 50), rtol=1e-6)
    assert out.dtype == np.float32


@pytest.mark.parametrize("method", [None, "none"])
def test_scale_identity(data, method):
    np.testing.assert_array_equal(pp.scale_intensity(data, method=method), data)
    np.testing.assert_array_equal(pp.normalise_patterns(data, method=method), data)


def test_scale_error(data):
    with pytest.raises(InputError, match=r"method.*'none'.*'sqrt'.*'log'.*got 'cbrt'"):
        pp.scale_intensity(data, method="cbrt")


def test_normalise_patterns(data):
    a = data.astype(np.float64)
    a[1, 2] = 0                                      # a zero pattern stays zero
    for method in ("sum", "max"):
        out = run_both(pp.normalise_patterns, a, method=method)
        ref = np.zeros_like(a)
        for i in range(a.shape[0]):
            for j in range(a.shape[1]):
                d = a[i, j].sum() if method == "sum" else a[i, j].max()
                ref[i, j] = a[i, j] / d if d > 0 else 0
        np.testing.assert_allclose(out, ref, rtol=1e-12)
        assert np.all(out[1, 2] == 0) and np.all(np.isfinite(out))
    out = run_both(pp.normalise_patterns, a, method="mean_total")
    mean_sum = np.mean([a[i, j].sum() for i in range(7) for j in range(9)])
    np.testing.assert_allclose(out, a / mean_sum, rtol=1e-12)
    z = np.zeros((2, 2, 3, 3), np.float32)
    assert np.all(run_both(pp.normalise_patterns, z, method="mean_total") == 0)
    assert run_both(pp.normalise_patterns, data, method="sum").dtype == np.float32
    assert_input_error("method", pp.normalise_patterns, data, method="l2")


def test_preprocess_full(data):
    cfg = PreprocessConfig(bin=2, crop=(0, 10, 1, 11), centre_crop=8, mask_radius=1.5,
                              filter="mean3", scale="sqrt", normalise="sum")
    before = data.copy()
    out, rec, _ = pp.preprocess(data, cfg)
    # explicit reference in the documented order
    x = data[:, :, 0:10, 1:11][:, :, 1:9, 1:9].astype(np.float64)
    x = ref_bin(x, 2, 2, "sum")
    x[:, :, pp.direct_beam_mask((4, 4), radius=1.5)] = 0
    x = np.sqrt(ref_scan_mean(x, 3))
    x = x / x.sum(axis=(2, 3), keepdims=True)
    assert out.dtype == np.float32 and out.shape == (7, 9, 4, 4)
    np.testing.assert_allclose(out, x, rtol=1e-5)
    np.testing.assert_array_equal(data, before)
    json.dumps(rec)
    assert rec["crop"] == [0, 10, 1, 11]
    assert rec["centre_crop"] == {"size": 8, "box": [1, 9, 1, 9]}
    assert rec["bin"] == 2 and rec["filter"] == "mean3"
    assert rec["mask"]["centre"] == [1.5, 1.5] and rec["mask"]["radius"] == 1.5
    assert rec["scale"] == "sqrt" and rec["normalise"] == "sum"
    assert rec["input_shape"] == [7, 9, 10, 11] and rec["output_shape"] == [7, 9, 4, 4]
    outd, recd, _ = pp.preprocess(da.from_array(data, chunks=CHUNKS), cfg)
    assert isinstance(outd, da.Array) and recd == rec
    np.testing.assert_allclose(outd.compute(), out, rtol=1e-5)


def test_preprocess_default_and_auto_mask(data):
    out, rec, _ = pp.preprocess(data)
    assert out.dtype == np.float32 and not np.shares_memory(out, data)
    np.testing.assert_array_equal(out, data)
    assert rec["mask"] is None and rec["bin"] == 1 and rec["filter"] == "raw"
    yy, xx = np.mgrid[:10, :11]
    beam = np.exp(-((yy - 3.2) ** 2 + (xx - 6.6) ** 2) / 2)
    a = data * 0.01 + beam
    out, rec, _ = pp.preprocess(da.from_array(a, chunks=CHUNKS),
                             PreprocessConfig(mask_radius=2, mask_centre="auto"))
    cy, cx = rec["mask"]["centre"]
    assert abs(cy - 3.2) < 0.2 and abs(cx - 6.6) < 0.2
    m = pp.direct_beam_mask((10, 11), radius=2, centre=(cy, cx))
    assert np.all(out.compute()[:, :, m] == 0)


def test_preprocess_errors(data):
    with pytest.raises(ConfigError, match=r"preprocessing.filter='median': is not allowed: "
                                          r"choose one of .*mean3.*pca.*raw"):
        PreprocessConfig(filter="median")
    with pytest.raises(ConfigError, match=r"preprocessing.scale='cube'.*none, sqrt, log"):
        PreprocessConfig(scale="cube")
    with pytest.raises(ConfigError, match=r"preprocessing.bin=0.5: must be an integer >= 1"):
        PreprocessConfig(bin=0.5)
    with pytest.raises(ConfigError, match="preprocessing.mask_centre='middle'"):
        PreprocessConfig(mask_radius=1, mask_centre="middle")
    assert_input_error("box", pp.preprocess, data, PreprocessConfig(crop=(0, 20, 0, 4)))
    assert_input_error("data must be 4D", pp.preprocess, data[0])


def test_filter_registry(data, monkeypatch):
    monkeypatch.setitem(FILTERS, "double", FILTERS["raw"])     # removed again after the test
    register_filter("double", lambda d: d * 2)
    out, rec, _ = pp.preprocess(data, PreprocessConfig(filter="double"))
    np.testing.assert_allclose(out, data * 2)
    assert rec["filter"] == "double"
    monkeypatch.setitem(FILTERS, "options", FILTERS["raw"])    # removed again after the test
    register_filter("options", lambda d, factor: d * factor)
    out, _, _ = pp.preprocess(data, PreprocessConfig(filter="options",
                                                     filter_options={"factor": 3}))
    np.testing.assert_allclose(out, data * 3)


def test_importing_preprocess_loads_no_engine():
    """``import nmf4d.preprocess`` must not load the NMF engine or any optional filter."""
    import subprocess
    import sys
    code = ("import sys, nmf4d.preprocess, nmf4d.config; "
            "print(sorted(m for m in sys.modules if m.startswith('nmf4d')))")
    mods = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout
    for heavy in ("nmf4d.nmf", "nmf4d.filters.pca", "nmf4d.filters.denoise", "nmf4d.pipeline"):
        assert f"'{heavy}'" not in mods, mods


def test_preprocess_dask_is_lazy(data):
    calls = []

    def source(block):
        if block.size:
            calls.append(1)
        return block
    d = da.from_array(data, chunks=CHUNKS).map_blocks(source, dtype=data.dtype)
    cfg = PreprocessConfig(bin=2, mask_radius=1, filter="mean3", scale="log",
                           normalise="mean_total", dark="off", centre="off")
    out, _, _ = pp.preprocess(d, cfg)
    assert calls == [] and isinstance(out, da.Array)
    out.compute()
    assert calls
    # the detector corrections measure a sample of positions on a few rows, not the scan
    big = da.from_array(np.zeros((64, 9, 10, 11), np.float32), chunks=(1, 9, 10, 11))
    seen = []
    lazy = big.map_blocks(lambda b: seen.append(1) or b, dtype=np.float32)
    pp.preprocess(lazy, PreprocessConfig(dark="auto", centre="auto"))
    assert 0 < len(seen) <= 8 + 2                       # 8 sampled rows of 64
