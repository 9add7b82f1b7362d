"""Tests of the command line (nmf4d.cli): run, info, demo, exit codes and messages."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

import nmf4d.cli as cli
from nmf4d.cli import main
from nmf4d.synthetic import make_polycrystal

pytestmark = pytest.mark.usefixtures("one_blas_thread")

SMALL_DEMO = dict(scan_shape=(20, 20), pattern_shape=(32, 32), n_grains=3, vacuum=True,
                  overlap_width=4.0, thickness_variation=0.3, dose=2000.0)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(folder):
    return {str(p.relative_to(folder)): _sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    data, truth = make_polycrystal(scan_shape=(24, 24), pattern_shape=(32, 32), n_grains=2,
                                   vacuum=True, dose=2000.0, seed=5)
    paths = {"good": d / "good.npy", "flat": d / "flat.npy", "neg": d / "neg.npy",
             "nan": d / "nan.npy", "xyz": d / "data.xyz"}
    np.save(paths["good"], data)
    np.save(paths["flat"], data.reshape(-1, 32, 32))
    np.save(paths["neg"], data.astype(np.float32) - 1)
    nan = data.astype(np.float32)
    nan[3, 4, 5, 6] = np.nan
    np.save(paths["nan"], nan)
    paths["xyz"].write_text("not a dataset")
    return data, truth, paths


def _error_lines(err):
    return [ln for ln in err.splitlines() if ln.strip()]


# ------------------------------------------------------------------------ run
def test_run_writes_results(files, tmp_path, capsys):
    data, truth, paths = files
    before = _sha(paths["good"])
    out = tmp_path / "out"
    rc = main(["run", str(paths["good"]), "-o", str(out), "--k", "3", "--no-report"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert _sha(paths["good"]) == before                  # input untouched
    assert (out / "results.h5").is_file()
    assert not (out / "report.html").exists()
    with h5py.File(out / "results.h5", "r") as f:
        assert int(f.attrs["k"]) == 3
        assert float(f.attrs["ortho"]) == 0.1               # --ortho auto with a given k
        assert f["components"].shape == (3, 32, 32) and f["weights"].shape == (3, 24, 24)
        assert str(paths["good"].name) in f.attrs["input"]
        labels = f["labels"][()]
    from sklearn.metrics import adjusted_rand_score
    outside = ~truth.in_band()
    assert adjusted_rand_score(truth.labels[outside], labels[outside]) >= 0.95
    assert "Traceback" not in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]   # no temporary left


def test_run_auto_with_report(files, tmp_path, capsys):
    """The one test that builds the HTML report (slowest part of a run)."""
    data, truth, paths = files
    out = tmp_path / "out"
    rc = main(["run", str(paths["good"]), "-o", str(out), "--k-range", "2:5", "-q"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.err == ""                                  # -q: nothing but errors
    assert (out / "results.h5").is_file() and (out / "report.html").is_file()
    assert list((out / "figures").glob("*.png"))
    with h5py.File(out / "results.h5", "r") as f:
        assert int(f.attrs["k"]) == truth.k_true
        assert float(f.attrs["ortho"]) == 0.0               # --ortho auto after the decision
        assert f.attrs["final_fit"] == "refined"            # the refined fit held the clusters
        assert f["sweep/k"][()].tolist() == [2, 3, 4, 5]


def test_run_stack_with_scan_shape(files, tmp_path, capsys):
    _, _, paths = files
    out = tmp_path / "out"
    rc = main(["run", str(paths["flat"]), "--scan-shape", "24,24", "-o", str(out), "--k", "3",
               "--no-report", "-q"])
    assert rc == 0, capsys.readouterr().err
    with h5py.File(out / "results.h5", "r") as f:
        assert f["weights"].shape == (3, 24, 24)


def test_run_overwrite_replaces(files, tmp_path, capsys):
    _, _, paths = files
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.h5").write_text("old")                # an nmf4d output: replaceable
    (out / "stale.txt").write_text("old")
    rc = main(["run", str(paths["good"]), "-o", str(out), "--k", "2", "--no-report", "-q",
               "--overwrite"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["results.h5"]


BAD_INPUTS = {
    # name: (args builder, words the message must contain)
    "missing-file": (lambda p, o: ["run", str(p["good"].with_name("missing.npy")), "-o", o],
                     ["missing.npy"]),
    "unknown-extension": (lambda p, o: ["run", str(p["xyz"]), "-o", o], [".xyz"]),
    "not-4d": (lambda p, o: ["run", str(p["flat"]), "-o", o], ["scan-shape"]),
    "scan-shape-mismatch": (lambda p, o: ["run", str(p["flat"]), "--scan-shape", "10,10",
                                          "-o", o], ["10,10"]),
    "scan-shape-garbage": (lambda p, o: ["run", str(p["flat"]), "--scan-shape", "a,b",
                                         "-o", o], ["scan-shape"]),
    "negative-values": (lambda p, o: ["run", str(p["neg"]), "-o", o, "--k", "2"],
                        ["negative"]),
    "nan-values": (lambda p, o: ["run", str(p["nan"]), "-o", o, "--k", "2"], ["NaN"]),
    "k-zero": (lambda p, o: ["run", str(p["good"]), "-o", o, "--k", "0"], ["k"]),
    "k-too-large": (lambda p, o: ["run", str(p["good"]), "-o", o, "--k", str(24 * 24 + 1)],
                    ["577"]),
    "k-not-a-number": (lambda p, o: ["run", str(p["good"]), "-o", o, "--k", "abc"],
                       ["--k", "abc"]),
    "k-range-reversed": (lambda p, o: ["run", str(p["good"]), "-o", o, "--k-range", "5:3"],
                         ["k-range", "5:3"]),
    "k-range-garbage": (lambda p, o: ["run", str(p["good"]), "-o", o, "--k-range", "x"],
                        ["k-range"]),
    "info-missing": (lambda p, o: ["info", str(p["good"].with_name("missing.npy"))],
                     ["missing.npy"]),
}

# Found after loading and preprocessing the data, behind a progress line.


def _run_bad(name, files, tmp_path, capsys):
    _, _, paths = files
    out = tmp_path / "out"
    build, words = BAD_INPUTS[name]
    hashes = {k: _sha(v) for k, v in paths.items()}
    rc = main(build(paths, str(out)))
    err = capsys.readouterr().err
    assert {k: _sha(v) for k, v in paths.items()} == hashes      # inputs untouched
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []      # no partial output
    return rc, err, words


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_exit_2(name, files, tmp_path, capsys):
    rc, err, words = _run_bad(name, files, tmp_path, capsys)
    assert rc == 2, err
    assert "Traceback" not in err
    errors = [ln for ln in _error_lines(err) if ln.startswith("nmf4d: error:")]
    assert len(errors) == 1, err
    assert _error_lines(err)[-1] == errors[0]
    for w in words:
        assert w in errors[0], (w, errors[0])


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_single_line(name, files, tmp_path, capsys):
    rc, err, _ = _run_bad(name, files, tmp_path, capsys)
    assert rc == 2
    lines = _error_lines(err)
    assert len(lines) == 1 and lines[0].startswith("nmf4d: error:"), err


def test_existing_output_untouched(files, tmp_path, capsys):
    _, _, paths = files
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.h5").write_bytes(b"previous results")
    (out / "figures").mkdir()
    (out / "figures" / "a.png").write_bytes(b"png")
    before = _tree(out)
    rc = main(["run", str(paths["good"]), "-o", str(out), "--k", "2", "--no-report"])
    err = capsys.readouterr().err
    assert rc == 2
    lines = _error_lines(err)
    assert len(lines) == 1 and lines[0].startswith("nmf4d: error:") and "--overwrite" in lines[0]
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_argparse_usage_error_is_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run"])                                  # missing INPUT and -o
    assert e.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


# ------------------------------------------------------------------------ info
def test_info_prints_shape_and_dtype(files, capsys):
    data, _, paths = files
    before = _sha(paths["good"])
    rc = main(["info", str(paths["good"])])
    out = capsys.readouterr().out
    assert rc == 0
    assert "(24, 24, 32, 32)" in out and "uint16" in out and "npy" in out
    assert _sha(paths["good"]) == before
    rc = main(["info", str(paths["flat"]), "--scan-shape", "24,24", "--json"])
    info = json.loads(capsys.readouterr().out)
    assert rc == 0 and list(info["shape"]) == [24, 24, 32, 32] and info["dtype"] == "uint16"


# ------------------------------------------------------------------------ demo
def test_demo_finds_true_k(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "DEMO", SMALL_DEMO)
    out = tmp_path / "demo"
    rc = main(["demo", "-o", str(out), "--no-report", "--k-range", "2:8"])
    err = capsys.readouterr().err
    assert rc == 0, err
    with h5py.File(out / "results.h5", "r") as f:
        k_true = int(f.attrs["demo_k_true"])
        assert k_true == SMALL_DEMO["n_grains"] + 1
        assert int(f.attrs["k"]) == k_true
        assert f.attrs["input"].startswith("synthetic:")
        assert f["components"].shape == (k_true, 32, 32)
    assert f"chosen k = {k_true}" in err


def test_demo_default_configuration(tmp_path, capsys):
    """The real built-in demo (48x48 scan, 64x64 patterns, 6 grains and vacuum), with a
    shorter k range than the default 2:20 to keep it to a few seconds."""
    out = tmp_path / "demo"
    rc = main(["demo", "-o", str(out), "--no-report", "-q", "--k-range", "2:10"])
    assert rc == 0, capsys.readouterr().err
    with h5py.File(out / "results.h5", "r") as f:
        assert int(f.attrs["demo_k_true"]) == cli.DEMO["n_grains"] + int(cli.DEMO["vacuum"])
        assert int(f.attrs["k"]) == int(f.attrs["demo_k_true"])


# ------------------------------------------------------------------------ entry point
def test_entry_point_subprocess(files, tmp_path):
    _, _, paths = files
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    ok = subprocess.run([sys.executable, "-m", "nmf4d.cli", "info", str(paths["good"])],
                        capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "(24, 24, 32, 32)" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "nmf4d.cli", "run", str(paths["xyz"]),
                          "-o", str(tmp_path / "o")], capture_output=True, text=True,
                         env=env, timeout=120)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.strip().startswith("nmf4d: error:")
    assert len(bad.stderr.strip().splitlines()) == 1
    script = shutil.which("nmf4d", path=os.path.dirname(sys.executable)) or shutil.which("nmf4d")
    if script:                                            # the console script, if installed
        res = subprocess.run([script, "info", str(paths["good"])], capture_output=True,
                             text=True, env=env, timeout=120)
        assert res.returncode == 0 and "uint16" in res.stdout, res.stderr


def test_python_dash_m_is_the_command():
    import subprocess
    import sys

    import nmf4d

    res = subprocess.run([sys.executable, "-m", "nmf4d", "--version"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and nmf4d.__version__ in res.stdout + res.stderr
