"""Filters compared (issue: preprocessing that earns its place).

1. On a low-dose synthetic scan (counting noise dominant): for raw, mean3, pca, denoise —
   mean NSD of the clusters' representative patterns, PSNR of the filtered data against
   the noise-free truth (per pattern, both scaled by the clean pattern's maximum, mean over
   positions), chosen k and seconds.
2. On the low-dose cases of the decision suite: the chosen k of each filter.

Run:  python benchmarks/filters.py [--filters raw,mean3,pca,denoise]
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def psnr_to_clean(x, clean):
    from nmf4d import iqa

    c = clean.reshape(-1, *clean.shape[2:]).astype(np.float64)
    f = x.reshape(-1, *x.shape[2:]).astype(np.float64)
    m = c.max(axis=(1, 2), keepdims=True)
    m[m <= 0] = 1.0
    return float(np.mean(iqa.psnr(np.clip(f / m, 0, None), c / m, data_range=1.0)))


def main():
    from nmf4d.pipeline import analyse
    from nmf4d.config import AnalysisConfig, PreprocessConfig
    from nmf4d.filters import FILTERS
    from nmf4d.preprocess import preprocess
    from nmf4d.synthetic import make_polycrystal, suite_case

    ap = argparse.ArgumentParser()
    ap.add_argument("--filters", default="raw,mean3,pca,denoise")
    args = ap.parse_args()
    names = [n for n in args.filters.split(",") if n in FILTERS]
    data, truth = make_polycrystal((32, 32), (64, 64), n_grains=5, dose=200, seed=1,
                                   return_clean=True)
    print(f"low-dose scan: 32x32 of 64x64, 5 grains + vacuum (k_true {truth.k_true}), "
          "dose 200 counts/pattern\n")
    print("| filter | mean NSD | PSNR vs clean (dB) | chosen k | filter s | analysis s |")
    print("|---|---|---|---|---|---|")
    for n in names:
        cfg = PreprocessConfig(filter=n)
        t = time.perf_counter()
        x, _, _ = preprocess(data, cfg)
        tf = time.perf_counter() - t
        t = time.perf_counter()
        a = analyse(x)
        ta = time.perf_counter() - t
        print(f"| {n} | {np.mean(a.clusters['nsd']):.4f} | {psnr_to_clean(x, truth.clean):.2f} | "
              f"{a.k} | {tf:.1f} | {ta:.1f} |", flush=True)
    print("\nlow-dose cases of the decision suite: chosen k per filter")
    cases = ["k3-vac-noisy", "k6-very-noisy", "k7-noisy", "k10-noisy"]
    print("| case | k_true | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for c in cases:
        d, tr = suite_case(c)
        ks = []
        for n in names:
            ks.append(analyse(d, AnalysisConfig.from_flat(filter=n)).k)
        print(f"| {c} | {tr.k_true} | " + " | ".join(str(k) for k in ks) + " |", flush=True)


if __name__ == "__main__":
    main()
