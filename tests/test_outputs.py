"""Tests of nmf4d.outputs: the one atomic writer, its staging folders and locks, the
checks of an output path, and environment errors (simulated in-process, so they run
everywhere, also as root)."""
from __future__ import annotations

import errno
import json
import os
import socket
import stat
import subprocess
import sys

import pytest

from nmf4d import outputs, staging
from nmf4d.errors import InputError, OutputWarning
from nmf4d.outputs import (LOCK_NAME, AtomicOutput, OutputBusy, OutputError, atomic_path,
                           check_output, check_separate, clean_stale, input_paths, is_stale,
                           live_owner, staging_folders)


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def _fake_stage(parent, name, *, pid, host=None, previous=None, stamp="0001"):
    """The staging folder a dead (or live) owner would leave."""
    stage = parent / f".{name}.tmp-{stamp}"
    (stage / name).mkdir(parents=True)
    (stage / name / "partial.h5").write_bytes(b"half")
    (stage / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                               "target": name, "started": "2026-01-01T00:00:00"}))
    if previous is not None:
        previous.rename(stage / ".previous")
    return stage


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ------------------------------------------------------------------ writing
def test_success_installs_and_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    with AtomicOutput(out) as tmp:
        assert tmp.is_dir() and not out.exists()
        assert (tmp.parent / LOCK_NAME).is_file()
        assert live_owner(out)["pid"] == os.getpid()
        (tmp / "results.h5").write_text("new")
    assert _names(tmp_path) == ["out"] and _names(out) == ["results.h5"]


def test_modes_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with AtomicOutput(tmp_path / "out") as tmp:
            (tmp / "results.h5").write_text("x")
            (tmp / "figures").mkdir()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755     # not mkdtemp's 0700
    assert stat.S_IMODE((tmp_path / "out" / "results.h5").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "out" / "figures").stat().st_mode) == 0o755


