"""Tests for nmf4d.preprocess: each function against an explicit numpy reference, for
numpy input and for dask input with uneven scan chunks."""
import json

import dask.array as da
import numpy as np
import pytest

from nmf4d.errors import InputError
from nmf4d import preprocess as pp

SHAPE = (7, 9, 10, 11)
CHUNKS = (3, 4, -1, -1)      # uneven scan chunks: (3, 3, 1) x (4, 4, 1)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.random(SHAPE).astype(np.float32)


def run_both(func, arr, *args, **kwargs):
    """Run func on numpy and on dask input; check kinds, no in-place change, equality."""
    before = arr.copy()
    out_np = func(arr, *args, **kwargs)
    assert isinstance(out_np, np.ndarray)
    assert not np.shares_memory(out_np, arr)
    d = da.from_array(arr, chunks=CHUNKS)
    out_da = func(d, *args, **kwargs)
    assert isinstance(out_da, da.Array)
    res = out_da.compute()
    assert res.dtype == out_np.dtype and res.shape == out_np.shape
    np.testing.assert_allclose(res, out_np, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(arr, before)
    return out_np


def assert_input_error(match, func, *args, **kwargs):
    with pytest.raises(InputError, match=match):
        func(*args, **kwargs)


# ------------------------------------------------------------------- validation
def test_validate_4d_ok(data):
    pp.validate_4d(data)
    pp.validate_4d(da.from_array(data, chunks=CHUNKS))


@pytest.mark.parametrize("arr, match", [
    (np.zeros((10, 64, 64)), r"data must be 4D \(scan_y, scan_x, ky, kx\), got shape \(10, 64, 64\)"),
    (np.zeros((2, 2, 3, 3), complex), "data must be real"),
    (np.zeros((0, 4, 8, 8)), r"data is empty.*\(0, 4, 8, 8\)"),
    (np.zeros((2, 2, 3, 3), object), "data must have an integer or float"),
])
def test_validate_4d_errors(arr, match):
    assert_input_error(match, pp.validate_4d, arr)
    assert_input_error(match.replace("data", "stack"), pp.validate_4d, arr, name="stack")
    assert issubclass(InputError, ValueError)


def test_validate_4d_dask_does_not_compute():
    def boom(block):
        raise AssertionError("computed")
    d = da.zeros((4, 4, 5, 5), chunks=2).map_blocks(boom, dtype=float)
    pp.validate_4d(d)


def test_check_values(data):
    pp.check_values(data)
    pp.check_values(da.from_array(data, chunks=CHUNKS))
    pp.check_values(data.astype(np.uint16))
    for kind in (np.asarray, lambda a: da.from_array(a, chunks=CHUNKS)):
        bad = data.copy()
        bad[2, 5, 1, 1] = np.nan
        bad[4, 0, 0, 0] = np.inf
        with pytest.raises(InputError, match=r"data contains 2 NaN/inf.*2 pattern.*\(2, 5\)"):
            pp.check_values(kind(bad))
        neg = data.copy()
        neg[1, 3, 0, 0] = -0.5
        neg[6, 8, 2, 2] = -2.0
        neg[6, 8, 2, 3] = -1.0
        with pytest.raises(InputError, match=r"frame contains 3 negative.*2 pattern.*"
                                              r"\(1, 3\).*minimum value -2"):
            pp.check_values(kind(neg), name="frame")
    with pytest.raises(InputError, match="negative"):
        pp.check_values(np.full((2, 2, 2, 2), -1, np.int16))


def test_check_values_one_compute(data, monkeypatch):
    calls = []
    real = da.compute
    monkeypatch.setattr(da, "compute", lambda *a, **k: calls.append(1) or real(*a, **k))
    pp.check_values(da.from_array(data, chunks=CHUNKS))
    assert len(calls) == 1


# --------------------------------------------------------------------- binning
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


# ------------------------------------------------------------------------ crops
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


# ------------------------------------------------------------- direct beam / mask
@pytest.mark.parametrize("cy, cx, width", [(20.3, 25.7, 2.0), (31.5, 30.25, 3.5), (12.8, 40.1, 1.2)])
def test_find_direct_beam(cy, cx, width):
    yy, xx = np.mgrid[:64, :56]
    rng = np.random.default_rng(2)
    p = 100 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width ** 2))
    p += 5 * np.exp(-((yy - 50) ** 2 + (xx - 10) ** 2) / 8)        # weaker second spot
    p += rng.random(p.shape)                                         # background noise
    fy, fx = pp.find_direct_beam(p)
    assert abs(fy - cy) < 0.1 and abs(fx - cx) < 0.1
    fy, fx = pp.find_direct_beam(da.from_array(p, chunks=16), sigma=0)
    assert abs(fy - cy) < 0.1 and abs(fx - cx) < 0.1
    assert isinstance(fy, float)


