"""Score nmf4d (and the seed paper's knee) on one half of the validation corpus.

Usage::

    python benchmarks/validate.py --half design [--only NAME[,NAME]] [--no-paper]
                                  [--jobs 1] [--cache DIR] [--out FILE]

Build the corpus first (``python benchmarks/corpus/build.py``). For each case:

* nmf4d through ONE adapter, `run_nmf4d` (today ``nmf4d.pipeline.analyse(data,
  k="auto")``): chosen k, labels, overlap ratio, background components, seconds;
* the paper's method: scikit-learn ``NMF(init="nndsvd")`` per k over 2..20 (its
  defaults otherwise), loss mean|V - WH|, knee by ``kneed.KneeLocator(curve="convex",
  direction="decreasing")`` — `sweep_vs_paper.paper_sweep` and ``kneed_knee``. It is
  slow on large scans, so its result is cached in the case folder
  (``paper_sweep.json``) and computed once;
* scores: chosen k and knee vs k_true; ARI (``adjusted_rand_score``) of nmf4d's labels
  vs truth outside overlap bands (truth ratio > 0 excluded); overlap IoU at ratio
  0.75 (predicted ``ratio >= 0.75`` vs true ratio >= 0.75) where the truth has such
  positions; seconds.

Prints a markdown table per generator and a summary (exact / within +-1 / ARI >= 0.9 /
IoU >= 0.6 counts per generator) and writes ``benchmarks/results/validate_<half>.json``.

The held-out half is for reporting a finished rule only: it is refused unless
``--confirm-holdout`` is given.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from corpus.build import DEFAULT_CACHE, case_dir  # noqa: E402
from corpus.case import is_built, load_case  # noqa: E402
from corpus.specs import GENERATORS, cases  # noqa: E402

PAPER_K = (2, 20)
IOU_THRESHOLD = 0.75


def run_nmf4d(data, meta: dict, options: dict | None = None) -> dict:
    """nmf4d on one scan: the only place that calls nmf4d.

    Parameters
    ----------
    data : ndarray of shape (scan_y, scan_x, ky, kx)
    meta : dict
        The case's metadata (calibration etc.; unused by today's call).
    options : dict, optional
        Flat configuration options (``--set``) that replace nmf4d's defaults.

    Returns
    -------
    dict with ``k`` (int), ``labels`` (scan_y, scan_x) int, ``ratio`` (scan_y, scan_x)
    float (second/first weight), ``background`` (list of component indices), ``knee``
    (nmf4d's level-one knee or None).
    """
    from nmf4d.config import AnalysisConfig
    from nmf4d.pipeline import analyse

    a = analyse(np.asarray(data), AnalysisConfig.from_flat(**(options or {})))
    return dict(k=int(a.k), labels=np.asarray(a.labels), ratio=np.asarray(a.ratio),
                background=[int(b) for b in a.background], rank=int(a.rank),
                knee=None if a.sweep is None else a.sweep.knee,
                unsettled=bool(a.decision is not None and a.decision.unsettled),
                counts=None if a.decision is None else
                [[int(r), int(c)] for r, c in zip(a.decision.ranks, a.decision.n_clusters)])


def paper_result(data, folder: Path, recompute: bool = False) -> dict:
    """The paper's sweep and knee for one case, cached in ``folder/paper_sweep.json``."""
    cache = folder / "paper_sweep.json"
    if cache.is_file() and not recompute:
        with open(cache) as f:
            return json.load(f)
    from sweep_vs_paper import kneed_knee, paper_sweep

    sy, sx, ky, kx = data.shape
    X = np.ascontiguousarray(np.asarray(data).reshape(sy * sx, ky * kx), dtype=np.float32)
    hi = min(PAPER_K[1], X.shape[0], X.shape[1])
    ks = list(range(PAPER_K[0], hi + 1))
    with contextlib.redirect_stdout(io.StringIO()):
        seconds, losses, iters = paper_sweep(X, ks)
    knee = kneed_knee(ks, losses)
    out = {"k": ks, "loss": [float(v) for v in losses], "n_iter": [int(i) for i in iters],
           "seconds": float(seconds), "knee": None if knee is None else int(knee),
           "method": "sklearn NMF(init='nndsvd') per k, loss mean|V-WH|, kneed convex/"
                     "decreasing (benchmarks/sweep_vs_paper.py)"}
    tmp = cache.with_suffix(".tmp")
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
    os.replace(tmp, cache)
    return out


def score(truth, res: dict) -> dict:
    """ARI outside bands and IoU at `IOU_THRESHOLD` of one nmf4d result."""
    from sklearn.metrics import adjusted_rand_score

    band = truth.ratio > 0
    ari = float(adjusted_rand_score(truth.labels[~band], res["labels"][~band]))
    tm = truth.ratio >= IOU_THRESHOLD
    iou = None
    if tm.any():
        pm = np.asarray(res["ratio"]) >= IOU_THRESHOLD
        iou = float((tm & pm).sum() / (tm | pm).sum())
    return dict(ari=ari, iou=iou, n_true_overlap=int(tm.sum()))


NMF4D_KEYS = ("nmf4d_seconds", "nmf4d_k", "nmf4d_knee", "nmf4d_background", "ari", "iou",
              "n_true_overlap", "nmf4d_unsettled", "nmf4d_counts")


def evaluate(spec, cache, with_paper=True, recompute_paper=False, reuse=None,
             options=None) -> dict:
    """Everything measured on one case (``reuse``: nmf4d's row from an earlier run)."""
    folder = case_dir(cache, spec)
    case = load_case(folder)
    data = np.asarray(case.data)
    row = dict(name=spec.name, generator=spec.generator, split=spec.split, seed=spec.seed,
               k_true=int(case.truth.k_true), shape=list(data.shape), dtype=str(data.dtype),
               varies=spec.varies, truth_background=list(case.truth.background))
    if reuse is not None:
        row.update({k: reuse.get(k) for k in NMF4D_KEYS})
        row["nmf4d_reused"] = True
    else:
        t = time.perf_counter()
        res = run_nmf4d(data, case.meta, options)
        row["nmf4d_seconds"] = time.perf_counter() - t
        row.update(nmf4d_k=res["k"], nmf4d_knee=res.get("knee"),
                   nmf4d_background=res.get("background"),
                   nmf4d_unsettled=res.get("unsettled", False),
                   nmf4d_counts=res.get("counts"))
        row.update(score(case.truth, res))
    if with_paper:
        p = paper_result(data, folder, recompute_paper)
        row.update(paper_knee=p["knee"], paper_seconds=p["seconds"],
                   paper_loss=p["loss"], paper_k=p["k"])
    return row


def fill_paper_caches(specs, cache, max_entries=None) -> int:
    """Compute the paper's sweep of every case not cached yet, smallest scans first."""
    todo = []
    for s in specs:
        folder = case_dir(cache, s)
        if (folder / "paper_sweep.json").is_file():
            continue
        n = float(np.prod(np.load(folder / "data.npy", mmap_mode="r").shape))
        if max_entries is None or n <= max_entries:
            todo.append((n, s))
    for n, s in sorted(todo, key=lambda t: t[0]):
        folder = case_dir(cache, s)
        t = time.perf_counter()
        p = paper_result(np.load(folder / "data.npy", mmap_mode="r"), folder)
        print(f"{s.name}: paper knee {p['knee']} ({n / 1e6:.0f}M entries, "
              f"{time.perf_counter() - t:.0f} s)", flush=True)
    return 0


def _evaluate_star(args):
    return evaluate(*args)


def _fmt(v, spec="{:.3f}"):
    return "—" if v is None else spec.format(v)


def summarise(rows: list[dict]) -> dict:
    """Counts per generator (and over all)."""
    out = {}
    for gen in list(GENERATORS) + ["all"]:
        rs = [r for r in rows if gen in ("all", r["generator"])]
        if not rs:
            continue
        with_iou = [r for r in rs if r["iou"] is not None]
        with_knee = [r for r in rs if "paper_knee" in r]
        out[gen] = dict(
            cases=len(rs),
            nmf4d_exact=sum(r["nmf4d_k"] == r["k_true"] for r in rs),
            nmf4d_within1=sum(abs(r["nmf4d_k"] - r["k_true"]) <= 1 for r in rs),
            paper_cases=len(with_knee),
            paper_exact=sum(r["paper_knee"] == r["k_true"] for r in with_knee),
            paper_within1=sum(r["paper_knee"] is not None
                              and abs(r["paper_knee"] - r["k_true"]) <= 1 for r in with_knee),
            ari_ge_0_9=sum(r["ari"] >= 0.9 for r in rs),
            iou_cases=len(with_iou),
            iou_ge_0_6=sum(r["iou"] >= 0.6 for r in with_iou),
            median_ari=float(np.median([r["ari"] for r in rs])),
            nmf4d_seconds=float(sum(r["nmf4d_seconds"] for r in rs)),
            paper_seconds=float(sum(r.get("paper_seconds", 0.0) for r in with_knee)))
    return out


def print_tables(rows: list[dict], summary: dict) -> None:
    for gen in GENERATORS:
        rs = [r for r in rows if r["generator"] == gen]
        if not rs:
            continue
        print(f"\n### {gen}\n")
        print("| case | shape | k_true | nmf4d k | paper knee | nmf4d knee | ARI | IoU@0.75 "
              "| nmf4d s | paper s |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rs:
            shp = "x".join(map(str, r["shape"][:2])) + " / " + "x".join(map(str, r["shape"][2:]))
            print(f"| {r['name']} | {shp} | {r['k_true']} | {r['nmf4d_k']} | "
                  f"{_fmt(r.get('paper_knee'), '{}')} | {_fmt(r.get('nmf4d_knee'), '{}')} | "
                  f"{r['ari']:.3f} | {_fmt(r['iou'])} | {r['nmf4d_seconds']:.1f} | "
                  f"{_fmt(r.get('paper_seconds'), '{:.0f}')} |")
    print("\n### summary\n")
    print("| generator | cases | nmf4d exact | nmf4d ±1 | paper knee exact | paper knee ±1 "
          "| ARI ≥ 0.9 | IoU ≥ 0.6 | median ARI |")
    print("|---|---|---|---|---|---|---|---|---|")
    for gen, s in summary.items():
        print(f"| {gen} | {s['cases']} | {s['nmf4d_exact']} | {s['nmf4d_within1']} | "
              f"{s['paper_exact']}/{s['paper_cases']} | {s['paper_within1']}/{s['paper_cases']} | "
              f"{s['ari_ge_0_9']} | {s['iou_ge_0_6']}/{s['iou_cases']} | {s['median_ari']:.3f} |")


def _parse_sets(items) -> dict:
    """``["ortho=0", "k_range=2:30", "heldout=false"]`` -> flat options, numbers as
    int/float, true/false as bool."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--set {item!r}: expected NAME=VALUE")
        if value.lower() in ("true", "false"):
            out[name] = value.lower() == "true"
            continue
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                pass
        out[name] = value
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--half", choices=("design", "holdout", "fresh", "fresh2", "fresh3"),
                    default="design")
    ap.add_argument("--only", default=None)
    ap.add_argument("--no-paper", action="store_true", help="skip the paper's sweep "
                    "(cached results are still reported when present)")
    ap.add_argument("--recompute-paper", action="store_true")
    ap.add_argument("--paper-max-entries", type=float, default=None,
                    help="run the paper's sweep only on scans of at most this many "
                         "data entries (positions x pixels); cached results are reported "
                         "whatever the size")
    ap.add_argument("--paper-only", action="store_true", help="only fill the paper-sweep "
                    "caches (smallest scans first), no nmf4d, no report")
    ap.add_argument("--nmf4d-from", default=None, help="reuse nmf4d's scores from an earlier "
                    "run's JSON (same data, same nmf4d) instead of running it again")
    ap.add_argument("--jobs", type=int, default=1, help="cases run in parallel processes")
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    ap.add_argument("--out", default=None, help="JSON output (default "
                    "benchmarks/results/validate_<half>.json)")
    ap.add_argument("--confirm-holdout", action="store_true",
                    help="allow --half holdout, fresh, fresh2 or fresh3 (only to report a finished rule)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a flat nmf4d option replacing its default (repeatable), e.g. "
                         "--set ortho=0: measure a variant with the same scoring")
    args = ap.parse_args(argv)
    options = _parse_sets(args.set)
    if args.half in ("holdout", "fresh", "fresh2", "fresh3") and not args.confirm_holdout:
        print(f"refusing --half {args.half} without --confirm-holdout: the held-out half is for "
              "reporting a finished rule, not for designing one", file=sys.stderr)
        return 2
    specs = cases(args.half, args.only)
    missing = [s.name for s in specs if not is_built(case_dir(args.cache, s))]
    if missing:
        print(f"not built: {', '.join(missing)} (run benchmarks/corpus/build.py --half "
              f"{args.half})", file=sys.stderr)
        specs = [s for s in specs if s.name not in missing]
    if args.paper_only:
        return fill_paper_caches(specs, args.cache, args.paper_max_entries)
    reuse = {}
    if args.nmf4d_from:
        with open(args.nmf4d_from) as f:
            reuse = {r["name"]: r for r in json.load(f)["cases"]}
    jobs = []
    for s in specs:
        cached = (case_dir(args.cache, s) / "paper_sweep.json").is_file()
        run_paper = not args.no_paper
        if run_paper and args.paper_max_entries is not None and not cached:
            shape = np.load(case_dir(args.cache, s) / "data.npy", mmap_mode="r").shape
            run_paper = float(np.prod(shape)) <= args.paper_max_entries
        jobs.append((s, args.cache, run_paper or cached, args.recompute_paper,
                     reuse.get(s.name), options))
    rows = []
    t0 = time.perf_counter()
    if args.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(args.jobs) as ex:
            for r in ex.map(_evaluate_star, jobs):
                rows.append(r)
                print(f"{r['name']}: k {r['nmf4d_k']} / {r['k_true']}", flush=True)
    else:
        for j in jobs:
            r = evaluate(*j)
            rows.append(r)
            print(f"{r['name']}: k_true {r['k_true']}, nmf4d {r['nmf4d_k']} "
                  f"(knee {r['nmf4d_knee']}), paper knee {r.get('paper_knee', '—')}, "
                  f"ARI {r['ari']:.3f}, IoU {_fmt(r['iou'])}, {r['nmf4d_seconds']:.1f} s",
                  flush=True)
    summary = summarise(rows)
    print_tables(rows, summary)
    out = Path(args.out) if args.out else HERE / "results" / f"validate_{args.half}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    import subprocess

    import nmf4d
    try:
        commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    doc = dict(git_commit=commit, half=args.half, cache=str(args.cache), nmf4d_version=nmf4d.__version__,
               nmf4d_reused_from=args.nmf4d_from,
               adapter=f"nmf4d.pipeline.analyse(data, AnalysisConfig.from_flat(**{options!r}))",
               options=options, paper_k_range=list(PAPER_K),
               iou_threshold=IOU_THRESHOLD,
               machine=dict(cpus=os.cpu_count(), platform=platform.platform()),
               wall_seconds=time.perf_counter() - t0, summary=summary, cases=rows)
    if args.only and out.is_file():      # a partial run updates the cases it ran
        with open(out) as f:
            old = json.load(f)
        keep = {r["name"]: r for r in old.get("cases", [])}
        keep.update({r["name"]: r for r in rows})
        order = [s.name for s in cases(args.half)]
        doc["cases"] = [keep[n] for n in order if n in keep]
        doc["summary"] = summarise(doc["cases"])
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, default=str)
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
