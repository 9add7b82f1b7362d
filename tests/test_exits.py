"""Tests of nmf4d.exits and of what a user reads when a command ends: exit statuses,
one-line errors, one-line warnings (also with -q), and the audit's misleading-output
cases (issue #13, item 5) at the command line."""
from __future__ import annotations

import hashlib
import re
import warnings

import h5py
import numpy as np
import pytest

from nmf4d.cli import build_parser, main
from nmf4d.errors import DataWarning, InputError
from nmf4d.exits import Terminated, describe

pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.fixture(scope="module")
def scan(two_grain_scan):
    return two_grain_scan


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _warnings(err):
    return [ln for ln in err.splitlines() if ln.startswith("nmf4d: warning:")]


def _errors(err):
    return [ln for ln in err.splitlines() if ln.startswith("nmf4d: error:")]


# ------------------------------------------------------------------ exit statuses
def test_describe_maps_every_ending():
    import errno

    assert describe(Terminated())[0] == 143
    assert describe(KeyboardInterrupt()) == (130, "nmf4d: interrupted")
    assert describe(InputError("bad\nthing")) == (2, "nmf4d: error: bad thing")
    code, line = describe(PermissionError(errno.EACCES, "x", "/data/a.npy"),
                          inputs=["/data/a.npy"])
    assert code == 2 and line.startswith("nmf4d: error: cannot read input '/data/a.npy'")
    assert describe(OSError(errno.ENOSPC, "x"))[1] == "nmf4d: error: No space left on device"
    code, line = describe(ZeroDivisionError("oops"))
    assert code == 1 and line.startswith("nmf4d: internal error: ZeroDivisionError: oops")


def test_help_lists_exit_statuses_and_info_options():
    text = " ".join(build_parser().format_help().split())
    for code in ("0 success", "2 bad usage", "1 internal error", "130", "143"):
        assert code in text
    sub = build_parser()._subparsers._group_actions[0].choices["info"].format_help()
    assert re.search(r"--dataset PATH\s+array inside", sub)
    assert re.search(r"--scan-shape Y,X\s+scan shape", sub)


# ------------------------------------------------------------------ warnings
def test_warnings_are_one_line_once_and_survive_quiet(scan, tmp_path, capsys):
    data, _ = scan
    path = tmp_path / "five.npy"
    np.save(path, (data[None] > 2))                       # 5D (1, ...) and bool
    out = tmp_path / "out"
    rc = main(["run", str(path), "-o", str(out), "--k", "2", "--crop", "0,31,0,31", "--bin",
               "2", "--no-report", "-q"])
    err = capsys.readouterr().err
    assert rc == 0, err
    found = _warnings(err)
    assert found == [ln for ln in err.splitlines() if ln.strip()]   # -q: only warnings
    assert any("leading axis of length 1 dropped: shape (1, 16, 16, 32, 32)" in w
               for w in found)
    assert any("boolean data converted to uint8" in w for w in found)
    assert any("--bin 2 does not divide the 31x31 patterns: the last 1 row(s) and 1 "
               "column(s) are dropped" in w for w in found)
    assert len(found) == len(set(found)) == 3             # each once (opened twice)
    with h5py.File(out / "results.h5", "r") as f:
        import json
        assert json.loads(f.attrs["input_info"])["dtype"] == "bool"   # not uint8


