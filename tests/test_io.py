"""Tests of nmf4d.io: real detector files, round trips, errors, header-only info."""
from __future__ import annotations

import hashlib
import importlib
import json
import pickle
from pathlib import Path

import dask
import dask.array as da
import h5py
import numpy as np
import pytest

from nmf4d.errors import InputError
from nmf4d.io import (
    SUPPORTED_FORMATS,
    Dataset,
    dataset_info,
    open_dataset,
    save_dataset,
)

FORMATS_DIR = Path(__file__).resolve().parents[2] / "shared" / "formats"
SHAPE = (4, 5, 16, 12)  # (scan_y, scan_x, ky, kx): all different, so a transpose shows

REAL_FILES = [
    # file, format, rsciio module, shape, dtype
    ("astar_3x2.blo", "blo", "rsciio.blockfile", (3, 2, 144, 144), "uint8"),
    ("001_4x2_6bit.mib", "mib", "rsciio.quantumdetector", (2, 4, 256, 256), "uint8"),
    ("nbed_2x2.hspy", "hspy", "rsciio.hspy", (2, 2, 256, 256), "uint16"),
]


# ----------------------------------------------------------------------------- helpers
def _real(name: str) -> Path:
    path = FORMATS_DIR / name
    if not path.is_file():
        pytest.skip(f"real detector file {path} not available (the shared/formats folder "
                    "beside the repository is not part of a clone)")
    return path


def _reference(path: Path, module: str) -> np.ndarray:
    """Non-lazy rsciio load, navigation axes moved first (the documented order)."""
    signal = importlib.import_module(module).file_reader(str(path))[0]
    flags = [bool(ax["navigate"]) for ax in signal["axes"]]
    order = [i for i, f in enumerate(flags) if f] + [i for i, f in enumerate(flags) if not f]
    return np.asarray(signal["data"]).transpose(order)


def _fingerprint(*paths: Path) -> dict:
    files = []
    for path in paths:
        files += [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(f): (f.stat().st_mtime_ns, hashlib.sha256(f.read_bytes()).hexdigest())
            for f in files}