def test_find_direct_beam_errors():
    assert_input_error("mean_pattern", pp.find_direct_beam, np.zeros((2, 3, 4)))
    assert_input_error("sigma", pp.find_direct_beam, np.zeros((4, 4)), sigma=-1)
    assert pp.find_direct_beam(np.ones((5, 7))) == (2.0, 3.0)


def test_direct_beam_mask():
    m = pp.direct_beam_mask((10, 11), radius=2.5)
    ref = np.zeros((10, 11), bool)
    for y in range(10):
        for x in range(11):
            ref[y, x] = (y - 4.5) ** 2 + (x - 5) ** 2 <= 2.5 ** 2
    np.testing.assert_array_equal(m, ref)
    m = pp.direct_beam_mask((3, 4, 10, 11), radius=1, centre=(0, 10))
    assert m.dtype == bool and m.shape == (10, 11)
    assert set(zip(*np.nonzero(m))) == {(0, 10), (1, 10), (0, 9)}
    assert_input_error("radius", pp.direct_beam_mask, (10, 11), radius=0)
    assert_input_error("shape", pp.direct_beam_mask, (10,), radius=1)
    assert_input_error("centre", pp.direct_beam_mask, (10, 11), radius=1, centre="x")


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


# ------------------------------------------------------------------- scan filter
def ref_scan_mean(a, size):
    r = size // 2
    sy, sx = a.shape[:2]
    out = np.zeros(a.shape)
    for i in range(sy):
        for j in range(sx):
            acc, n = np.zeros(a.shape[2:]), 0
            for di in range(-r, r + 1):
                for dj in range(-r, r + 1):
                    if 0 <= i + di < sy and 0 <= j + dj < sx:
                        acc += a[i + di, j + dj]
                        n += 1
            out[i, j] = acc / n
    return out


@pytest.mark.parametrize("size", [1, 3, 5])
def test_scan_mean_filter(size):
    a = np.random.default_rng(3).random((7, 9, 5, 4)).astype(np.float32)
    out = run_both(pp.scan_mean_filter, a, size=size)
    assert out.dtype == np.float32 and out.shape == a.shape
    np.testing.assert_allclose(out, ref_scan_mean(a, size), rtol=1e-6)


def test_scan_mean_filter_corner_and_chunks():
    a = np.random.default_rng(4).random((7, 9, 5, 4))
    out = pp.scan_mean_filter(a, size=3)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out[0, 0], a[:2, :2].mean(axis=(0, 1)))
    for chunks in [(1, 2, 5, 4), (7, 9, 5, 4), (2, 5, 3, 2)]:
        d = pp.scan_mean_filter(da.from_array(a, chunks=chunks), size=5)
        np.testing.assert_allclose(d.compute(), ref_scan_mean(a, 5), rtol=1e-10)


@pytest.mark.parametrize("size", [0, 2, -3, 3.0])
def test_scan_mean_filter_errors(data, size):
    assert_input_error("size", pp.scan_mean_filter, data, size=size)


# ---------------------------------------------------------- scale / normalise
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


