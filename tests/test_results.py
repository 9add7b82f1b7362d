"""Tests of nmf4d.results: the results-file contract (shared/design.md), atomic output."""
from __future__ import annotations

import datetime as dt
import json

import h5py
import numpy as np
import pytest

import nmf4d
from nmf4d.errors import InputError
from nmf4d.config import AnalysisConfig
from nmf4d.pipeline import analyse
from nmf4d.results import AtomicOutput, check_output, read_results, write_results
from nmf4d.synthetic import make_polycrystal

pytestmark = pytest.mark.usefixtures("one_blas_thread")

METRICS = ("ssim", "psnr", "gmsd", "mdsi")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    data, truth = make_polycrystal(scan_shape=(24, 26), pattern_shape=(32, 30), n_grains=3,
                                   vacuum=True, dose=2000.0, seed=3)
    a = analyse(data, AnalysisConfig.from_flat(k_range=(2, 6), seed=4))
    out = tmp_path_factory.mktemp("results") / "out"
    with AtomicOutput(out) as tmp:
        write_results(tmp / "results.h5", a, input_path="memory:test",
                      input_info={"format": "synthetic", "shape": list(data.shape)})
    return data, truth, a, out, read_results(out)


def _check(r, name, dtype, shape):
    assert name in r, f"{name} missing"
    arr = r[name]
    assert arr.dtype == np.dtype(dtype), f"{name}: {arr.dtype} != {dtype}"
    assert arr.shape == tuple(shape), f"{name}: {arr.shape} != {shape}"
    return arr


def test_contract_datasets(written):
    data, truth, a, out, r = written
    sy, sx, ky, kx = data.shape
    k = a.k
    assert k == truth.k_true
    comps = _check(r, "components", np.float32, (k, ky, kx))
    np.testing.assert_allclose(comps.sum(axis=(1, 2), dtype=np.float64), 1.0, rtol=1e-4)
    weights = _check(r, "weights", np.float32, (k, sy, sx))
    labels = _check(r, "labels", np.int32, (sy, sx))
    np.testing.assert_array_equal(labels, np.argmax(weights, axis=0))
    ratio = _check(r, "overlap/ratio", np.float32, (sy, sx))
    thr = _check(r, "overlap/thresholds", np.float32, (5,))
    np.testing.assert_allclose(thr, [0.75, 0.80, 0.85, 0.90, 0.95], rtol=1e-6)
    masks = _check(r, "overlap/masks", bool, (5, sy, sx))
    np.testing.assert_array_equal(masks, ratio[None] >= thr[:, None, None])
    assert ratio.min() >= 0 and ratio.max() <= 1
    m = len(range(2, 7))
    sk = _check(r, "sweep/k", np.int32, (m,))
    assert sk.tolist() == list(range(2, 7))
    loss = _check(r, "sweep/loss", np.float64, (m,))
    np.testing.assert_array_equal(loss, a.sweep.loss)
    sattrs = r["sweep@attrs"]
    assert isinstance(sattrs["knee"], int) and sattrs["knee"] == a.sweep.knee
    assert list(sattrs["window"]) == list(a.sweep.window) and len(sattrs["window"]) == 2
    iqa_k = r["iqa/k"]
    assert iqa_k.dtype == np.int32 and iqa_k.ndim == 1
    p = iqa_k.size
    lo, hi = a.sweep.window
    assert set(range(lo, hi + 1)) <= set(iqa_k.tolist())
    for metric in METRICS:
        _check(r, f"iqa/score/{metric}", np.float64, (p,))
        for K in iqa_k.tolist():
            pair = _check(r, f"iqa/pairs/k{K}/{metric}", np.float64, (K, K))
            assert np.isfinite(pair).all() or metric == "psnr"       # psnr diagonal is inf
        _check(r, f"clusters/iqa/{metric}", np.float64, (k,))
    ssim_k = r[f"iqa/pairs/k{k}/ssim"]
    np.testing.assert_allclose(np.diag(ssim_k), 1.0, rtol=1e-6)       # a pattern vs itself
    np.testing.assert_allclose(ssim_k, ssim_k.T, rtol=1e-6)
    _check(r, "clusters/raw_mean", np.float32, (k, ky, kx))
    _check(r, "clusters/nmf_pattern", np.float32, (k, ky, kx))
    nsd = _check(r, "clusters/nsd", np.float64, (k,))
    assert np.all(nsd >= 0)


