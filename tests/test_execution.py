"""Executors: the same analysis in memory, streamed from a file under a memory budget,
and on a dask.distributed LocalCluster of 2 worker processes gives the same result."""
from __future__ import annotations

import numpy as np
import pytest

from nmf4d.errors import InputError
from nmf4d.execution import block_rows, parse_memory, physical_memory
from nmf4d.io import open_dataset
from nmf4d.pipeline import analyse
from nmf4d.synthetic import write_polycrystal_zarr


@pytest.fixture(scope="module")
def zarr_scan(tmp_path_factory):
    path = tmp_path_factory.mktemp("exe") / "scan.zarr"
    truth = write_polycrystal_zarr(path, (48, 48), (64, 64), chunks=(5, 16), n_grains=4,
                                   vacuum=True, dose=3000, seed=3)
    return path, truth


@pytest.fixture(scope="module")
def in_memory(zarr_scan):
    ds = open_dataset(zarr_scan[0])
    return analyse(np.asarray(ds.data), k_range=(2, 8), max_iter=200)


def _same(a, b):
    assert a.k == b.k
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a.sweep.loss, b.sweep.loss, rtol=1e-4)
    assert abs(a.rel_error / b.rel_error - 1) < 1e-4


def test_in_memory_recovers_truth(in_memory, zarr_scan):
    from sklearn.metrics import adjusted_rand_score
    truth = zarr_scan[1]
    assert in_memory.k == truth.k_true
    pure = truth.ratio == 0
    assert adjusted_rand_score(truth.labels[pure], in_memory.labels[pure]) > 0.99
    assert in_memory.extras["execution"]["mode"] == "memory"


def test_streamed_under_budget_equals_in_memory(in_memory, zarr_scan):
    ds = open_dataset(zarr_scan[0])
    a = analyse(ds.data, k_range=(2, 8), max_iter=200, memory="64MB")
    assert a.extras["execution"]["mode"] == "stream"
    assert a.extras["execution"]["blocks"] > 1
    _same(a, in_memory)
    np.testing.assert_allclose(a.mean_pattern, in_memory.mean_pattern, rtol=1e-5)
    np.testing.assert_allclose(a.clusters["raw_mean"], in_memory.clusters["raw_mean"],
                               rtol=1e-4, atol=1e-6)


def test_distributed_local_cluster_equals_in_memory(in_memory, zarr_scan):
    distributed = pytest.importorskip("distributed")
    ds = open_dataset(zarr_scan[0])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        a = analyse(ds.data, k_range=(2, 8), max_iter=200, client=client)
    assert a.extras["execution"]["mode"] == "distributed"
    assert a.extras["execution"]["blocks"] >= 4
    _same(a, in_memory)


@pytest.mark.parametrize("text, value", [("2GB", 2 * 2**30), ("512MB", 512 * 2**20),
                                         ("1.5 GiB", int(1.5 * 2**30)), (2**27, 2**27)])
def test_parse_memory(text, value):
    assert parse_memory(text) == value


def test_parse_memory_default_and_errors():
    assert parse_memory(None) == int(0.5 * physical_memory())
    for bad in ("lots", "2XB", "-1GB", "1MB"):
        with pytest.raises(InputError, match="--memory"):
            parse_memory(bad)


def test_block_rows_fit_budget():
    rows = block_rows(128 * 128, 2 * 2**30, n_workers=2)
    assert rows * 128 * 128 * 4 * 4 * 2 <= 2 * 2**30 // 3
    assert block_rows(10**9, 2**26) == 1


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


def test_progress_bars_on_and_off(capsys):
    from nmf4d.execution import Progress

    with Progress(True, tty_only=False).bar("level one: k sweep", 3, "k") as b:
        for _ in range(3):
            b.update(1)
    err = capsys.readouterr().err
    assert "level one: k sweep" in err and "3/3" in err
    with Progress(False).bar("x", 3) as b:
        b.update(1)
    with Progress(True).bar("y", 2) as b:      # not a terminal: bars stay silent
        b.update(1)
    assert capsys.readouterr().err == ""


def test_streamed_progress_counts_blocks(zarr_scan, capsys):
    """The per-block hook of a dask source fires once per block and pass."""
    from nmf4d.nmf import BlockOperator, DaskSource

    ds = open_dataset(zarr_scan[0])
    x = ds.data.astype(np.float32).reshape(48 * 48, -1).rechunk({0: 300, 1: -1})
    op = BlockOperator(DaskSource(x, scheduler="threads", num_workers=2))
    seen = []
    op.source.on_block = lambda: seen.append(1)
    op.stats()
    assert len(seen) == len(op.source.blocks) == 8


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
