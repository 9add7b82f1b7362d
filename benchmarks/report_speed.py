"""How long the report takes, figure by figure, and how large it gets.

    python benchmarks/report_speed.py [--work DIR] [--repeat 5] [--big]

1. A 60 x 90 scan of 64 x 64 patterns (the demo's settings, seed 0) is written to
   ``WORK/scan.npy`` and analysed with ``nmf4d run --k-range 3:20 --no-report``.
2. The ``explorer/`` group is added from the same array
   (:func:`nmf4d.explorer_data.add_explorer`), and a calibration attribute.
3. ``build_report`` is timed in this process (``--repeat`` times; the first call pays
   for the imports of jinja2 and matplotlib), with the per-figure timings it records,
   and ``nmf4d report OUT`` as a command (imports included).
4. ``--big``: a 256 x 256 scan (64 x 64 patterns, k = 8, a Poisson model computed only
   at the stored positions) is reported, and the page's size printed.

Works on older nmf4d versions too (then only totals are printed).
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _env() -> dict:
    env = dict(os.environ)
    src = Path(__file__).resolve().parents[1] / "src"
    env["PYTHONPATH"] = str(src) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=_env(), capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/nmf4d_report_speed")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--big", action="store_true")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import h5py

    import nmf4d
    from nmf4d.cli import DEMO
    from nmf4d.synthetic import make_polycrystal

    print(f"nmf4d {nmf4d.__version__} from {Path(nmf4d.__file__).parent}; "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    scan = work / "scan.npy"
    if not scan.exists():
        data, _ = make_polycrystal(**{**DEMO, "scan_shape": (60, 90)}, seed=0)
        np.save(scan, data)
    out = work / "out"
    nmf = ["nmf4d"]      # the console script; PYTHONPATH (set in _env) selects this checkout
    t_run = _run(nmf + ["run", str(scan), "-o", str(out), "--k-range", "3:20", "-q",
                        "--no-report", "--overwrite"])
    t_run_rep = _run(nmf + ["run", str(scan), "-o", str(work / "out_rep"), "--k-range", "3:20",
                            "-q", "--overwrite"])
    print(f"nmf4d run --no-report: {t_run:.2f} s; with the report: {t_run_rep:.2f} s")
    try:
        from nmf4d.report.calibration import calibration_json
        from nmf4d.explorer_data import add_explorer
        t = time.perf_counter()
        info = add_explorer(out / "results.h5", np.load(scan, mmap_mode="r"))
        print(f"add_explorer: {time.perf_counter() - t:.2f} s, layout {info}")
        with h5py.File(out / "results.h5", "a") as f:
            f.attrs["calibration"] = calibration_json(scan_step=2.5, reciprocal_scale=0.02,
                                                      source="benchmark")
    except ImportError:
        print("(this version has no explorer)")

    t = time.perf_counter()
    from nmf4d.report import build_report
    import nmf4d.report.build  # noqa: F401
    print(f"import nmf4d.report.build: {time.perf_counter() - t:.2f} s")
    has_timings = "timings" in inspect.signature(build_report).parameters
    totals, parts = [], []
    for i in range(args.repeat):
        t = time.perf_counter()
        tm: dict = {}
        build_report(out, **({"timings": tm} if has_timings else {}))
        totals.append(time.perf_counter() - t)
        parts.append(tm)
    print(f"build_report in-process: first {totals[0]:.2f} s, then median "
          f"{statistics.median(totals[1:] or totals):.2f} s ({args.repeat} calls)")
    if has_timings:
        for key in parts[-1]:
            vals = [p[key] for p in parts[1:]] or [parts[0][key]]
            print(f"  {key:26s} {statistics.median(vals) * 1000:7.1f} ms "
                  f"(first {parts[0][key] * 1000:.1f})")
    cmd = [_run(nmf + ["report", str(out)]) for _ in range(3)]
    print(f"nmf4d report OUT (command, imports included): median {statistics.median(cmd):.2f} s "
          f"({', '.join(f'{c:.2f}' for c in cmd)})")
    html = out / "report.html"
    figs = sum(p.stat().st_size for p in (out / "figures").glob("*.png"))
    print(f"report.html {html.stat().st_size / 1e6:.2f} MB; figures/*.png {figs / 1e6:.2f} MB; "
          f"results.h5 {(out / 'results.h5').stat().st_size / 1e6:.2f} MB")
    if args.big:
        _big(work / "big")
    print(json.dumps({"load_average": os.getloadavg()}))


def _big(out: Path) -> None:
    """A 256 x 256 scan from a random non-negative model, explorer and all."""
    import h5py

    from nmf4d.report import build_report
    from nmf4d.explorer_data import explorer_from_array, write_explorer

    class Lazy:    # Poisson(W H), computed only at the rows asked for
        def __init__(self, w, h):
            self.W, self.H = w.reshape(w.shape[0], -1).T, h.reshape(h.shape[0], -1)
            self.shape = (*w.shape[1:], *h.shape[1:])
            self.rng = np.random.default_rng(0)

        def reshape(self, *a):
            return self

        def __getitem__(self, rows):
            return self.rng.poisson(self.W[rows] @ self.H).astype(np.float32)

    rng = np.random.default_rng(0)
    k, scan, pattern = 8, (256, 256), (64, 64)
    comps = rng.random((k, *pattern)).astype(np.float32) ** 8
    comps /= comps.sum(axis=(1, 2), keepdims=True)
    w = (rng.random((k, *scan)) ** 6 * 1000).astype(np.float32)
    labels = w.argmax(axis=0).astype(np.int32)
    out.mkdir(parents=True, exist_ok=True)
    with h5py.File(out / "results.h5", "w") as f:
        f.attrs.update({"k": k, "input": "fake 256x256", "parameters": json.dumps({"k": k})})
        f["components"], f["weights"], f["labels"] = comps, w, labels
        f["clusters/count"] = np.bincount(labels.ravel(), minlength=k)
        f["clusters/raw_mean"], f["clusters/nmf_pattern"] = comps * 900, comps * 1000
        f["extras/virtual_image"], f["extras/mean_pattern"] = w.sum(axis=0), comps.mean(axis=0)
        kw = explorer_from_array(Lazy(w, comps), components=comps)
        write_explorer(f.create_group("explorer"), **kw)
    tm: dict = {}
    build_report(out, timings=tm)
    print(f"256 x 256 scan: explorer bin {kw['bin']}, step {kw['step']}, "
          f"{kw['patterns'].shape[0]} patterns; report.html "
          f"{(out / 'report.html').stat().st_size / 1e6:.2f} MB, built in {tm['total']:.2f} s")


if __name__ == "__main__":
    main()