def test_root_attributes(written):
    _, _, a, _, r = written
    attrs = r["attrs"]
    assert attrs["nmf4d_version"] == nmf4d.__version__
    assert isinstance(attrs["k"], int) and attrs["k"] == a.k
    assert attrs["input"] == "memory:test"
    params = json.loads(attrs["parameters"])
    assert params["seed"] == 4 and params["selection"]["k"] == "auto"
    assert params["sweep"]["k_range"] == [2, 6]
    assert AnalysisConfig.from_dict(params) == a.config            # the config, as it is
    created = dt.datetime.fromisoformat(attrs["created"])
    assert created.tzinfo is not None
    now = dt.datetime.now(dt.timezone.utc)
    assert abs((now - created).total_seconds()) < 3600
    with h5py.File(written[3] / "results.h5", "r") as f:      # attribute types in the file
        assert isinstance(f.attrs["input"], str)
        assert isinstance(f.attrs["parameters"], str)


def test_round_trip_values(written):
    _, _, a, _, r = written
    np.testing.assert_array_equal(r["components"], a.components)
    np.testing.assert_array_equal(r["weights"], a.weights)
    np.testing.assert_array_equal(r["labels"], a.labels)
    np.testing.assert_array_equal(r["overlap/ratio"], a.ratio)
    np.testing.assert_array_equal(r["overlap/masks"], a.masks)
    np.testing.assert_array_equal(r["clusters/raw_mean"], a.clusters["raw_mean"])
    for K in r["iqa/k"].tolist():
        for metric in METRICS:
            np.testing.assert_array_equal(r[f"iqa/pairs/k{K}/{metric}"],
                                          a.selection.assessments[K].pairs[metric])
    assert r["iqa@attrs"]["chosen_k"] == a.k
    assert list(r["attrs"]["background"]) == a.background


def test_weights_are_intensity_explained(written):
    data, _, _, _, r = written
    W = r["weights"].astype(np.float64)
    C = r["components"].astype(np.float64)
    for c in range(W.shape[0]):
        explained = (W[c][..., None, None] * C[c]).sum()
        assert explained == pytest.approx(W[c].sum(), rel=1e-4)
    assert np.einsum("cyx,cij->", W, C) == pytest.approx(data.sum(dtype=np.float64), rel=0.03)
    # per position too: the weights add up to the counts of the pattern (within noise)
    counts = data.sum(axis=(2, 3), dtype=np.float64)
    assert np.median(np.abs(W.sum(axis=0) / counts - 1)) < 0.03