def _random(dtype: str, shape: tuple = SHAPE, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.random(shape, dtype=np.float32).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def _signal_dict(data: np.ndarray, navigate: list[bool], title: str = "scan") -> dict:
    names = ["a0", "a1", "a2", "a3"]
    axes = [dict(size=int(n), name=names[i], scale=0.5 + i, offset=float(i),
                 units="nm" if nav else "1/nm", navigate=nav)
            for i, (n, nav) in enumerate(zip(data.shape, navigate))]
    return dict(data=data, axes=axes,
                metadata={"General": {"title": title},
                          "Signal": {"signal_type": "electron_diffraction"}},
                original_metadata={}, tmp_parameters={}, attributes={"_lazy": False},
                learning_results={}, models={}, package_info={"name": "", "version": ""})


def _write_zspy(path: Path, data: np.ndarray, navigate: list[bool]) -> None:
    import zarr

    signal = _signal_dict(data, navigate)
    if int(zarr.__version__.split(".")[0]) < 3:
        from rsciio.zspy import file_writer

        file_writer(str(path), signal, show_progressbar=False)
        return
    # rosettasciio 0.15's zspy writer needs zarr 2 (zarr.storage.NestedDirectoryStore);
    # with zarr 3 write the same layout (zarr format 2) that it would write.
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.attrs.update(file_format="ZSpy", file_format_version="3.3")
    exp = root.require_group("Experiments").require_group(signal["metadata"]["General"]["title"])
    exp.create_array("data", shape=data.shape, dtype=data.dtype, chunks=data.shape)[...] = data
    for i, axis in enumerate(signal["axes"]):
        exp.require_group(f"axis-{i}").attrs.update(axis)
    meta = exp.require_group("metadata")
    for key, value in signal["metadata"].items():
        meta.require_group(key).attrs.update(value)
    for key in ("original_metadata", "attributes", "learning_results"):
        exp.require_group(key)


def _write_images(folder: Path, data: np.ndarray, ext: str) -> None:
    """One file per pattern, names img0..imgN (unpadded: natural order matters)."""
    from PIL import Image
    import tifffile

    folder.mkdir()
    flat = data.reshape((-1,) + data.shape[2:])
    for k in np.random.default_rng(1).permutation(len(flat)):  # creation order irrelevant
        path = folder / f"img{k}.{ext}"
        if ext in ("tif", "tiff"):
            tifffile.imwrite(path, flat[k])
        else:
            Image.fromarray(flat[k]).save(path)


@pytest.fixture
def no_compute(monkeypatch):
    """Fail on any dask computation or array conversion."""
    def boom(*args, **kwargs):
        raise AssertionError("pattern data was read")

    monkeypatch.setattr(da.Array, "compute", boom)
    monkeypatch.setattr(da.Array, "__array__", boom)
    with dask.config.set(scheduler=boom):
        yield boom


@pytest.fixture
def no_reads(monkeypatch, no_compute):
    """Also fail on the low-level reads of .npy, HDF5, zarr and image pixels."""
    import tifffile
    import zarr
    from PIL import Image

    boom = no_compute
    monkeypatch.setattr(np, "memmap", boom)
    monkeypatch.setattr(np, "load", boom)
    monkeypatch.setattr(h5py.Dataset, "__getitem__", boom)
    monkeypatch.setattr(h5py.Dataset, "read_direct", boom)
    monkeypatch.setattr(zarr.Array, "__getitem__", boom)
    monkeypatch.setattr(zarr.Array, "get_basic_selection", boom)
    monkeypatch.setattr(Image.Image, "load", boom)
    monkeypatch.setattr(tifffile, "imread", boom)
    monkeypatch.setattr(tifffile.TiffPage, "asarray", boom)
    return boom


# ------------------------------------------------------------------------- real files
@pytest.mark.parametrize("fname, fmt, module, shape, dtype", REAL_FILES)
def test_real_file_matches_rsciio(fname, fmt, module, shape, dtype):
    path = _real(fname)
    before = _fingerprint(FORMATS_DIR)
    with open_dataset(path) as ds:
        assert isinstance(ds, Dataset)
        assert isinstance(ds.data, da.Array)
        assert ds.format == fmt
        assert ds.path == str(path)
        assert ds.shape == shape
        assert ds.dtype == np.dtype(dtype)
        values = ds.data.compute()
        assert len(ds.metadata["axes"]) == 4
        assert [ax["size"] for ax in ds.metadata["axes"]] == list(shape)
        json.dumps(ds.metadata)
    np.testing.assert_array_equal(values, _reference(path, module))
    assert _fingerprint(FORMATS_DIR) == before


@pytest.mark.parametrize("fname, fmt, module, shape, dtype", REAL_FILES)
def test_real_file_info_reads_headers_only(fname, fmt, module, shape, dtype, no_compute):
    path = _real(fname)
    info = dataset_info(path)
    assert info["format"] == fmt
    assert info["shape"] == shape
    assert info["dtype"] == dtype
    assert info["nbytes"] == int(np.prod(shape)) * np.dtype(dtype).itemsize
    expected = path.stat().st_size
    if fmt == "mib":
        expected += path.with_suffix(".hdr").stat().st_size
    assert info["size_on_disk"] == expected
    assert set(info) == {"path", "format", "shape", "dtype", "nbytes", "size_on_disk",
                         "chunks"}


def test_real_hspy_calibrations():
    with open_dataset(_real("nbed_2x2.hspy")) as ds:
        axes = ds.metadata["axes"]
    assert [ax["navigate"] for ax in axes] == [True, True, False, False]
    assert axes[0]["units"] == "nm" and axes[0]["scale"] == 2.0


def test_mib_scan_shape_overrides_header():
    path = _real("001_4x2_6bit.mib")
    reference = _reference(path, "rsciio.quantumdetector")
    with open_dataset(path, scan_shape=(4, 2)) as ds:
        assert ds.shape == (4, 2, 256, 256)
        np.testing.assert_array_equal(ds.data.compute(), reference.reshape(ds.shape))
    with pytest.raises(InputError, match="--scan-shape 3,3"):
        open_dataset(path, scan_shape=(3, 3))


def test_real_file_refuses_dataset_argument():
    with pytest.raises(InputError, match="--dataset"):
        open_dataset(_real("astar_3x2.blo"), dataset="data")


# ------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("dtype", ["uint16", "float32"])
@pytest.mark.parametrize("suffix, dataset, read_dataset", [
    (".npy", "data", None),
    (".zarr", "data", None),          # group with one array: found without --dataset
    (".zarr", None, None),            # bare zarr array
    (".zarr", "entry/data", "entry/data"),
    (".h5", "entry/data", "entry/data"),
    (".hdf5", "/entry/data", "/entry/data"),
])
@pytest.mark.parametrize("lazy_input", [False, True])
def test_roundtrip_writable_formats(tmp_path, dtype, suffix, dataset, read_dataset,
                                    lazy_input):
    original = _random(dtype)
    data = da.from_array(original, chunks=(3, 2, 16, 12)) if lazy_input else original
    path = tmp_path / f"scan{suffix}"
    save_dataset(data, path, dataset=dataset)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left
    before = _fingerprint(path)
    with open_dataset(path, dataset=read_dataset) as ds:
        assert ds.shape == SHAPE
        assert ds.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(ds.data.compute(), original)
        np.testing.assert_array_equal(ds.data[2, 3].compute(), original[2, 3])
    assert _fingerprint(path) == before


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_roundtrip_hspy(tmp_path, dtype):
    from rsciio.hspy import file_writer

    original = _random(dtype)
    path = tmp_path / "scan.hspy"
    file_writer(str(path), _signal_dict(original, [True, True, False, False]),
                show_progressbar=False)
    before = _fingerprint(path)
    with open_dataset(path) as ds:
        assert ds.format == "hspy" and ds.shape == SHAPE and ds.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(ds.data.compute(), original)
        assert [ax["name"] for ax in ds.metadata["axes"]] == ["a0", "a1", "a2", "a3"]
    assert _fingerprint(path) == before


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_roundtrip_zspy(tmp_path, dtype):
    original = _random(dtype)
    path = tmp_path / "scan.zspy"
    _write_zspy(path, original, [True, True, False, False])
    before = _fingerprint(path)
    with open_dataset(path) as ds:
        assert ds.format == "zspy" and ds.shape == SHAPE and ds.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(ds.data.compute(), original)
    assert _fingerprint(path) == before


@pytest.mark.parametrize("writer", ["hspy", "zspy"])
def test_signal_axes_first_are_moved_last(tmp_path, writer):
    """A HyperSpy file whose array order is (ky, kx, y, x) still opens as (y, x, ky, kx)."""
    original = _random("uint16")
    stored = original.transpose(2, 3, 0, 1)
    path = tmp_path / f"scan.{writer}"
    if writer == "hspy":
        from rsciio.hspy import file_writer

        file_writer(str(path), _signal_dict(stored, [False, False, True, True]),
                    show_progressbar=False)
    else:
        _write_zspy(path, stored, [False, False, True, True])
    with open_dataset(path) as ds:
        assert ds.shape == SHAPE
        np.testing.assert_array_equal(ds.data.compute(), original)
        assert [ax["name"] for ax in ds.metadata["axes"]] == ["a2", "a3", "a0", "a1"]


def _add_emd_signal(path: Path, name: str, data: np.ndarray) -> None:
    """Add an NCEM EMD signal group (data + dim1..dimN) to an existing .emd file."""
    with h5py.File(path, "a") as f:
        group = f["signals"].create_group(name)
        group.attrs["emd_group_type"] = 1
        group.create_dataset("data", data=data.T)
        for i in range(data.ndim):
            dim = group.create_dataset(f"dim{i + 1}", data=[0.0, 1.0])
            dim.attrs["name"], dim.attrs["units"] = f"d{i}", "nm"


def test_emd_ncem_roundtrip_and_signal_choice(tmp_path):
    from rsciio.emd import file_writer

    original = _random("uint16")
    path = tmp_path / "scan.emd"
    file_writer(str(path), _signal_dict(original, [True, True, False, False], title="first"))
    with open_dataset(path) as ds:  # NCEM axes carry no navigate flags: array order kept
        assert ds.format == "emd" and ds.shape == SHAPE
        np.testing.assert_array_equal(ds.data.compute(), original)
    _add_emd_signal(path, "image", np.ones((6, 7), np.float32))
    with open_dataset(path) as ds:  # the only 4D signal is picked
        np.testing.assert_array_equal(ds.data.compute(), original)
    second = _random("uint16", seed=3)
    _add_emd_signal(path, "second", second)
    with pytest.raises(InputError, match=r"several 4D signals.*'first' \(4, 5, 16, 12\).*"
                                         r"'second'"):
        open_dataset(path)
    with open_dataset(path, dataset="signals/second/data") as ds:
        np.testing.assert_array_equal(ds.data.compute(), second)


@pytest.mark.parametrize("ext, dtype", [("png", "uint8"), ("png", "uint16"),
                                        ("bmp", "uint8"), ("tif", "float32"),
                                        ("tiff", "uint16")])
def test_roundtrip_image_folder(tmp_path, ext, dtype):
    original = _random(dtype)
    folder = tmp_path / "patterns"
    _write_images(folder, original, ext)
    before = _fingerprint(folder)
    ds = open_dataset(folder, scan_shape=(4, 5))
    assert ds.format == "images" and ds.shape == SHAPE and ds.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(ds.data.compute(), original)
    assert ds.metadata["first_file"] == f"img0.{ext}"
    assert ds.metadata["last_file"] == f"img19.{ext}"
    assert _fingerprint(folder) == before


def test_image_folder_grey_rgb_is_converted(tmp_path):
    from PIL import Image

    original = _random("uint8", shape=(2, 2, 8, 6))
    folder = tmp_path / "rgb"
    folder.mkdir()
    for k, pattern in enumerate(original.reshape(4, 8, 6)):
        Image.fromarray(pattern).convert("RGB").save(folder / f"p{k}.png")
    ds = open_dataset(folder, scan_shape="2,2")
    np.testing.assert_array_equal(ds.data.compute(), original)


def test_stack_3d_with_scan_shape(tmp_path):
    original = _random("uint16")
    path = tmp_path / "stack.npy"
    np.save(path, original.reshape(20, 16, 12))
    for scan_shape in [(4, 5), "4,5", [4, 5]]:
        with open_dataset(path, scan_shape=scan_shape) as ds:
            assert ds.shape == SHAPE
            np.testing.assert_array_equal(ds.data.compute(), original)
    assert dataset_info(path, scan_shape=(4, 5))["shape"] == SHAPE


def test_fortran_order_npy_and_chunks(tmp_path):
    original = _random("float32")
    path = tmp_path / "f.npy"
    np.save(path, np.asfortranarray(original))
    ds = open_dataset(path, chunks=(2, 5, 16, 12))
    assert ds.data.chunks == ((2, 2), (5,), (16,), (12,))
    np.testing.assert_array_equal(ds.data.compute(), original)
    auto = open_dataset(path)
    assert auto.data.chunks[2:] == ((16,), (12,))  # whole patterns per block


@pytest.mark.parametrize("suffix, dataset", [(".npy", None), (".h5", "data"),
                                             (".zarr", "data")])
def test_lazy_array_pickles(tmp_path, suffix, dataset):
    """The dask graph can be shipped to worker processes (dask.distributed)."""
    original = _random("uint16")
    path = tmp_path / f"scan{suffix}"
    save_dataset(original, path, dataset=dataset or "data")
    ds = open_dataset(path, dataset=dataset if suffix == ".h5" else None)
    clone = pickle.loads(pickle.dumps(ds.data))
    np.testing.assert_array_equal(clone.compute(), original)


# ---------------------------------------------------------------------- save_dataset
def test_save_refuses_to_overwrite(tmp_path):
    first, second = _random("uint16"), _random("uint16", seed=5)
    for suffix in (".npy", ".h5", ".zarr"):
        path = tmp_path / f"out{suffix}"
        save_dataset(first, path)
        with pytest.raises(InputError, match="already exists"):
            save_dataset(second, path)
        save_dataset(second, path, overwrite=True)
        with open_dataset(path, dataset="data" if suffix == ".h5" else None) as ds:
            np.testing.assert_array_equal(ds.data.compute(), second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5", "out.npy", "out.zarr"]


def test_save_failure_leaves_nothing(tmp_path):
    def broken(block):
        if block.size:
            raise RuntimeError("computation failed")
        return block

    data = da.zeros(SHAPE, chunks=(2, 5, 16, 12), dtype="uint16").map_blocks(
        broken, dtype="uint16", meta=np.empty((0, 0, 0, 0), "uint16"))
    for suffix in (".npy", ".h5", ".zarr"):
        with pytest.raises(RuntimeError, match="computation failed"):
            save_dataset(data, tmp_path / f"out{suffix}")
    assert list(tmp_path.iterdir()) == []


def test_save_errors(tmp_path):
    with pytest.raises(InputError, match=r"not one of \.npy"):
        save_dataset(_random("uint8"), tmp_path / "out.tif")
    with pytest.raises(InputError, match="dataset path"):
        save_dataset(_random("uint8"), tmp_path / "out.h5", dataset=None)
    (tmp_path / "folder.npy").mkdir()
    with pytest.raises(InputError, match="existing folder"):
        save_dataset(_random("uint8"), tmp_path / "folder.npy", overwrite=True)


def test_save_chunks(tmp_path):
    save_dataset(_random("uint16"), tmp_path / "c.h5", chunks=(1, 5, 16, 12))
    with h5py.File(tmp_path / "c.h5", "r") as f:
        assert f["data"].chunks == (1, 5, 16, 12)
    info = dataset_info(tmp_path / "c.h5", dataset="data")
    assert info["chunks"] == (1, 5, 16, 12)


# ------------------------------------------------------------------------------ info
def test_info_reads_headers_only(tmp_path, no_reads):
    original = _random("uint16")
    # writing happens before the guard matters: use plain writers that do not go
    # through the patched functions
    npy = tmp_path / "a.npy"
    with open(npy, "wb") as fh:
        np.lib.format.write_array(fh, original)
    h5 = tmp_path / "a.h5"
    with h5py.File(h5, "w") as f:
        f.create_dataset("entry/data", data=original, chunks=(1, 5, 16, 12))
    zpath = tmp_path / "a.zarr"
    import zarr

    zarr.create_array(str(zpath), data=original, chunks=(2, 5, 16, 12))
    folder = tmp_path / "imgs"
    import tifffile

    folder.mkdir()
    for k, pattern in enumerate(original.reshape(20, 16, 12)):
        tifffile.imwrite(folder / f"i{k}.tif", pattern)

    expected = dict(shape=SHAPE, dtype="uint16", nbytes=original.nbytes)
    cases = [(npy, {}, "npy", None), (h5, {"dataset": "entry/data"}, "hdf5", (1, 5, 16, 12)),
             (zpath, {}, "zarr", (2, 5, 16, 12)),
             (folder, {"scan_shape": (4, 5)}, "images", None)]
    for path, kwargs, fmt, chunks in cases:
        info = dataset_info(path, **kwargs)
        assert info["format"] == fmt
        assert {k: info[k] for k in expected} == expected
        assert info["chunks"] == chunks
        assert info["path"] == str(path)
        assert info["size_on_disk"] > 0
    assert dataset_info(npy)["size_on_disk"] == npy.stat().st_size
    # opening is lazy as well
    assert open_dataset(npy).shape == SHAPE


def test_supported_formats_listing():
    assert {"npy", "zarr", "hdf5", "hspy", "zspy", "blo", "mib", "emd", "dm4",
            "images"} <= set(SUPPORTED_FORMATS)


# ---------------------------------------------------------------------------- errors
def test_missing_input(tmp_path):
    with pytest.raises(InputError, match="not found"):
        open_dataset(tmp_path / "nothing.npy")
    with pytest.raises(InputError, match="not found"):
        dataset_info(tmp_path / "nothing.h5", dataset="data")


def test_unknown_extension(tmp_path):
    path = tmp_path / "scan.txt"
    path.write_text("1 2 3")
    with pytest.raises(InputError, match=r"unsupported extension '\.txt'.*\.npy"):
        open_dataset(path)
    img = tmp_path / "one.png"
    img.write_bytes(b"")
    with pytest.raises(InputError, match="folder of images"):
        open_dataset(img)


@pytest.mark.parametrize("suffix", [".npy", ".h5", ".hdf5", ".hspy", ".blo", ".mib",
                                    ".emd", ".dm4", ".zspy"])
def test_corrupt_file(tmp_path, suffix):
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(b"this is not a detector file\n" * 40)
    before = _fingerprint(path)
    with pytest.raises(InputError, match=f"cannot read broken{suffix}") as err:
        open_dataset(path, dataset="data" if suffix in (".h5", ".hdf5") else None)
    assert err.value.__cause__ is not None or suffix in (".blo", ".zspy")
    assert "\n" not in str(err.value)
    assert _fingerprint(path) == before


def test_corrupt_zarr(tmp_path):
    path = tmp_path / "broken.zarr"
    path.mkdir()
    (path / "zarr.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot read broken.zarr"):
        open_dataset(path)


def test_truncated_npy(tmp_path):
    path = tmp_path / "cut.npy"
    np.save(path, _random("uint16"))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(InputError, match="truncated"):
        dataset_info(path)


def test_hdf5_dataset_required_lists_arrays(tmp_path):
    path = tmp_path / "multi.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("entry/data", data=_random("uint16"))
        f.create_dataset("entry/mask", data=np.ones((16, 12), bool))
    with pytest.raises(InputError, match=r"needs --dataset.*entry/data \(4, 5, 16, 12\) "
                                         r"uint16.*entry/mask \(16, 12\)"):
        open_dataset(path)
    with pytest.raises(InputError, match=r"'nope' is not found.*entry/data"):
        dataset_info(path, dataset="nope")
    with pytest.raises(InputError, match="group"):
        open_dataset(path, dataset="entry")


def test_zarr_group_with_several_arrays(tmp_path):
    import zarr

    path = tmp_path / "multi.zarr"
    root = zarr.open_group(str(path), mode="w")
    root.create_array("a", shape=SHAPE, dtype="uint16")
    root.create_array("b", shape=(16, 12), dtype="uint16")
    with pytest.raises(InputError, match=r"needs --dataset.*a \(4, 5, 16, 12\)"):
        open_dataset(path)
    assert open_dataset(path, dataset="a").shape == SHAPE
    with pytest.raises(InputError, match="'c' is not found"):
        open_dataset(path, dataset="c")


@pytest.mark.parametrize("shape, words", [
    ((16, 12), r"expected a 4D .* 2D shape \(16, 12\)"),
    ((20, 16, 12), r"3D, shape \(20, 16, 12\).*--scan-shape"),
    ((2, 4, 5, 16, 12), r"5D shape"),
])
def test_not_4d(tmp_path, shape, words):
    path = tmp_path / "bad.npy"
    np.save(path, np.zeros(shape, np.uint8))
    with pytest.raises(InputError, match=words):
        open_dataset(path)


def test_scan_shape_checks(tmp_path):
    path = tmp_path / "scan.npy"
    np.save(path, _random("uint8"))
    with pytest.raises(InputError, match=r"--scan-shape 5,4 does not match scan.npy"):
        open_dataset(path, scan_shape=(5, 4))
    np.save(tmp_path / "stack.npy", np.zeros((20, 16, 12), np.uint8))
    with pytest.raises(InputError, match=r"gives 21 positions .* 20 patterns"):
        open_dataset(tmp_path / "stack.npy", scan_shape=(3, 7))
    for bad in [(0, 5), (1, 2, 3), "a,b", (2.5, 2), (True, 2)]:
        with pytest.raises(InputError, match="--scan-shape"):
            open_dataset(path, scan_shape=bad)


def test_complex_refused(tmp_path):
    path = tmp_path / "c.npy"
    np.save(path, np.zeros(SHAPE, np.complex64))
    with pytest.raises(InputError, match="complex dtype complex64"):
        open_dataset(path)


def test_dataset_refused_for_npy(tmp_path):
    path = tmp_path / "s.npy"
    np.save(path, _random("uint8"))
    with pytest.raises(InputError, match="does not apply"):
        open_dataset(path, dataset="data")


def test_image_folder_errors(tmp_path):
    from PIL import Image

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(InputError, match="holds no .bmp/.png/.tif/.tiff images"):
        open_dataset(empty, scan_shape=(1, 1))

    folder = tmp_path / "imgs"
    _write_images(folder, _random("uint8"), "png")
    with pytest.raises(InputError, match=r"holds 20 images; give --scan-shape"):
        open_dataset(folder)
    with pytest.raises(InputError, match=r"--scan-shape 3,3 gives 9 positions .* 20 images"):
        dataset_info(folder, scan_shape=(3, 3))

    Image.fromarray(np.zeros((10, 12), np.uint8)).save(folder / "img7.png")
    with pytest.raises(InputError, match=r"differ in size: img0.png is 16x12, img7.png is "
                                         r"10x12"):
        open_dataset(folder, scan_shape=(4, 5))

    colour = tmp_path / "colour"
    colour.mkdir()
    rgb = np.zeros((16, 12, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(colour / "c0.png")
    with pytest.raises(InputError, match="colour image"):
        open_dataset(colour, scan_shape=(1, 1))

    palette = tmp_path / "palette"
    palette.mkdir()
    Image.fromarray(np.zeros((16, 12), np.uint8)).convert("P").save(palette / "p0.png")
    with pytest.raises(InputError, match="palette"):
        open_dataset(palette, scan_shape=(1, 1))


def test_errors_are_input_errors_and_value_errors(tmp_path):
    with pytest.raises(ValueError):
        open_dataset(tmp_path / "missing.zarr")