def test_overwrite_swaps_and_removes_the_previous(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.h5").write_text("old")
    (out / "old.txt").write_text("old")                   # a file the new run does not write
    with AtomicOutput(out, overwrite=True) as tmp:
        (tmp / "results.h5").write_text("new")
        assert (out / "results.h5").read_text() == "old"    # old kept until the end
    assert (out / "results.h5").read_text() == "new" and _names(tmp_path) == ["out"]
    assert _names(out) == ["results.h5"]                  # nothing of the previous left


def test_overwrite_without_exchange(tmp_path, monkeypatch):
    """Where renameat2 is missing (not Linux, NFS), two renames do the swap."""
    monkeypatch.setattr(staging, "_renameat2", lambda *a: False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.h5").write_text("old")
    with AtomicOutput(out, overwrite=True) as tmp:
        (tmp / "results.h5").write_text("new")
    assert (out / "results.h5").read_text() == "new" and _names(tmp_path) == ["out"]
    with atomic_path(tmp_path / "a.npy") as tmp:
        tmp.write_text("1")
    assert (tmp_path / "a.npy").read_text() == "1"


def test_file_kind_and_zarr_folder(tmp_path):
    target = tmp_path / "scan.npy"
    with atomic_path(target) as tmp:
        assert not tmp.exists() and tmp.name == "scan.npy"
        tmp.write_bytes(b"abc")
    with atomic_path(target, overwrite=True) as tmp:
        tmp.write_bytes(b"def")
    assert target.read_bytes() == b"def"
    store = tmp_path / "s.zarr"
    for text in ("1", "2"):
        with atomic_path(store, overwrite=True) as tmp:
            tmp.mkdir()
            (tmp / "zarr.json").write_text(text)
    assert (store / "zarr.json").read_text() == "2"
    assert _names(tmp_path) == ["s.zarr", "scan.npy"]


def test_failure_keeps_the_previous_output(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.h5").write_text("old")
    with pytest.raises(RuntimeError):
        with AtomicOutput(out, overwrite=True) as tmp:
            (tmp / "results.h5").write_text("new")
            raise RuntimeError("boom")
    assert (out / "results.h5").read_text() == "old" and _names(tmp_path) == ["out"]


def test_output_appearing_during_the_run_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(OutputError, match="appeared during the run"):
        with AtomicOutput(out) as tmp:
            (tmp / "results.h5").write_text("new")
            out.mkdir()                                    # an empty folder: rename(2)
    assert _names(out) == [] and _names(tmp_path) == ["out"]   # would replace it silently


# ------------------------------------------------------------------ checks
def test_check_output_rules(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        check_output(tmp_path / "file", overwrite=True)
    with pytest.raises(OutputError, match="does not exist"):
        check_output(tmp_path / "missing" / "out")
    with pytest.raises(OutputError, match="--overwrite"):
        check_output(tmp_path / "file")
    mine = tmp_path / "docs"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputError, match="not an nmf4d output"):
        check_output(mine, overwrite=True)                # never rmtree a user's folder
    (tmp_path / "empty").mkdir()
    assert check_output(tmp_path / "empty", overwrite=True) == tmp_path / "empty"
    with pytest.raises(OutputError, match="File name too long"):
        check_output(tmp_path / ("x" * 300))
    assert isinstance(OutputError("x"), InputError)


def test_check_separate(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    npy = folder / "scan.npy"
    npy.write_bytes(b"x")
    (tmp_path / "link").symlink_to(folder)
    cases = {folder: "contains the input", tmp_path: "contains the input",
             npy: "is the input", npy / "out": "lies inside the input",
             tmp_path / "link": "contains the input"}
    for out, words in cases.items():
        with pytest.raises(OutputError, match=words) as e:
            check_separate(out, [npy])
        assert str(out) in str(e.value) and str(npy) in str(e.value)
    check_separate(tmp_path / "out", [npy])                # a sibling is fine
    mib = tmp_path / "scan.mib"
    assert input_paths(mib, None, tmp_path / "m.pt") == [mib, mib.with_suffix(".hdr"),
                                                         tmp_path / "m.pt"]


# ------------------------------------------------------------------ stale and busy
def test_stale_folder_of_a_dead_owner_is_removed(tmp_path):
    out = tmp_path / "out"
    stage = _fake_stage(tmp_path, "out", pid=_dead_pid())
    legacy = tmp_path / ".out.tmp-abc123"                     # nmf4d < this: no lock file
    legacy.mkdir(mode=0o700)
    other = _fake_stage(tmp_path, "other", pid=_dead_pid())   # another output's: kept
    assert is_stale(stage) and is_stale(legacy)
    assert staging_folders(out) == sorted([stage, legacy])
    with pytest.warns(OutputWarning, match="interrupted run"):
        with AtomicOutput(out) as tmp:
            (tmp / "results.h5").write_text("new")
    assert _names(tmp_path) == sorted(["out", other.name])


def test_interrupted_swap_is_undone(tmp_path):
    """A kill between the two renames of a swap (no renameat2) leaves OUT missing and
    the previous output in the dead owner's staging folder: it is put back."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.h5").write_text("old")
    _fake_stage(tmp_path, "out", pid=_dead_pid(), previous=out)
    assert not out.exists()
    clean_stale(out)
    assert (out / "results.h5").read_text() == "old" and _names(tmp_path) == ["out"]


def test_live_owner_elsewhere_is_left_alone(tmp_path):
    """A held lock means a live owner (maybe on another host): not stale, busy."""
    import fcntl

    stage = _fake_stage(tmp_path, "out", pid=1, host="another-host")
    with open(stage / LOCK_NAME) as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        assert not is_stale(stage)
        assert clean_stale(tmp_path / "out") == []
        with pytest.raises(OutputBusy, match="another nmf4d run.*another-host"):
            AtomicOutput(tmp_path / "out").__enter__()
    assert is_stale(stage)                               # lock released: the owner is gone


def test_held_lock_of_a_dead_pid_on_this_host_is_stale(tmp_path):
    """A forked child can keep the flock after its parent died: the pid decides."""
    import fcntl

    stage = _fake_stage(tmp_path, "out", pid=_dead_pid())
    with open(stage / LOCK_NAME) as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        assert is_stale(stage)


def test_second_writer_is_refused_at_once(tmp_path):
    out = tmp_path / "out"
    with AtomicOutput(out) as tmp:
        with pytest.raises(OutputBusy, match=r"being written by another nmf4d run \(pid "):
            with AtomicOutput(out):
                pass
        (tmp / "results.h5").write_text("first")
    assert (out / "results.h5").read_text() == "first" and _names(tmp_path) == ["out"]


# ------------------------------------------------------------------ environment errors
@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS, errno.ENOSPC, errno.EDQUOT,
                                  errno.ENAMETOOLONG])
def test_claim_errors_name_the_output(tmp_path, monkeypatch, code):
    def refuse(*a, **k):
        raise OSError(code, os.strerror(code), str(tmp_path / ".out.new-x"))
    monkeypatch.setattr(outputs.tempfile, "mkdtemp", refuse)
    with pytest.raises(OutputError) as e:
        AtomicOutput(tmp_path / "out").__enter__()
    assert str(e.value) == f"cannot write output {str(tmp_path / 'out')!r}: {os.strerror(code)}"
    assert _names(tmp_path) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG])
def test_write_errors_name_the_output_not_the_staging_path(tmp_path, code):
    out = tmp_path / "out"
    with pytest.raises(OutputError) as e:
        with AtomicOutput(out, display="out"):
            raise OSError(code, "h5py: file write failed")        # no file name attached
    assert str(e.value) == f"cannot write output 'out': {os.strerror(code)}"
    assert ".tmp-" not in str(e.value) and _names(tmp_path) == []


def test_errors_naming_the_staging_path_are_rewritten(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(OutputError, match="Permission denied") as e:
        with AtomicOutput(out) as tmp:
            raise PermissionError(errno.EACCES, "Permission denied", str(tmp / "fig.png"))
    assert ".tmp-" not in str(e.value)
    with pytest.raises(InputError) as e:
        with AtomicOutput(out) as tmp:
            raise InputError(f"cannot write the report in {str(tmp)!r}: disk full")
    assert str(e.value) == f"cannot write the report in {str(out)!r}: disk full"
    with pytest.raises(PermissionError):                   # reading an input: not ours
        with AtomicOutput(out):
            raise PermissionError(errno.EACCES, "Permission denied", "/data/scan.npy")
    assert _names(tmp_path) == []


def test_install_error_names_the_output(tmp_path, monkeypatch):
    def fail(*a):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
    monkeypatch.setattr(staging, "rename_new", fail)
    with pytest.raises(OutputError, match="cannot write output .*out'"):
        with AtomicOutput(tmp_path / "out") as tmp:
            (tmp / "x").write_text("x")
    assert _names(tmp_path) == []


def test_h5_file_is_written_in_one_go(tmp_path):
    import h5py
    import numpy as np

    from nmf4d.outputs import h5_file

    path = tmp_path / "r.h5"
    with h5_file(path) as f:
        f.create_dataset("x", data=np.arange(10))
        f.attrs["k"] = 3
        assert not path.exists()                           # nothing on disk until the end
    with h5_file(path, "a") as f:
        f.attrs["extra"] = "yes"
    with h5py.File(path, "r") as f:
        assert f["x"][()].tolist() == list(range(10))
        assert int(f.attrs["k"]) == 3 and f.attrs["extra"] == "yes"
    with pytest.raises(RuntimeError):
        with h5_file(tmp_path / "never.h5") as f:
            f.attrs["k"] = 1
            raise RuntimeError("boom")
    assert not (tmp_path / "never.h5").exists()


def test_h5py_runtime_error_with_errno_names_the_output(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(OutputError) as e:
        with AtomicOutput(out) as tmp:
            raise RuntimeError(f"Can't decrement id ref count (file write failed: filename = "
                               f"'{tmp}/results.h5', errno = 28, error message = 'x')")
    assert str(e.value) == f"cannot write output {str(out)!r}: No space left on device"
    assert _names(tmp_path) == []