def test_raw_mean_is_mean_of_labelled_patterns(written):
    data, _, _, _, r = written
    labels = r["labels"]
    flat = data.reshape(-1, *data.shape[2:]).astype(np.float64)
    for c in range(r["components"].shape[0]):
        sel = labels.ravel() == c
        assert sel.any()
        np.testing.assert_allclose(r["clusters/raw_mean"][c], flat[sel].mean(axis=0),
                                   rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(r["clusters/nmf_pattern"][c],
                                   r["components"][c] * r["weights"][c].max(), rtol=1e-5)


def test_decision_and_cluster_maps_are_stored(written):
    """Every number the clusters rule used, per rank, and the maps it made."""
    data, truth, a, out, _ = written
    d = a.decision
    with h5py.File(out / "results.h5", "r") as f:
        assert int(f.attrs["rank"]) == a.rank == d.rank
        g = f["decision"]
        np.testing.assert_array_equal(g["rank"][()], d.ranks)
        np.testing.assert_array_equal(g["n_clusters"][()], d.n_clusters)
        assert int(g.attrs["k"]) == a.k == d.k and g.attrs["explanation"] == d.explanation
        per = json.loads(g.attrs["per_rank"])
        for r in d.ranks:
            rg, fc = g[f"rank{r}"], d.assessments[int(r)]
            assert rg["cluster_of"].shape == (r + 1,) and rg["shared"].shape == (r, r)
            np.testing.assert_array_equal(rg["cluster_of"][()], fc.cluster_of)
            np.testing.assert_allclose(rg["shared"][()], rg["shared"][()].T)
            np.testing.assert_allclose(rg["presence"][()], fc.presence, rtol=1e-6)
            assert rg["spot_radius"].shape == (r,) and np.all(rg["spot_radius"][()] >= 1)
            assert int(rg.attrs["n_clusters"]) == per[str(r)]["n_clusters"] == fc.n_clusters
            assert per[str(r)]["readmitted"] == fc.readmitted
            assert per[str(r)]["contrast"] == {str(c): round(v, 4)
                                               for c, v in fc.contrast.items()}
            # a merge needs shared reflections and comparable strengths, as the README says
            for grp in fc.merged:
                i, j = grp[0], grp[1]
                assert rg["shared"][i, j] >= 0.5 or any(rg["shared"][i, m] >= 0.5 for m in grp)
        np.testing.assert_array_equal(f["maps/labels"][()], a.maps.labels)
        assert f["nmf/components"].shape == (a.rank,) + data.shape[2:]
        assert f["components"].shape == (a.k,) + data.shape[2:]
        kinds = json.loads(f["maps"].attrs["kinds"])
        assert len(kinds) == a.k and json.loads(f.attrs["background_kinds"]) == {
            str(i): kinds[i] for i in a.background}


def test_read_results_accepts_folder_or_file(written):
    out = written[3]
    r1 = read_results(out)
    r2 = read_results(out / "results.h5")
    assert sorted(r1) == sorted(r2)
    np.testing.assert_array_equal(r1["weights"], r2["weights"])


def test_read_results_errors(tmp_path):
    with pytest.raises(InputError):
        read_results(tmp_path / "nothing")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not an hdf5 file")
    with pytest.raises(InputError):
        read_results(bad)


def test_fixed_k_file_has_no_sweep(tmp_path):
    data, _ = make_polycrystal(scan_shape=(16, 16), pattern_shape=(24, 24), n_grains=2,
                               vacuum=False, dose=1000.0, seed=0)
    a = analyse(data, AnalysisConfig.from_flat(k=2))
    write_results(tmp_path / "r.h5", a, input_path="x")
    r = read_results(tmp_path / "r.h5")
    assert "sweep/k" not in r and "iqa/k" not in r
    assert r["attrs"]["k"] == 2 and r["components"].shape == (2, 24, 24)
    assert json.loads(r["attrs"]["parameters"])["selection"]["k"] == 2


# ------------------------------------------------------------------ atomic output
def _leftovers(parent, name):
    return [p.name for p in parent.iterdir() if p.name != name]


def test_atomic_output_success(tmp_path):
    out = tmp_path / "out"
    with AtomicOutput(out) as tmp:
        assert tmp.parent.parent == tmp_path and tmp != out and tmp.name == "out"
        assert not out.exists()                               # nothing visible yet
        (tmp / "a.txt").write_text("new")
    assert (out / "a.txt").read_text() == "new"
    assert _leftovers(tmp_path, "out") == []


def test_atomic_output_exception_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"):
        with AtomicOutput(out) as tmp:
            (tmp / "partial.h5").write_bytes(b"x" * 100)
            raise RuntimeError("boom")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_exception_keeps_previous(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.h5").write_text("old")                   # an nmf4d output: replaceable
    with pytest.raises(RuntimeError):
        with AtomicOutput(out, overwrite=True) as tmp:
            (tmp / "new.txt").write_text("new")
            raise RuntimeError("boom")
    assert sorted(p.name for p in out.iterdir()) == ["results.h5"]
    assert _leftovers(tmp_path, "out") == []


def test_atomic_output_refuses_existing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(InputError, match="overwrite"):
        AtomicOutput(out)
    with pytest.raises(InputError):
        check_output(out)
    assert (out / "old.txt").read_text() == "old"
    assert _leftovers(tmp_path, "out") == []


def test_check_output_errors(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InputError):
        check_output(f, overwrite=True)                      # not a folder
    with pytest.raises(InputError):
        check_output(tmp_path / "missing" / "out")           # parent missing
    assert check_output(tmp_path / "fresh") == tmp_path / "fresh"
