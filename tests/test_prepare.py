"""nmf4d.prepare: where the data lives for the budget. The same analysis in memory,
streamed from a file under a memory budget, and on a dask.distributed LocalCluster of 2
worker processes gives the same result."""
from __future__ import annotations

import numpy as np
import pytest

from nmf4d.config import AnalysisConfig
from nmf4d.io import open_dataset
from nmf4d.pipeline import analyse
from nmf4d.prepare import load
from nmf4d.synthetic import write_polycrystal_zarr


def run(data, client=None, **flat):
    return analyse(data, AnalysisConfig.from_flat(k_range=(2, 8), max_iter=200, **flat),
                   client=client)


@pytest.fixture(scope="module")
def zarr_scan(tmp_path_factory):
    path = tmp_path_factory.mktemp("exe") / "scan.zarr"
    truth = write_polycrystal_zarr(path, (48, 48), (64, 64), chunks=(5, 16), n_grains=4,
                                   vacuum=True, dose=3000, seed=3)
    return path, truth


@pytest.fixture(scope="module")
def in_memory(zarr_scan):
    ds = open_dataset(zarr_scan[0])
    return run(np.asarray(ds.data))


def _same(a, b):
    assert a.k == b.k
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a.sweep.loss, b.sweep.loss, rtol=1e-4)
    assert abs(a.relative_error / b.relative_error - 1) < 1e-4


def test_load_chooses_where_the_data_lives(zarr_scan):
    """In memory within half the budget (the weighted copy too when both fit), streamed
    beyond it; the fitting space converts fits to and from input units."""
    ds = open_dataset(zarr_scan[0])
    arr = ds.data.astype(np.float32)
    assert load(arr).mode == "memory"
    # a numpy array is used where it is; its weighted copy (2 x 38 MB) exceeds 64MB
    assert load(np.asarray(arr), memory="64MB").mode == "memory (weighting on the fly)"
    streamed = load(arr, memory="64MB")
    assert streamed.mode == "stream" and streamed.n_blocks > 1
    plain = load(np.asarray(arr), weighting="none")
    assert plain.scales is None and plain.fit_op is plain.op
    fd = load(np.asarray(arr))
    a, b = fd.scales
    from nmf4d.nmf import NMFResult
    rng = np.random.default_rng(0)
    res = NMFResult(weights=rng.random((3, 48 * 48)).astype(np.float32),
                    components=rng.random((3, 64 * 64)).astype(np.float32), n_iter=1,
                    converged=True)
    Wt, H = fd.to_fitting(res)
    np.testing.assert_allclose(Wt.T @ H, (res.weights.T @ res.components) * a[:, None]
                               * b[None, :], rtol=1e-4)
    back = fd.to_input(NMFResult(weights=Wt, components=H, n_iter=1, converged=True))
    np.testing.assert_allclose(back.weights.T @ back.components,
                               res.weights.T @ res.components, rtol=1e-4)
    np.testing.assert_allclose(back.components.sum(axis=1), 1.0, rtol=1e-5)


def test_in_memory_recovers_truth(in_memory, zarr_scan):
    from sklearn.metrics import adjusted_rand_score
    truth = zarr_scan[1]
    assert in_memory.k == truth.k_true
    pure = truth.ratio == 0
    assert adjusted_rand_score(truth.labels[pure], in_memory.labels[pure]) > 0.99
    assert in_memory.execution["mode"] == "memory"


def test_streamed_under_budget_equals_in_memory(in_memory, zarr_scan):
    ds = open_dataset(zarr_scan[0])
    a = run(ds.data, memory="64MB")
    assert a.execution["mode"] == "stream"
    assert a.execution["blocks"] > 1
    _same(a, in_memory)
    np.testing.assert_allclose(a.mean_pattern, in_memory.mean_pattern, rtol=1e-5)
    np.testing.assert_allclose(a.clusters["raw_mean"], in_memory.clusters["raw_mean"],
                               rtol=1e-4, atol=1e-6)


def test_distributed_local_cluster_equals_in_memory(in_memory, zarr_scan, counts_scan):
    """float32 and uint16 (held as CSR in memory; dense uint16 blocks on the workers)."""
    distributed = pytest.importorskip("distributed")
    ds = open_dataset(zarr_scan[0])
    counts = open_dataset(counts_scan[0])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        a = run(ds.data, client=client)
        b = run(counts.data, client=client)
    assert a.execution["mode"] == b.execution["mode"] == "distributed"
    assert a.execution["blocks"] >= 4
    _same(a, in_memory)
    _same(b, run(counts.data))


@pytest.fixture(scope="module")
def counts_scan(tmp_path_factory):
    """uint16 counts as a detector writes them, sparse (about 8 % non-zero); 35 MB, so that
    the smallest budget (64MB) streams them."""
    path = tmp_path_factory.mktemp("counts") / "counts.zarr"
    truth = write_polycrystal_zarr(path, (60, 72), (64, 64), chunks=(5, 16), n_grains=4,
                                   vacuum=True, dose=1000, seed=3, dtype="uint16")
    return path, truth


