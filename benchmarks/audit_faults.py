"""The fault audit of issue #13: bad inputs, dangerous outputs, kills and environment
failures, run against the command line; prints a table.

    python benchmarks/audit_faults.py [--skip-slow] [--markdown]

For every case: the exit status, the line of stderr that matters (the first
``nmf4d:`` line, else the first line), whether the inputs are intact (sha256 before and
after) and what was left behind (staging folders ``.*.tmp-*``/``.*.new-*`` beside the
output; for kills, after the kill and after the rerun). Cases that need root (tmpfs
mounts) say so when they cannot run. Everything happens in a temporary folder.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"),
                                                   os.environ.get("PYTHONPATH", "")]),
           OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
sys.path.insert(0, str(ROOT / "src"))


def sha(path: Path) -> str:
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path.parent)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def staging(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.name.startswith(".") and (".tmp-" in p.name or ".new-" in p.name))


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "nmf4d.cli", *map(str, args)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def cli(*args, timeout=600):
    t0 = time.perf_counter()
    p = start(*args)
    _, err = p.communicate(timeout=timeout)
    return p.returncode, err, time.perf_counter() - t0


def key_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("nmf4d:"):
            return ln
    return lines[0] if lines else ""


def wait_staging(folder: Path, proc, ignore=(), timeout=120) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if any(".tmp-" in n and n not in ignore for n in staging(folder)):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


class Mount:
    """A small tmpfs (root only); ``ro`` remounts it read-only."""

    def __init__(self, where: Path, size="96k", ro=False):
        self.where, self.size, self.ro, self.ok = where, size, ro, False

    def __enter__(self):
        self.where.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0 or not shutil.which("mount"):
            return self
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs",
                            str(self.where)], capture_output=True)
        self.ok = r.returncode == 0
        if self.ok and self.ro:
            self.ok = subprocess.run(["mount", "-o", "remount,ro", str(self.where)],
                                     capture_output=True).returncode == 0
        return self

    def __exit__(self, *exc):
        if self.ok or os.path.ismount(self.where):
            subprocess.run(["umount", "-l", str(self.where)], capture_output=True)


def make_inputs(d: Path) -> dict:
    from PIL import Image

    from nmf4d.io import save_dataset
    from nmf4d.synthetic import make_polycrystal

    data, _ = make_polycrystal(scan_shape=(16, 16), pattern_shape=(64, 64), n_grains=4,
                               vacuum=True, dose=2000.0, seed=0)
    small, _ = make_polycrystal(scan_shape=(16, 16), pattern_shape=(32, 32), n_grains=2,
                                vacuum=True, dose=2000.0, seed=3)
    inp = {}
    (d / "npyfolder").mkdir()
    inp["npy"] = d / "npyfolder" / "scan.npy"
    np.save(inp["npy"], data)
    inp["small"] = d / "small.npy"
    np.save(inp["small"], small)
    inp["zarr"] = d / "scan.zarr"
    save_dataset(small, inp["zarr"], dataset=None)
    inp["png"] = d / "patterns"
    inp["png"].mkdir()
    for i, pat in enumerate(small.reshape(-1, 32, 32)):
        Image.fromarray(pat.astype(np.uint16)).save(inp["png"] / f"p{i:03d}.png")
    inp["png_extra"] = d / "patterns_extra"
    shutil.copytree(inp["png"], inp["png_extra"])
    (inp["png_extra"] / "notes.txt").write_text("log")
    inp["const"] = d / "constant.npy"
    np.save(inp["const"], np.broadcast_to(small[3, 3], small.shape).copy())
    inp["five"] = d / "five.npy"
    np.save(inp["five"], small[None])
    inp["bool"] = d / "mask.npy"
    np.save(inp["bool"], small > 2)
    mib = Path(__file__).resolve().parents[2] / "shared" / "formats" / "001_4x2_6bit.mib"
    for cand in (mib, Path(__file__).resolve().parents[3] / "shared" / "formats" / mib.name):
        if cand.is_file():
            (d / "mib").mkdir()
            shutil.copy(cand, d / "mib" / cand.name)
            shutil.copy(cand.with_suffix(".hdr"), d / "mib" / cand.with_suffix(".hdr").name)
            inp["mib"] = d / "mib" / cand.name
            break
    return inp


def run_cases(d: Path, inp: dict, skip_slow: bool) -> list[dict]:
    rows = []
    hashes = {k: sha(v) for k, v in inp.items()}

    def record(case, rc, err, out_parent, extra=""):
        intact = all(sha(v) == hashes[k] for k, v in inp.items() if v.exists()) and \
            all(v.exists() for v in inp.values())
        line = (key_line(err) + extra).replace(str(d) + os.sep, "").replace(str(d), ".")
        line = line.replace("x" * 300, "xxx...x (300 x)")
        rows.append(dict(case=case, rc=rc, line=line, intact=intact,
                         left=", ".join(staging(out_parent)) or "none"))

    def simple(case, *args, parent=None):
        rc, err, _ = cli(*args)
        record(case, rc, err, parent or d)

    # 1. outputs that are (or hold, or lie in) the input
    simple("-o = folder holding the .npy, --overwrite", "run", inp["npy"], "-o",
           inp["npy"].parent, "--overwrite", "--k", "2")
    simple("-o = the .zarr store, --overwrite", "run", inp["zarr"], "-o", inp["zarr"],
           "--overwrite", "--k", "2")
    simple("-o = the PNG folder, --overwrite", "run", inp["png"], "--scan-shape", "16,16",
           "-o", inp["png"], "--overwrite", "--k", "2")
    simple("-o inside the PNG folder", "run", inp["png"], "--scan-shape", "16,16", "-o",
           inp["png"] / "out", "--k", "2")
    if "mib" in inp:
        simple("-o = the .mib's .hdr, --overwrite", "run", inp["mib"], "-o",
               inp["mib"].with_suffix(".hdr"), "--overwrite", "--k", "2")
    link = d / "link_to_npyfolder"
    link.symlink_to(inp["npy"].parent)
    simple("-o = symlink to the input's folder", "run", inp["npy"], "-o", link,
           "--overwrite", "--k", "2")
    mine = d / "my_documents"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    simple("-o = a user's folder, --overwrite", "run", inp["small"], "-o", mine,
           "--overwrite", "--k", "2")
    rows[-1]["intact"] = rows[-1]["intact"] and (mine / "thesis.tex").exists()
    simple("compare-filters -o = input folder", "compare-filters", inp["npy"], "-o",
           inp["npy"].parent, "--overwrite", "--filters", "raw")
    simple("report on the input folder", "report", inp["npy"].parent)

    # 2. a run that never ends
    if not skip_slow:
        out = d / "k256"
        rc, err, secs = cli("run", inp["npy"], "-o", out, "--k", "256")
        record("--k 256 (16x16 scan, 64x64 patterns)", rc, err, d,
               f" [{secs:.0f} s wall]")

    # 3. kills
    out = d / "killed"
    p = start("run", inp["small"], "-o", out, "--k-range", "2:8")
    wait_staging(d, p)
    time.sleep(0.3)
    p.kill()
    p.communicate()
    after_kill = ", ".join(staging(d)) or "none"
    rc, err, _ = cli("run", inp["small"], "-o", out, "--k", "2", "--no-report")
    record("kill -9, then rerun", rc, err, d, f" [left after kill: {after_kill}]")
    out = d / "termed"
    p = start("run", inp["small"], "-o", out, "--k-range", "2:8")
    wait_staging(d, p)
    time.sleep(0.3)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate()
    record("SIGTERM during the run", p.returncode, err, d)
    out = d / "busy"
    first = start("run", inp["small"], "-o", out, "--k", "3", "--tol", "0", "--max-iter",
                  "1000000", "--no-report")
    wait_staging(d, first)
    rc, err, _ = cli("run", inp["small"], "-o", out, "--k", "2", "--overwrite")
    first.send_signal(signal.SIGTERM)
    first.communicate()
    record("second run into an OUT being written", rc, err, d)

    # 4. environment failures
    with Mount(d / "ro", ro=True) as m:
        if m.ok:
            simple("read-only filesystem", "run", inp["small"], "-o", d / "ro" / "out",
                   "--k", "2", parent=d / "ro")
        else:
            rows.append(dict(case="read-only filesystem", rc="-", line="skipped: needs root "
                             "and mount", intact=True, left="-"))
    with Mount(d / "full") as m:
        if m.ok:
            simple("full disk (96 KiB tmpfs)", "run", inp["small"], "-o", d / "full" / "out",
                   "--k", "2", parent=d / "full")
        else:
            rows.append(dict(case="full disk", rc="-", line="skipped: needs root and mount",
                             intact=True, left="-"))
    locked = d / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.geteuid() == 0:
        rows.append(dict(case="unwritable folder (chmod 0500)", rc="-", line="skipped as "
                         "root (chmod does not stop root; EACCES: tests/test_faults.py, "
                         "monkeypatched)", intact=True, left="-"))
    else:
        simple("unwritable folder (chmod 0500)", "run", inp["small"], "-o", locked / "out",
               "--k", "2", parent=locked)
    locked.chmod(0o700)
    simple("output name of 300 bytes", "run", inp["small"], "-o", d / ("x" * 300), "--k", "2")

    # 5. misleading output
    out = d / "relerr"
    rc, err, _ = cli("run", inp["small"], "-o", out, "--k", "3", "--no-report")
    import h5py
    with h5py.File(out / "results.h5") as f:
        stored = float(f.attrs["relative_error"])
    printed = [ln for ln in err.splitlines() if "relative error" in ln]
    record("relative error: log vs results.h5", rc, printed[0].split("] ")[-1] if printed
           else "", d, f" / stored {stored:.4f}")
    simple("--scale None", "run", inp["small"], "-o", d / "o-scale", "--scale", "None")
    simple("constant input, --k auto", "run", inp["const"], "-o", d / "o-const",
           "--no-report")
    simple("5D input (1, ...)", "run", inp["five"], "-o", d / "o-five", "--k", "2",
           "--no-report")
    simple("--bin 3 on 64 px patterns", "run", inp["npy"], "-o", d / "o-bin", "--bin", "3",
           "--k", "2", "--no-report")
    simple("--mask-radius 100 on 64 px patterns", "run", inp["npy"], "-o", d / "o-mask",
           "--mask-radius", "100", "--k", "2")
    simple("bool input", "run", inp["bool"], "-o", d / "o-bool", "--k", "2", "--no-report")
    if (d / "o-bool" / "results.h5").exists():
        import json
        with h5py.File(d / "o-bool" / "results.h5") as f:
            rows[-1]["line"] += f" [recorded dtype: {json.loads(f.attrs['input_info'])['dtype']}]"
    simple("non-image file in a PNG folder", "run", inp["png_extra"], "--scan-shape", "16,16",
           "-o", d / "o-png", "--k", "2", "--no-report")
    simple("--bin 0", "run", inp["small"], "-o", d / "o-bin0", "--bin", "0")
    return rows


def table(rows: list[dict], markdown: bool) -> str:
    head = ["case", "exit", "stderr (the line that matters)", "input intact", "leftovers"]
    body = [[r["case"], str(r["rc"]), r["line"], "yes" if r["intact"] else "NO", r["left"]]
            for r in rows]
    if markdown:
        esc = [[c.replace("|", "\\|") for c in row] for row in body]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in esc]
        return "\n".join(lines)
    w = [max(len(h), *(len(row[i][:110]) for row in body)) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w[i]) for i, h in enumerate(head))]
    out += ["  ".join(c[:110].ljust(w[i]) for i, c in enumerate(row)) for row in body]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-slow", action="store_true", help="leave out --k 256 (~40 s)")
    ap.add_argument("--markdown", action="store_true", help="a Markdown table")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="nmf4d-audit-") as tmp:
        d = Path(tmp)
        (d / "inputs").mkdir()
        inp = make_inputs(d / "inputs")
        rows = run_cases(d, inp, args.skip_slow)
    print(table(rows, args.markdown))
    bad = [r for r in rows if not r["intact"] or r["left"] not in ("none", "-")]
    print(f"\n{len(rows)} cases; inputs intact in all: {all(r['intact'] for r in rows)}; "
          f"leftovers: {len(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
