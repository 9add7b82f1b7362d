"""Out-of-core run: a synthetic scan far larger than the memory budget, written as zarr.

(a) Writes a 256x256 scan of 128x128 patterns (65,536 patterns, 4.3 GB as float32) with
    `nmf4d.synthetic.write_polycrystal_zarr` (n_grains=8, vacuum, dose 2000, seed 0) block
    by block, unless it is already there, and times it. The truth (labels, ratio, ...) is
    kept beside it in ``DATA.truth.npz``.
(b) Runs ``/usr/bin/time -v nmf4d run DATA.zarr -o OUT --overwrite --memory 2GB -q`` and
    prints a markdown table: size on disk and as float32, memory budget, wall time, peak
    RSS, chosen k vs k_true, ARI of the labels vs the truth.

Run:  python benchmarks/out_of_core.py [--scan 256] [--pattern 128] [--memory 2GB]
          [--out /tmp/ooc] [--small] [--no-memory-flag] [-- EXTRA nmf4d run OPTIONS]
``--small``: 64x64 scan of 64x64 patterns, a quick check. Needs /usr/bin/time (GNU time:
``apt-get install time``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TRUTH_FIELDS = ("labels", "secondary", "ratio", "patterns", "fractions")


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000.0
    return str(n)


def folder_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def ensure_dataset(data: Path, scan: int, pattern: int, chunks, gen: dict):
    """Write the dataset and its truth unless both are there; return (truth, seconds).

    ``gen``: options of ``write_polycrystal_zarr`` (layout options and ``dtype``)."""
    from nmf4d.synthetic import write_polycrystal_zarr

    truth_file = data.with_name(data.name + ".truth.npz")
    if data.exists() and truth_file.exists():
        t = np.load(truth_file)
        return {k: t[k] for k in t.files}, None
    t0 = time.perf_counter()
    truth = write_polycrystal_zarr(data, (scan, scan), (pattern, pattern), chunks=chunks,
                                   overwrite=True, progress=True, **gen)
    seconds = time.perf_counter() - t0
    fields = {k: getattr(truth, k) for k in TRUTH_FIELDS}
    fields.update(k_true=np.int64(truth.k_true), vacuum_index=np.int64(truth.vacuum_index))
    tmp = truth_file.with_name(truth_file.name + ".tmp.npz")
    np.savez(tmp, **fields)
    os.replace(tmp, truth_file)
    return fields, seconds


def nmf4d_command() -> str:
    here = Path(sys.executable).parent / "nmf4d"
    found = str(here) if here.exists() else shutil.which("nmf4d")
    if not found:
        sys.exit("cannot find the nmf4d command (pip install -e .)")
    return found


def parse_time_v(stderr: str) -> tuple[float | None, int | None]:
    """Wall seconds and peak RSS (bytes) from GNU time -v's report."""
    wall = rss = None
    m = re.search(r"Elapsed \(wall clock\) time.*\):\s*([\d:.]+)", stderr)
    if m:
        wall = 0.0
        for part in m.group(1).split(":"):
            wall = wall * 60 + float(part)
    m = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", stderr)
    if m:
        rss = int(m.group(1)) * 1024
    return wall, rss


def read_results(path: Path) -> dict:
    import h5py

    with h5py.File(path, "r") as f:
        out = {"k": int(f.attrs["k"]), "labels": f["labels"][()],
               "timings": dict(f["timings"].attrs) if "timings" in f else {},
               "execution": {k: (v.item() if hasattr(v, "item") else v)
                             for k, v in f["execution"].attrs.items()}
               if "execution" in f else {},
               "relative_error": float(f.attrs.get("relative_error", np.nan))}
        if "sweep" in f:
            out["knee"] = int(f["sweep"].attrs["knee"])
        if "input_info" in f.attrs:
            out["input_info"] = json.loads(f.attrs["input_info"])
    return out


