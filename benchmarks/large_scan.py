"""10^5 patterns from disk to report (issue #15): `nmf4d run` on a 316x316 scan of 128x128
uint16 patterns, in memory (default options) and streamed (`--memory 2GB`).

(a) Writes the scan once with `nmf4d.synthetic.write_polycrystal_zarr(path, (316, 316),
    (128, 128), dtype="uint16", n_grains=8, vacuum=True, dose=2000, seed=0,
    chunks=(8, 64))` into ``--data-dir`` (default /work/perf_data, outside the repository),
    its truth beside it (``DATA.truth.npz``; reuses `out_of_core.ensure_dataset`).
(b) For each configuration runs ``/usr/bin/time -v nmf4d run DATA.zarr -o OUT --overwrite
    -q [options]`` in a subprocess (the `nmf4d` of this interpreter; set PYTHONPATH to test
    a source tree), parses wall time and peak RSS, reads results.h5 (k, labels, stage
    timings, execution mode and its reason) and scores the labels against the truth (ARI
    over all positions and outside the overlap bands).
(c) Prints a markdown table (with the load average before and after each run: the
    machine may be shared) and writes JSON to ``benchmarks/results/large_scan.json``.

Run:  PYTHONPATH=src python benchmarks/large_scan.py [--configs default,2GB] [--repeat 1]
          [--scan 316] [--pattern 128] [--data-dir /work/perf_data] [--out JSON]
A configuration is ``default`` (no option) or a memory budget such as ``2GB``; more
options for every run go after ``--``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from out_of_core import (  # noqa: E402  (a sibling script, not a package)
    ensure_dataset,
    failure_tail,
    folder_size,
    human,
    nmf4d_command,
    read_results,
    run_timed,
    score,
)

TARGETS = {"default": {"wall": 90.0, "rss": 8e9}, "2GB": {"wall": 150.0, "rss": 2e9}}


def run_config(data: Path, out: Path, config: str, extra: list[str], truth: dict) -> dict:
    """One timed `nmf4d run` of ``data`` and what it gave."""
    cmd = [nmf4d_command(), "run", str(data), "-o", str(out), "--overwrite", "-q"]
    if config != "default":
        cmd += ["--memory", config]
    cmd += extra
    load_before = os.getloadavg()[0]
    proc, wall, rss = run_timed(cmd)
    row = {"config": config, "command": " ".join(["nmf4d", *cmd[1:]]), "wall_s": wall,
           "peak_rss_bytes": rss, "load_before": load_before, "load_after": os.getloadavg()[0],
           "returncode": proc.returncode}
    if proc.returncode != 0:
        row["error"] = failure_tail(proc)
        return row
    res = read_results(out / "results.h5")
    ari, ari_pure = score(truth, res["labels"])
    row.update(k=res["k"], k_true=int(truth["k_true"]), knee=res.get("knee"), ari_all=ari,
               ari_outside_bands=ari_pure, timings=res["timings"],
               execution=res["execution"], relative_error=res["relative_error"])
    return row


def table(rows: list[dict]) -> str:
    """Markdown: one column per run."""
    keys = sorted({k for r in rows for k in r.get("timings", {})})
    head = "| quantity | " + " | ".join(f"{r['config']} #{r['run']}" for r in rows) + " |"
    lines = [head, "|---|" + "---|" * len(rows)]

    def line(name, fmt):
        lines.append(f"| {name} | " + " | ".join(fmt(r) for r in rows) + " |")
    line("wall time", lambda r: f"{r['wall_s']:.1f} s" if r.get("wall_s") else "?")
    line("peak RSS", lambda r: human(r["peak_rss_bytes"]) if r.get("peak_rss_bytes") else "?")
    line("k / k_true", lambda r: f"{r.get('k', '-')} / {r.get('k_true', '-')}")
    line("ARI outside overlap bands", lambda r: f"{r['ari_outside_bands']:.3f}"
         if "ari_outside_bands" in r else "-")
    line("ARI all positions", lambda r: f"{r['ari_all']:.3f}" if "ari_all" in r else "-")
    line("mode", lambda r: str(r.get("execution", {}).get("mode", "-")))
    line("blocks per pass", lambda r: str(r.get("execution", {}).get("blocks", "-")))
    line("load average before / after", lambda r: f"{r['load_before']:.1f} / "
         f"{r['load_after']:.1f}")
    for key in keys:
        line(f"timing: {key}", lambda r, key=key: f"{r['timings'][key]:.2f} s"
             if key in r.get("timings", {}) else "-")
    line("s per refinement iteration", lambda r: "%.2f" % r["execution"][
        "refine_seconds_per_iteration"] if "execution" in r else "-")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="default,2GB",
                    help="comma-separated: default and/or memory budgets (default: default,2GB)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each configuration")
    ap.add_argument("--scan", type=int, default=316)
    ap.add_argument("--pattern", type=int, default=128)
    ap.add_argument("--data-dir", default="/work/perf_data")
    ap.add_argument("--out", default=str(HERE / "results" / "large_scan.json"))
    ap.add_argument("--skip-run", action="store_true", help="only write the dataset")
    args = ap.parse_args(argv)

    gen = dict(n_grains=8, vacuum=True, dose=2000.0, seed=0, dtype="uint16")
    work = Path(args.data_dir)
    work.mkdir(parents=True, exist_ok=True)
    tag = f"{args.scan}x{args.scan}_{args.pattern}x{args.pattern}_uint16"
    data = work / f"poly_{tag}_s{gen['seed']}.zarr"
    truth, gen_seconds = ensure_dataset(data, args.scan, args.pattern, (8, 64), gen)
    n = args.scan ** 2
    info = {"dataset": str(data), "scan": args.scan, "pattern": args.pattern,
            "patterns": n, "generation": gen, "chunks": [8, 64],
            "written_in_s": gen_seconds, "size_on_disk": folder_size(data),
            "size_uint16": n * args.pattern ** 2 * 2, "size_float32": n * args.pattern ** 2 * 4,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "python": platform.python_version()},
            "date": time.strftime("%Y-%m-%d %H:%M"), "extra_options": extra}
    print(f"dataset: {data}: {n:,} patterns, {human(info['size_on_disk'])} on disk, "
          f"{human(info['size_uint16'])} as uint16, {human(info['size_float32'])} as float32"
          + (f" (written in {gen_seconds:.0f} s)" if gen_seconds else ""), file=sys.stderr)
    if args.skip_run:
        return 0
    rows = []
    for rep in range(args.repeat):
        for config in args.configs.split(","):
            out = work / f"result_{tag}_{config}"
            print(f"run {rep + 1}: {config} (load {os.getloadavg()[0]:.1f})", file=sys.stderr)
            row = run_config(data, out, config, extra, truth)
            row["run"] = rep + 1
            target = TARGETS.get(config)
            if target and row.get("wall_s"):
                row["meets_target"] = bool(row["wall_s"] < target["wall"]
                                           and row["peak_rss_bytes"] < target["rss"])
            rows.append(row)
            if "error" in row:
                print(row["error"], file=sys.stderr)
    print(table(rows))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"info": info, "runs": rows}, f, indent=1, default=str)
    print(f"\nwritten {args.out}", file=sys.stderr)
    return 0 if all(r["returncode"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