def test_counts_held_in_their_dtype(counts_scan, monkeypatch):
    """uint16 counts stay uint16 in memory (CSR when sparse), are weighted on the fly, and
    the run log says where the data is and why."""
    import nmf4d.prepare as prep
    from nmf4d.execution import Progress

    ds = open_dataset(counts_scan[0])
    assert ds.data.dtype == np.uint16
    events = []
    fd = load(ds.data, progress=Progress(log=lambda stage, info: events.append((stage, info))))
    assert fd.mode == "memory (weighting on the fly)" and fd.extras["dtype"] == "uint16"
    assert type(fd.op.X).__name__ == "csr_matrix" and fd.op.X.dtype == np.float32
    assert events and events[0][0] == "load" and "as CSR" in events[0][1]
    assert "uint16" in events[0][1] and "on the fly" in events[0][1]
    monkeypatch.setattr(prep, "SPARSE_DENSITY", 0.0)
    dense = load(ds.data)
    assert isinstance(dense.op.X, np.ndarray) and dense.op.X.dtype == np.uint16
    np.testing.assert_allclose(dense.stats["row_sums"], fd.stats["row_sums"])
    np.testing.assert_allclose(dense.stats["col_sums"], fd.stats["col_sums"])
    assert dense.stats["sq"] == pytest.approx(fd.stats["sq"], rel=1e-12)
    streamed = load(ds.data, memory="64MB")
    assert streamed.mode == "stream" and streamed.n_blocks > 1
    assert "exceeds half the memory budget" in streamed.extras["reason"]
    np.testing.assert_allclose(streamed.stats["row_sums"], fd.stats["row_sums"])


def test_counts_in_memory_sparse_dense_and_streamed_agree(counts_scan, monkeypatch):
    """The same uint16 scan analysed in memory as CSR, in memory dense (uint16) and
    streamed under a budget: same k and labels, losses within 1e-4."""
    import nmf4d.prepare as prep

    from sklearn.metrics import adjusted_rand_score

    ds = open_dataset(counts_scan[0])
    sparse = run(ds.data)
    streamed = run(ds.data, memory="64MB")
    monkeypatch.setattr(prep, "SPARSE_DENSITY", 0.0)
    dense = run(ds.data)
    assert streamed.execution["mode"] == "stream"
    truth = counts_scan[1]
    assert sparse.k == truth.k_true
    pure = truth.ratio == 0
    assert adjusted_rand_score(truth.labels[pure], sparse.labels[pure]) > 0.99
    _same(dense, sparse)
    _same(streamed, sparse)
    np.testing.assert_allclose(streamed.clusters["raw_mean"], sparse.clusters["raw_mean"],
                               rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_cli_memory_and_workers(zarr_scan, tmp_path, capsys):
    """`nmf4d run --memory` streams, `--workers 2` computes on a local cluster; same k and
    labels as in memory; the execution record lands in results.h5."""
    pytest.importorskip("distributed")
    import h5py

    from nmf4d.cli import main

    path = str(zarr_scan[0])
    outs = {}
    for name, extra in (("mem", []), ("stream", ["--memory", "64MB"]),
                        ("workers", ["--workers", "2"])):
        out = tmp_path / name
        assert main(["run", path, "-o", str(out), "--k-range", "2:8", "--no-report", "-q",
                     *extra]) == 0
        with h5py.File(out / "results.h5") as f:
            outs[name] = (int(f.attrs["k"]), f["labels"][()], dict(f["execution"].attrs))
    assert capsys.readouterr().err == ""                     # --quiet: nothing printed
    assert outs["stream"][2]["mode"] == "stream"
    assert outs["workers"][2]["mode"] == "distributed"
    for name in ("stream", "workers"):
        assert outs[name][0] == outs["mem"][0] == zarr_scan[1].k_true
        np.testing.assert_array_equal(outs[name][1], outs["mem"][1])


@pytest.mark.parametrize("args, words", [(["--memory", "lots"], ["--memory", "lots"]),
                                         (["--workers", "0"], ["--workers"]),
                                         (["--device", "tpu"], ["--device", "tpu"])])
def test_cli_execution_errors(zarr_scan, tmp_path, capsys, args, words):
    from nmf4d.cli import main

    rc = main(["run", str(zarr_scan[0]), "-o", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("nmf4d: error:")
    for w in words:
        assert w in err[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_cli_scheduler_address(zarr_scan, tmp_path, capsys):
    """`--scheduler ADDRESS` joins a running cluster; a dead address is a one-line error."""
    distributed = pytest.importorskip("distributed")
    import h5py

    from nmf4d.cli import main

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        out = tmp_path / "sched"
        assert main(["run", str(zarr_scan[0]), "-o", str(out), "--k-range", "2:8",
                     "--no-report", "-q", "--scheduler", cluster.scheduler_address]) == 0
    with h5py.File(out / "results.h5") as f:
        assert f["execution"].attrs["mode"] == "distributed"
        assert f["execution"].attrs["client"] == cluster.scheduler_address
        assert int(f.attrs["k"]) == zarr_scan[1].k_true
    rc = main(["run", str(zarr_scan[0]), "-o", str(tmp_path / "dead"), "--scheduler",
               "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--scheduler" in err[0]