def run_timed(cmd: list[str]) -> tuple[subprocess.CompletedProcess, float | None, int | None]:
    """Run ``/usr/bin/time -v CMD``; returns (process, wall seconds, peak RSS bytes)."""
    timer = "/usr/bin/time"
    if not os.path.exists(timer):
        sys.exit("/usr/bin/time not found: apt-get install -y time")
    proc = subprocess.run([timer, "-v", *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    wall, rss = parse_time_v(proc.stderr)
    return proc, wall, rss


def failure_tail(proc: subprocess.CompletedProcess, n: int = 15) -> str:
    """The last lines of a failed command's stderr, before time's report."""
    return "\n".join(proc.stderr.split("\tCommand being timed")[0].strip().splitlines()[-n:])


def score(truth: dict, labels) -> tuple[float, float]:
    """ARI of ``labels`` vs the truth over all positions and outside the overlap bands."""
    from sklearn.metrics import adjusted_rand_score

    t_lab = np.asarray(truth["labels"]).ravel()
    labels = np.asarray(labels).ravel()
    pure = np.asarray(truth["ratio"]).ravel() == 0
    return (float(adjusted_rand_score(t_lab, labels)),
            float(adjusted_rand_score(t_lab[pure], labels[pure])))


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="options after -- go to `nmf4d run` unchanged")
    ap.add_argument("--scan", type=int, default=256, help="scan side (default 256)")
    ap.add_argument("--pattern", type=int, default=128, help="pattern side (default 128)")
    ap.add_argument("--memory", default="2GB", help="memory budget for nmf4d run (default 2GB)")
    ap.add_argument("--out", default="/tmp/ooc", help="working folder (default /tmp/ooc)")
    ap.add_argument("--small", action="store_true", help="64x64 scan of 64x64 patterns")
    ap.add_argument("--no-memory-flag", action="store_true",
                    help="do not pass --memory to nmf4d run (older nmf4d)")
    ap.add_argument("--chunks", default="8,64", help="scan chunks Y,X of the zarr (default 8,64)")
    ap.add_argument("--skip-run", action="store_true", help="only write the dataset")
    args = ap.parse_args(argv)
    if args.small:
        args.scan, args.pattern = 64, 64
    chunks = tuple(int(c) for c in args.chunks.split(","))
    gen = dict(n_grains=8, vacuum=True, dose=2000.0, seed=0)

    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    tag = f"{args.scan}x{args.scan}_{args.pattern}x{args.pattern}"
    data = work / f"poly_{tag}_s{gen['seed']}.zarr"
    result = work / f"result_{tag}"

    truth, gen_seconds = ensure_dataset(data, args.scan, args.pattern, chunks, gen)
    n_bytes32 = args.scan ** 2 * args.pattern ** 2 * 4
    on_disk = folder_size(data)
    print(f"dataset: {data} ({'written in %.1f s' % gen_seconds if gen_seconds is not None else 'already present'})",
          file=sys.stderr)
    if args.skip_run:
        return 0

    cmd = [nmf4d_command(), "run", str(data), "-o", str(result), "--overwrite"]
    if not args.no_memory_flag:
        cmd += ["--memory", args.memory]
    cmd += ["-q", *extra]
    print("running:", " ".join(cmd), file=sys.stderr)
    proc, wall, rss = run_timed(cmd)
    if proc.returncode != 0:
        print(failure_tail(proc), file=sys.stderr)
        print(f"nmf4d run failed (exit {proc.returncode}) after {wall} s", file=sys.stderr)
        return proc.returncode or 1

    res = read_results(result / "results.h5")
    ari, ari_pure = score(truth, res["labels"])
    k_true = int(truth["k_true"])

    rows = [
        ("dataset", f"{args.scan}x{args.scan} scan of {args.pattern}x{args.pattern} patterns "
                    f"({args.scan ** 2:,} patterns), zarr chunks {chunks[0]}x{chunks[1]}"),
        ("generation (write_polycrystal_zarr)",
         f"{gen_seconds:.1f} s" if gen_seconds is not None else "already present"),
        ("size on disk", human(on_disk)),
        ("size as float32", human(n_bytes32)),
        ("memory budget", "not passed (--no-memory-flag)" if args.no_memory_flag else args.memory),
        ("extra options", " ".join(extra) or "none"),
        ("wall time (nmf4d run)", f"{wall:.1f} s" if wall is not None else "?"),
        ("peak RSS", human(rss) if rss is not None else "?"),
        ("chosen k / k_true", f"{res['k']} / {k_true}" + (f" (knee {res['knee']})" if "knee" in res else "")),
        ("ARI, all positions", f"{ari:.3f}"),
        ("ARI, outside overlap bands", f"{ari_pure:.3f}"),
    ]
    for key, val in res["timings"].items():
        rows.append((f"timing: {key}", f"{val:.2f} s"))
    print("| quantity | value |\n|---|---|")
    for key, val in rows:
        print(f"| {key} | {val} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