def test_library_users_can_filter_data_warnings(scan, tmp_path):
    from nmf4d.io import open_dataset

    data, _ = scan
    path = tmp_path / "five.npy"
    np.save(path, data[None])
    with pytest.warns(DataWarning, match="leading axis"):
        open_dataset(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", DataWarning)
        open_dataset(path)


def test_image_folder_with_other_files(scan, tmp_path, capsys):
    from PIL import Image

    data, _ = scan
    folder = tmp_path / "patterns"
    folder.mkdir()
    for i, pat in enumerate(data.reshape(-1, 32, 32)[:16]):
        Image.fromarray(pat.astype(np.uint16)).save(folder / f"p{i}.png")
    (folder / "notes.txt").write_text("microscope log")
    (folder / "sub").mkdir()
    (folder / ".DS_Store").write_bytes(b"x")              # hidden: ignored silently
    rc = main(["info", str(folder), "--scan-shape", "4,4"])
    err = capsys.readouterr().err
    assert rc == 0
    assert _warnings(err) == ["nmf4d: warning: folder patterns: 2 entries that are not a "
                              ".bmp/.png/.tif/.tiff image ignored: notes.txt, sub/"]


def test_identical_patterns_choose_k_1_and_say_why(scan, tmp_path, capsys):
    data, _ = scan
    path = tmp_path / "constant.npy"
    np.save(path, np.broadcast_to(data[3, 3], data.shape).copy())
    out = tmp_path / "out"
    rc = main(["run", str(path), "-o", str(out), "--no-report"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "nmf4d: warning: all 256 patterns are identical: one component describes the " \
           "data exactly, so k = 1 (levels one and two skipped)" in err
    with h5py.File(out / "results.h5", "r") as f:
        assert int(f.attrs["k"]) == 1


# ------------------------------------------------------------------ errors naming the option
def test_mask_radius_covering_the_pattern_names_the_flag(scan, tmp_path, capsys):
    _, path = scan
    before = _sha(path)
    rc = main(["run", str(path), "-o", str(tmp_path / "out"), "--mask-radius", "40",
               "--k", "2"])
    err = capsys.readouterr().err
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("nmf4d: error: --mask-radius 40")
    assert "covers every pixel of the 32x32 patterns" in lines[0]
    assert _sha(path) == before and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, start", [
    (["--scale", "None"], "nmf4d: error: --scale None: is not allowed: choose one of none, "
                          "sqrt, log"),
    (["--bin", "0"], "nmf4d: error: --bin 0: must be an integer >= 1"),
])
def test_option_errors_name_the_flag(scan, tmp_path, capsys, args, start):
    _, path = scan
    rc = main(["run", str(path), "-o", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip() == start


def test_help_of_scale_matches_what_is_accepted():
    text = build_parser()._subparsers._group_actions[0].choices["run"].format_help()
    assert "none, sqrt or log" in " ".join(text.split())


def test_logged_relative_error_is_the_stored_one(scan, tmp_path, capsys):
    """The audit saw 0.4542 printed and 0.1529 stored; both are now the maps stage's."""
    _, path = scan
    out = tmp_path / "out"
    rc = main(["run", str(path), "-o", str(out), "--k", "3", "--no-report"])
    err = capsys.readouterr().err
    assert rc == 0, err
    printed = float(re.search(r"relative error of the fit ([0-9.]+)", err).group(1))
    with h5py.File(out / "results.h5", "r") as f:
        stored = float(f.attrs["relative_error"])
    assert f"{stored:.4f}" == f"{printed:.4f}"


# ------------------------------------------------------------------ report and outputs
def test_report_refuses_a_folder_without_results_and_deletes_nothing(scan, tmp_path, capsys):
    _, path = scan
    folder = path.parent
    before = {p.name: _sha(p) for p in folder.iterdir() if p.is_file()}
    rc = main(["report", str(folder)])
    err = capsys.readouterr().err
    assert rc == 2 and "no results file" in err
    assert {p.name: _sha(p) for p in folder.iterdir() if p.is_file()} == before


def test_report_rebuild_keeps_other_files(scan, tmp_path, capsys):
    import os
    import stat

    _, path = scan
    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        assert main(["run", str(path), "-o", str(out), "--k", "2", "--no-report", "-q"]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755           # the umask's, not 0700
    assert stat.S_IMODE((out / "results.h5").stat().st_mode) == 0o644
    (out / "notes.txt").write_text("mine")
    (out / "figures").mkdir()
    (out / "figures" / "mine.png").write_bytes(b"png")
    assert main(["report", str(out)]) == 0
    capsys.readouterr()
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "figures" / "mine.png").read_bytes() == b"png"
    assert (out / "report.html").is_file()
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize("where", ["same", "parent", "inside"])
def test_compare_filters_refuses_the_input_folder(scan, tmp_path, capsys, where):
    data, _ = scan
    folder = tmp_path / "data.zarr"
    from nmf4d.io import save_dataset
    save_dataset(data, folder, dataset=None)
    (folder / "results.h5").write_text("looks like an output")
    out = {"same": folder, "parent": tmp_path, "inside": folder / "cmp"}[where]
    rc = main(["compare-filters", str(folder), "-o", str(out), "--overwrite",
               "--filters", "raw"])
    err = capsys.readouterr().err
    assert rc == 2
    assert _errors(err) == [ln for ln in err.splitlines() if ln.strip()]
    assert str(folder) in err and str(out) in err
    assert (folder / "zarr.json").exists()


def test_library_log_warnings_become_one_line(tmp_path, capsys):
    """rosettasciio logs its warnings (in colour, on stdout); the CLI prints them as
    one warning line on stderr and keeps stdout for its own output."""
    import shutil
    from pathlib import Path

    here = Path(__file__).resolve()
    mib = next((p / "shared" / "formats" / "001_4x2_6bit.mib" for p in here.parents[2:4]
                if (p / "shared" / "formats" / "001_4x2_6bit.mib").is_file()), None)
    if mib is None:
        pytest.skip("real detector file 001_4x2_6bit.mib not available (../shared/formats)")
    shutil.copy(mib, tmp_path / mib.name)                       # without its .hdr
    rc = main(["info", str(tmp_path / mib.name)])
    cap = capsys.readouterr()
    assert rc == 0
    assert "RosettaSciIO" not in cap.out and cap.out.startswith("path:")
    assert _warnings(cap.err) == ["nmf4d: warning: `hdr` file couldn't be found."]


def test_phase_files_count_as_inputs(scan, tmp_path, capsys):
    _, path = scan
    folder = tmp_path / "cifs"
    folder.mkdir()
    (folder / "results.h5").write_text("looks like an output")
    (folder / "Fe.cif").write_text("data_Fe")
    rc = main(["run", str(path), "-o", str(folder), "--overwrite", "--phases",
               str(folder / "Fe.cif"), "--k", "2"])
    err = capsys.readouterr().err
    assert rc == 2 and "contains the input" in err and "Fe.cif" in err
    assert (folder / "Fe.cif").read_text() == "data_Fe"


def test_a_termination_swallowed_by_a_callback_prints_no_traceback():
    import sys
    import types

    from nmf4d.exits import Terminated, handle_signals

    before = sys.unraisablehook
    seen = []
    sys.unraisablehook = seen.append
    try:
        with handle_signals() as state:
            state.count = 1                  # a signal arrived; its exception is swallowed
            info = types.SimpleNamespace(exc_type=Terminated, exc_value=Terminated(15),
                                         exc_traceback=None, err_msg=None, object=None)
            sys.unraisablehook(info)
            other = types.SimpleNamespace(exc_type=ValueError, exc_value=ValueError("x"),
                                          exc_traceback=None, err_msg=None, object=None)
            sys.unraisablehook(other)        # anything else still reaches the hook
        assert seen == [other]
        assert sys.unraisablehook == seen.append
    finally:
        sys.unraisablehook = before
