"""Tests of nmf4d.execution.sources: block sources run kernels in block order and report
every block to the progress they were given."""
import dask.array as da
import numpy as np
import pytest

from nmf4d.execution import DaskSource, NumpySource, Progress, row_blocks
from nmf4d.io import open_dataset
from nmf4d.synthetic import write_polycrystal_zarr


@pytest.fixture(scope="module")
def zarr_scan(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "scan.zarr"
    truth = write_polycrystal_zarr(path, (48, 48), (16, 16), chunks=(5, 16), n_grains=3,
                                   vacuum=True, dose=300, seed=3)
    return path, truth


def test_row_blocks():
    assert row_blocks(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert row_blocks(3, 0) == [(0, 1), (1, 2), (2, 3)]


@pytest.mark.parametrize("make", ["numpy", "dask"])
def test_map_in_block_order(make):
    X = np.arange(60, dtype=np.float32).reshape(20, 3)
    progress = Progress()
    src = NumpySource(X, block_rows=6, threads=2, progress=progress) if make == "numpy" else \
        DaskSource(da.from_array(X, chunks=(6, 3)), scheduler="threads", num_workers=2,
                   progress=progress)
    assert src.blocks == [(0, 6), (6, 12), (12, 18), (18, 20)]
    with progress.counting("t", None) as bar:
        sums = src.map(lambda b, k: float(b.sum()) * k, shared=(2,))
        firsts = src.map(lambda b, off: float(b[0, 0]) + off, per_block=[(i,) for i in range(4)])
        only = src.map(lambda b: b.shape[0], only=[3, 1])
    assert sums == [2 * float(X[s:e].sum()) for s, e in src.blocks]
    assert firsts == [X[s, 0] + i for i, (s, _) in enumerate(src.blocks)]
    assert only == [2, 6]
    assert bar.n == 4 + 4 + 2


def test_streamed_progress_counts_blocks(zarr_scan):
    """The per-block hook of a dask source fires once per block and pass."""
    from nmf4d.nmf import BlockOperator

    ds = open_dataset(zarr_scan[0])
    x = ds.data.astype(np.float32).reshape(48 * 48, -1).rechunk({0: 300, 1: -1})
    progress = Progress()
    op = BlockOperator(DaskSource(x, scheduler="threads", num_workers=2, progress=progress))
    with progress.counting("stats", None) as bar:
        op.stats()
    assert bar.n == op.n_blocks == 8


@pytest.mark.parametrize("rows", [1, 2, 3, 5, 7])
def test_scan_rows_blocks_are_the_matrix_rows(rows):
    """Blocks of whole scan rows assembled from the array's own chunks (uneven ones too)
    are the rows of the data matrix, in order."""
    rng = np.random.default_rng(0)
    a = rng.random((7, 6, 3, 4)).astype(np.float32)
    x4 = da.from_array(a, chunks=(3, (4, 2), 3, 4))
    src = DaskSource.scan_rows(x4, rows, num_workers=2)
    X = a.reshape(42, 12)
    assert src.blocks == [(s * 6, min(7, s + rows) * 6) for s in range(0, 7, rows)]
    got = src.map(lambda b: b.copy())
    np.testing.assert_array_equal(np.concatenate(got), X)


def test_read_into_fills_and_runs_the_kernel_per_chunk():
    from nmf4d.execution import read_into

    a = np.arange(5 * 4 * 2 * 3, dtype=np.uint16).reshape(5, 4, 2, 3)
    x4 = da.from_array(a, chunks=(2, 3, 2, 3))
    out = np.zeros_like(a)
    progress = Progress()
    with progress.counting("load", None) as bar:
        parts = read_into(x4, out, lambda b, rows: (b.shape, b.sum(axis=1)), num_workers=2,
                          progress=progress)
    np.testing.assert_array_equal(out, a)
    assert bar.n == len(parts) == 3 * 2
    flat = a.reshape(20, 6)
    for rows, (shape, sums) in parts:
        assert shape == (rows.size, 6)
        np.testing.assert_array_equal(sums, flat[rows].sum(axis=1))
    assert sorted(np.concatenate([r for r, _ in parts]).tolist()) == list(range(20))


def test_parallel_map_keeps_order_and_counts():
    from nmf4d.execution import parallel_map

    seen = []
    out = parallel_map(lambda x: x * x, range(10), threads=3, done=seen.append)
    assert out == [x * x for x in range(10)]
    assert sorted(seen) == list(range(10))
    assert parallel_map(lambda x: -x, [1, 2], threads=1) == [-1, -2]
