"""End to end against the paper, both in one run: ``nmf4d run`` with the report vs the
paper's level-one sweep alone, on a 60x90 scan of 64x64 patterns, k = 3..20.

(a) the paper: scikit-learn ``NMF(init="nndsvd")`` per k = 3..20, the loss of each, the
    knee with kneed (``sweep_vs_paper.paper_sweep``);
(b) ``nmf4d run scan.npy -o OUT --k-range 3:20`` as a command (imports, reading, both
    decision levels, the final fit, the maps, results.h5 and the report), wall time by
    ``/usr/bin/time -v``;
(c) ``nmf4d report OUT`` as a command, and ``build_report`` in-process (best of 3).

Usage: ``python benchmarks/run_vs_paper.py [--work /tmp/nmf4d_run_vs_paper] [--skip-paper]``
Prints the table and writes ``benchmarks/results/run_vs_paper.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a command under /usr/bin/time -v."""
    timer = shutil.which("time") or "/usr/bin/time"
    proc = subprocess.run([timer, "-v", *cmd], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", proc.stderr)
    h, m, s = (float(v or 0) for v in wall.groups())
    rss = float(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return 3600 * h + 60 * m + s, rss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/nmf4d_run_vs_paper")
    ap.add_argument("--skip-paper", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results" / "run_vs_paper.json"))
    args = ap.parse_args()

    from sweep_vs_paper import kneed_knee, paper_sweep

    from nmf4d.report import build_report
    from nmf4d.synthetic import make_polycrystal

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data, truth = make_polycrystal((60, 90), (64, 64), n_grains=7, vacuum=True, dose=2000,
                                   seed=0)
    scan = work / "scan.npy"
    np.save(scan, data)
    nmf4d = shutil.which("nmf4d") or sys.exit("no nmf4d command on the PATH")
    out = work / "out"
    res = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "load_before": os.getloadavg()}, "k_true": truth.k_true}
    t_run, rss = timed([nmf4d, "run", str(scan), "-o", str(out), "--overwrite", "-q",
                        "--k-range", "3:20"])
    t_rep_cmd, _ = timed([nmf4d, "report", str(out)])
    builds = []
    for _ in range(3):
        t = time.perf_counter()
        build_report(out)
        builds.append(time.perf_counter() - t)
    import h5py
    with h5py.File(out / "results.h5") as f:
        k = int(f.attrs["k"])
        html_mb = (out / "report.html").stat().st_size / 1e6
    res.update(nmf4d_run_seconds=t_run, nmf4d_run_rss_mb=rss, chosen_k=k,
               report_command_seconds=t_rep_cmd, build_report_seconds=builds,
               report_mb=html_mb)
    print(f"nmf4d run (with report): {t_run:.1f} s, {rss:.0f} MB, k = {k} (true {truth.k_true})")
    print(f"nmf4d report OUT: {t_rep_cmd:.2f} s; build_report in-process: "
          f"{min(builds):.2f} s (best of 3; {', '.join(f'{b:.2f}' for b in builds)}); "
          f"report.html {html_mb:.1f} MB")
    if not args.skip_paper:
        X = np.ascontiguousarray(data.reshape(60 * 90, -1).astype(np.float32))
        t_paper, losses, iters = paper_sweep(X, list(range(3, 21)))
        res.update(paper_seconds=t_paper, paper_knee=kneed_knee(range(3, 21), losses),
                   ratio=t_paper / t_run)
        print(f"paper sweep alone: {t_paper:.1f} s (knee {res['paper_knee']}); "
              f"nmf4d run end to end is {t_paper / t_run:.1f}x faster")
    res["machine"]["load_after"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1,
                                         default=lambda o: o.item() if hasattr(o, "item") else str(o)))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