# -------------------------------------------------------------------- matrices
def test_to_from_matrix(data):
    m = pp.to_matrix(data)
    assert m.shape == (63, 110) and np.shares_memory(m, data)
    for iy in range(7):
        for ix in range(9):
            np.testing.assert_array_equal(m[iy * 9 + ix], data[iy, ix].ravel())
    md = pp.to_matrix(da.from_array(data, chunks=CHUNKS))
    assert isinstance(md, da.Array)
    np.testing.assert_array_equal(md.compute(), m)
    back = pp.from_matrix(m, (7, 9), (10, 11))
    np.testing.assert_array_equal(back, data)
    np.testing.assert_array_equal(pp.from_matrix(md, (7, 9), (10, 11)).compute(), data)
    assert_input_error("matrix", pp.from_matrix, m, (9, 7), (11, 11))


# -------------------------------------------------------------------- pipeline
def test_preprocess_full(data):
    cfg = pp.PreprocessConfig(bin=2, crop=(0, 10, 1, 11), centre_crop=8, mask_radius=1.5,
                              filter="mean3", scale="sqrt", normalise="sum")
    before = data.copy()
    out, rec = pp.preprocess(data, cfg)
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
    outd, recd = pp.preprocess(da.from_array(data, chunks=CHUNKS), cfg)
    assert isinstance(outd, da.Array) and recd == rec
    np.testing.assert_allclose(outd.compute(), out, rtol=1e-5)


def test_preprocess_default_and_auto_mask(data):
    out, rec = pp.preprocess(data)
    assert out.dtype == np.float32 and not np.shares_memory(out, data)
    np.testing.assert_array_equal(out, data)
    assert rec["mask"] is None and rec["bin"] == 1 and rec["filter"] == "raw"
    yy, xx = np.mgrid[:10, :11]
    beam = np.exp(-((yy - 3.2) ** 2 + (xx - 6.6) ** 2) / 2)
    a = data * 0.01 + beam
    out, rec = pp.preprocess(da.from_array(a, chunks=CHUNKS),
                             pp.PreprocessConfig(mask_radius=2, mask_centre="auto"))
    cy, cx = rec["mask"]["centre"]
    assert abs(cy - 3.2) < 0.2 and abs(cx - 6.6) < 0.2
    m = pp.direct_beam_mask((10, 11), radius=2, centre=(cy, cx))
    assert np.all(out.compute()[:, :, m] == 0)


def test_preprocess_errors(data):
    with pytest.raises(InputError, match=r"filter must be one of \[.*'mean3'.*'pca'.*'raw'.*\].*'median'"):
        pp.preprocess(data, pp.PreprocessConfig(filter="median"))
    assert_input_error("method", pp.preprocess, data, pp.PreprocessConfig(scale="cube"))
    assert_input_error("bin", pp.preprocess, data, pp.PreprocessConfig(bin=0.5))
    assert_input_error("box", pp.preprocess, data, pp.PreprocessConfig(crop=(0, 20, 0, 4)))
    assert_input_error("mask_centre", pp.preprocess, data,
                       pp.PreprocessConfig(mask_radius=1, mask_centre="middle"))
    assert_input_error("data must be 4D", pp.preprocess, data[0])


def test_filter_registry(data, monkeypatch):
    monkeypatch.setattr(pp, "FILTERS", dict(pp.FILTERS))
    pp.register_filter("double", lambda d: d * 2)
    out, rec = pp.preprocess(data, pp.PreprocessConfig(filter="double"))
    np.testing.assert_allclose(out, data * 2)
    assert rec["filter"] == "double"


def test_preprocess_dask_is_lazy(data):
    calls = []

    def source(block):
        if block.size:
            calls.append(1)
        return block
    d = da.from_array(data, chunks=CHUNKS).map_blocks(source, dtype=data.dtype)
    cfg = pp.PreprocessConfig(bin=2, mask_radius=1, filter="mean3", scale="log",
                              normalise="mean_total")
    out, _ = pp.preprocess(d, cfg)
    assert calls == [] and isinstance(out, da.Array)
    out.compute()
    assert calls
