"""Fuzzing of the readers: truncated and corrupted .npy, .h5, .zarr, .hspy, .blo and .mib
(+ .hdr) files and random bytes, through the command line.

Every case must end with exit status 0 (a corruption that did not matter) or 2 with one
line ``nmf4d: error: ...`` -- never a traceback, an internal error (exit 1) or a hang
(each call is bounded by an alarm). The mutations are seeded; the real detector files
come from ``../shared/formats`` (copied to a temporary folder first, never modified) and
are skipped with a reason when that folder is absent. ``nmf4d info`` runs on every case,
``nmf4d run`` on every third, in-process for speed; a few run as subprocesses.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nmf4d
from nmf4d.cli import main
from nmf4d.io import save_dataset

pytestmark = pytest.mark.usefixtures("one_blas_thread")

_HERE = Path(__file__).resolve()
FORMATS = next((p for p in (_HERE.parents[2] / "shared" / "formats",
                            _HERE.parents[3] / "shared" / "formats") if p.is_dir()), None)
REAL = {"hspy": "nbed_2x2.hspy", "blo": "astar_3x2.blo", "mib": "001_4x2_6bit.mib"}
CALL_SECONDS = 20          # an alarm fails a call that hangs
SEEDS = (1, 4, 13)         # 1 and 4 found h5py's RuntimeErrors on corrupt headers


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang("a reader call did not return in time")


def _call(argv, capsys):
    """Run the CLI in-process, bounded in time; return (rc, stderr)."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CALL_SECONDS)
    try:
        rc = main(argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    cap = capsys.readouterr()
    return rc, cap.err


def _check(rc, err, case):
    assert rc in (0, 2), (case, rc, err)
    assert "Traceback" not in err and "internal error" not in err, (case, err)
    if rc == 2:
        lines = [ln for ln in err.splitlines() if ln.strip()
                 and not ln.startswith("nmf4d: warning:")]
        assert len(lines) == 1 and lines[0].startswith("nmf4d: error:"), (case, err)


# ------------------------------------------------------------------ base files
def _bases(root: Path) -> dict[str, tuple[Path, list]]:
    """format -> (file, extra CLI args) of a valid small input."""
    rng = np.random.default_rng(0)
    data = rng.poisson(3, (4, 4, 16, 16)).astype(np.uint16)
    out = {}
    np.save(root / "a.npy", data)
    out["npy"] = (root / "a.npy", [])
    save_dataset(data, root / "a.h5", dataset="data")
    out["h5"] = (root / "a.h5", ["--dataset", "data"])
    save_dataset(data, root / "a.zarr", dataset=None)
    out["zarr"] = (root / "a.zarr", [])
    if FORMATS is not None:
        for fmt, name in REAL.items():
            src = FORMATS / name
            if src.is_file():
                shutil.copy(src, root / name)
                if fmt == "mib":
                    shutil.copy(src.with_suffix(".hdr"), root / src.with_suffix(".hdr").name)
                out[fmt] = (root / name, [])
    return out


def _mutations(path: Path, rng: random.Random) -> list[tuple[str, callable]]:
    """Named functions that corrupt a copy of ``path`` in place."""
    muts = []
    size = path.stat().st_size if path.is_file() else 0

    def truncate(n):
        def f(p):
            with open(p, "r+b") as fh:
                fh.truncate(n)
        return f

    def flip(lo, hi, count):
        def f(p):
            b = bytearray(p.read_bytes())
            for _ in range(count):
                i = rng.randrange(lo, min(hi, len(b)))
                b[i] = rng.randrange(256)
            p.write_bytes(bytes(b))
        return f

    def random_bytes(n):
        def f(p):
            if p.is_dir():
                shutil.rmtree(p)
            p.write_bytes(bytes(rng.randrange(256) for _ in range(n)))
        return f

    if path.is_file():
        for n in sorted({0, 1, 8, 64, 200, 600, size // 2, max(size - 1, 0)}):
            muts.append((f"truncate {n}", truncate(n)))
        for k in range(4):
            muts.append((f"flip header {k}", flip(0, 600, 1 + k * 3)))
        muts.append(("flip anywhere", flip(0, size, 20)))
    muts.append(("random bytes", random_bytes(rng.choice([0, 5, 300, 5000]))))
    return muts


def _zarr_mutations(rng: random.Random):
    def meta(text):
        def f(p):
            (p / "zarr.json").write_text(text)
        return f

    def chunks(action):
        def f(p):
            files = sorted(q for q in p.rglob("*") if q.is_file() and q.name != "zarr.json")
            victim = files[rng.randrange(len(files))]
            if action == "delete":
                victim.unlink()
            else:
                victim.write_bytes(bytes(rng.randrange(256) for _ in range(50)))
        return f

    def drop_meta(p):
        (p / "zarr.json").unlink()

    return [("zarr.json garbage", meta("{not json")), ("zarr.json empty", meta("")),
            ("zarr.json wrong shape", meta('{"zarr_format": 3, "node_type": "array", '
                                           '"shape": [-1, 2]}')),
            ("zarr.json missing", drop_meta), ("chunk deleted", chunks("delete")),
            ("chunk garbage", chunks("garbage"))]


def _hdr_mutations(rng: random.Random):
    def hdr(action):
        def f(p):
            h = p.with_suffix(".hdr")
            if action == "delete":
                h.unlink()
            elif action == "garbage":
                h.write_bytes(bytes(rng.randrange(256) for _ in range(200)))
            else:
                h.write_text(h.read_text(errors="replace").replace("4", "9"))
        return f
    return [(".hdr deleted", hdr("delete")), (".hdr garbage", hdr("garbage")),
            (".hdr numbers changed", hdr("numbers"))]


def _cases(root: Path, seeds=SEEDS):
    cases = []
    bases = _bases(root)
    for seed, (fmt, (base, extra)) in ((s, b) for s in seeds for b in bases.items()):
        rng = random.Random(seed * 1000 + sorted(bases).index(fmt))
        muts = list(_zarr_mutations(rng)) if fmt == "zarr" else _mutations(base, rng)
        if fmt == "mib":
            muts += _hdr_mutations(rng)
        for name, mutate in muts:
            cases.append((fmt, base, extra, name, mutate))
    return cases


def _copy(base: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    target = dest / base.name
    if base.is_dir():
        shutil.copytree(base, target)
    else:
        shutil.copy(base, target)
        if base.suffix == ".mib":
            shutil.copy(base.with_suffix(".hdr"), dest / base.with_suffix(".hdr").name)
    return target


def test_corrupted_inputs_exit_0_or_2_in_one_line(tmp_path, capsys):
    bases = tmp_path / "bases"
    bases.mkdir()
    cases = _cases(bases)
    if FORMATS is None:
        print("real detector files not found (../shared/formats): .hspy/.blo/.mib skipped")
    codes = {}
    for i, (fmt, base, extra, name, mutate) in enumerate(cases):
        path = _copy(base, tmp_path / f"case{i}")
        mutate(path)
        case = f"{fmt}: {name}"
        rc, err = _call(["info", str(path), *extra], capsys)
        _check(rc, err, case + " (info)")
        codes[case] = rc
        if i % 3 == 0:
            out = tmp_path / f"out{i}"
            rc, err = _call(["run", str(path), *extra, "-o", str(out), "--k", "2",
                             "--no-report", "-q"], capsys)
            _check(rc, err, case + " (run)")
            if rc == 2:
                assert not out.exists()
            assert not [p for p in out.parent.iterdir() if ".tmp-" in p.name]
    assert sum(rc == 2 for rc in codes.values()) >= len(codes) // 2, codes
    print(f"{len(cases)} corrupted inputs:", sum(rc == 2 for rc in codes.values()), "refused")


def test_corrupted_inputs_as_subprocesses(tmp_path):
    """A few cases through the real entry point, each with a timeout."""
    rng = np.random.default_rng(1)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(nmf4d.__file__).resolve().parents[1]),
         os.environ.get("PYTHONPATH", "")]), OPENBLAS_NUM_THREADS="1")
    files = {"bad.npy": b"\x93NUMPY\x01\x00" + bytes(rng.integers(0, 256, 40, dtype=np.uint8)),
             "bad.h5": bytes(rng.integers(0, 256, 3000, dtype=np.uint8)),
             "bad.blo": b"IMGBLO" + bytes(rng.integers(0, 256, 500, dtype=np.uint8))}
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content)
        for argv in (["info", str(path)], ["run", str(path), "-o", str(tmp_path / "o")]):
            r = subprocess.run([sys.executable, "-m", "nmf4d.cli", *argv], env=env,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 2, (name, r.stderr)
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("nmf4d: error:"), (name, r.stderr)
            assert name in lines[0]
