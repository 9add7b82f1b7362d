"""Per-iteration cost of the full-data refinement against the hardware limit.

Measures on this machine, on V of a 96x96 scan of 128x128 patterns (9216 x 16384 float32,
604 MB), best of several repeats:

- read bandwidth: one pass over V (``V @ ones``, a GEMV that reads V once);
- the two skinny products a HALS iteration needs, ``H @ V.T`` and ``Wt @ V`` (k = 8);
- nmf4d's full-data HALS iteration (fused per row block: weights update and ``Wt @ V``
  from one read of each block; classical HALS, one sweep per pass, the refinement's
  setting; with and without the orthogonality penalty of the final fit).

Reports per-iteration time / (2 x read time) and / (the two products).
Usage: ``python benchmarks/bench_iteration.py [--small]``.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def best(fn, repeat=5):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                  "bench_iteration.json"))
    args = ap.parse_args()
    from nmf4d.nmf import InMemoryOperator, apply_scales, hals, initialise, poisson_scales
    from nmf4d.synthetic import make_polycrystal

    scan, pat = ((48, 48), (64, 64)) if args.small else ((96, 96), (128, 128))
    data, _ = make_polycrystal(scan, pat, n_grains=7, vacuum=True, dose=2000, seed=0)
    X = np.ascontiguousarray(data.reshape(scan[0] * scan[1], -1).astype(np.float32))
    Xs = np.ascontiguousarray(apply_scales(X, *poisson_scales(X)))
    del data
    n, p = Xs.shape
    k = args.k
    ones = np.ones(p, np.float32)
    t_read = best(lambda: Xs @ ones)
    rng = np.random.default_rng(0)
    H = rng.random((k, p)).astype(np.float32)
    Wt = rng.random((k, n)).astype(np.float32)
    t_xht = best(lambda: H @ Xs.T)
    t_wtx = best(lambda: Wt @ Xs)
    op = InMemoryOperator(Xs)
    W0, H0 = initialise(op, k, scan_shape=scan)
    res = {}
    for name, ortho in (("hals", 0.0), ("hals+ortho", 0.1)):
        iters = 20
        def run():
            hals(op, W0.copy(), H0.copy(), max_iter=iters, tol=0.0, min_iter=iters,
                 inner=1, ortho=ortho)
        res[name] = best(run, repeat=3) / iters
    gb = Xs.nbytes / 1e9
    out = {"shape": [n, p], "k": k, "bytes": Xs.nbytes, "read_s": t_read,
           "read_GBps": gb / t_read, "x_ht_s": t_xht, "wt_x_s": t_wtx,
           "x_ht_GFLOPs": 2 * n * p * k / t_xht / 1e9, "wt_x_GFLOPs": 2 * n * p * k / t_wtx / 1e9,
           "iteration_s": res, "cpus": os.cpu_count()}
    print(f"V: {n} x {p} float32 ({gb:.2f} GB), k = {k}, {os.cpu_count()} CPUs")
    print(f"read pass (V @ ones): {t_read * 1e3:.1f} ms = {gb / t_read:.1f} GB/s")
    print(f"H @ V.T: {t_xht * 1e3:.1f} ms ({out['x_ht_GFLOPs']:.1f} GFLOP/s); "
          f"Wt @ V: {t_wtx * 1e3:.1f} ms ({out['wt_x_GFLOPs']:.1f} GFLOP/s)")
    for name, t in res.items():
        print(f"{name}: {t * 1e3:.1f} ms per iteration = {t / (2 * t_read):.2f} x two read "
              f"passes = {t / (t_xht + t_wtx):.2f} x the two products")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
