"""Decision suite: does ``--k auto`` find k_true on 12 synthetic scans?

Issue target: k chosen = k_true on at least 11 of 12 and within +-1 on all; ARI >= 0.95
outside overlap bands; overlap IoU at threshold 0.75 >= 0.7.

Run:  python benchmarks/decision_suite.py [--cases NAME ...] [--k-range 2:20] [--out DIR]
Prints a markdown table (k_true, knee, chosen k, ARI, IoU, min cosine of the true patterns
to their Hungarian-matched components, seconds). ``--out DIR`` also writes each case's
results folder (DIR/<case>/results.h5), e.g. for ``benchmarks/compare_results.py``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def evaluate(name, k_range="2:20", seed_offset=0, out=None, **options):
    from sklearn.metrics import adjusted_rand_score

    from nmf4d.config import AnalysisConfig
    from nmf4d.pipeline import analyse
    from nmf4d.synthetic import DECISION_SUITE, suite_case

    base = next(c["seed"] for c in DECISION_SUITE if c["name"] == name)
    data, truth = suite_case(name, seed=base + seed_offset)
    t = time.perf_counter()
    a = analyse(data, AnalysisConfig.from_flat(k="auto", k_range=k_range, **options))
    seconds = time.perf_counter() - t
    if out is not None:
        from pathlib import Path

        from nmf4d.results import write_results
        folder = Path(out) / name
        folder.mkdir(parents=True, exist_ok=True)
        write_results(folder / "results.h5", a, input_path=f"suite:{name}")
    band = truth.in_band()
    ari = adjusted_rand_score(truth.labels[~band], a.labels[~band])
    tm = truth.overlap_mask(0.75)
    pm = a.ratio >= 0.75
    union = (tm | pm).sum()
    iou = float((tm & pm).sum() / union) if union else 1.0
    mincos = float("nan")
    if a.k == truth.k_true:      # patterns: Hungarian-matched cosine to the truth
        from scipy.optimize import linear_sum_assignment

        P = truth.patterns.reshape(truth.k_true, -1)
        C = a.components.reshape(a.k, -1)
        cos = (C / np.linalg.norm(C, axis=1, keepdims=True)) @ \
            (P / np.linalg.norm(P, axis=1, keepdims=True)).T
        r, c = linear_sum_assignment(-cos)
        mincos = float(cos[r, c].min())
    return dict(name=name, k_true=truth.k_true, knee=a.sweep.knee, chosen=a.k, ari=ari,
                iou=iou, mincos=mincos, seconds=seconds, n_true_overlap=int(tm.sum()))


def main():
    from nmf4d.synthetic import DECISION_SUITE

    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", nargs="*", default=[c["name"] for c in DECISION_SUITE])
    ap.add_argument("--k-range", default="2:20")
    ap.add_argument("--ortho", type=float, default=None, help="override the NMF ortho penalty")
    ap.add_argument("--seed-offset", type=int, default=0,
                    help="draw every case with seed + offset (held-out check of the rule)")
    ap.add_argument("--out", default=None, help="also write each case's results folder here")
    args = ap.parse_args()
    rows = []
    print("| case | k_true | knee | chosen k | ARI | IoU@0.75 | min cos | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.cases:
        opts = {} if args.ortho is None else {"ortho": args.ortho}
        r = evaluate(name, args.k_range, args.seed_offset, out=args.out, **opts)
        rows.append(r)
        print(f"| {r['name']} | {r['k_true']} | {r['knee']} | {r['chosen']} | {r['ari']:.3f} | "
              f"{r['iou']:.3f} | {r['mincos']:.3f} | {r['seconds']:.1f} |", flush=True)
    exact = sum(r["chosen"] == r["k_true"] for r in rows)
    within = sum(abs(r["chosen"] - r["k_true"]) <= 1 for r in rows)
    knee_exact = sum(r["knee"] == r["k_true"] for r in rows)
    print(f"\nchosen k exact: {exact}/{len(rows)}; within +-1: {within}/{len(rows)}; "
          f"knee alone exact: {knee_exact}/{len(rows)}; "
          f"min ARI {min(r['ari'] for r in rows):.3f}; min IoU {min(r['iou'] for r in rows):.3f}; "
          f"min pattern cosine {min(r['mincos'] for r in rows):.3f}; "
          f"total {sum(r['seconds'] for r in rows):.0f} s")


if __name__ == "__main__":
    main()
