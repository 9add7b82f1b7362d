"""Benchmark: nmf4d's HALS solver against scikit-learn's coordinate descent.

Issue target: on a synthetic 64x64 scan of 128x128 patterns at k = 8, nmf4d reaches a
Frobenius loss no higher than ``sklearn.decomposition.NMF(solver="cd", init="nndsvda")``
run to convergence, in at most half its wall time.

Run:  python benchmarks/bench_nmf.py [--scan 64] [--pattern 128] [--k 8] [--repeat 1]
"""
from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scan", type=int, default=64)
    ap.add_argument("--pattern", type=int, default=128)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--sk-tol", type=float, default=1e-5)
    ap.add_argument("--sk-max-iter", type=int, default=2000)
    ap.add_argument("--tol", type=float, default=1e-6, help="nmf4d's tolerance")
    args = ap.parse_args()

    from sklearn.decomposition import NMF as SkNMF
    from threadpoolctl import threadpool_info

    from nmf4d.nmf import non_negative_factorization
    from nmf4d.synthetic import make_polycrystal

    data, truth = make_polycrystal((args.scan, args.scan), (args.pattern, args.pattern),
                                   n_grains=args.k - 1, vacuum=True, seed=0)
    X = data.reshape(args.scan * args.scan, -1).astype(np.float32)
    normX = np.linalg.norm(X.astype(np.float64))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"BLAS: {[i.get('internal_api') for i in threadpool_info()]}")
    print(f"X: {X.shape} float32 ({X.nbytes / 1e6:.0f} MB), k = {args.k}, k_true = {truth.k_true}")

    def frob(W, H):
        err = 0.0
        for s in range(0, X.shape[0], 512):
            R = X[s:s + 512].astype(np.float64) - W[s:s + 512].astype(np.float64) @ H.astype(np.float64)
            err += float((R * R).sum())
        return np.sqrt(err)

    # one pass over X: read bandwidth reference
    t = time.perf_counter(); _ = X.sum(dtype=np.float32); t_pass = time.perf_counter() - t

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        sk = SkNMF(args.k, solver="cd", init="nndsvda", tol=args.sk_tol,
                   max_iter=args.sk_max_iter, random_state=0)
        W_sk = sk.fit_transform(X)
        t_sk = time.perf_counter() - t
    e_sk = frob(W_sk, sk.components_)

    results = {}
    for init in ("spa", "nndsvda"):
        t = time.perf_counter()
        r = non_negative_factorization(X, args.k, init=init, seed=0, tol=args.tol, max_iter=1000)
        t_us = time.perf_counter() - t
        results[init] = (t_us, frob(r.weights.T, r.components), r.n_iter)

    conv = "converged" if sk.n_iter_ < args.sk_max_iter else "NOT converged"
    print(f"\nscikit-learn cd/nndsvda tol={args.sk_tol} ({conv}): {t_sk:7.2f} s, {sk.n_iter_} iterations, "
          f"||X-WH||_F = {e_sk:.6e} (relative {e_sk / normX:.6f})")
    for init, (t_us, e_us, it) in results.items():
        print(f"nmf4d HALS init={init:8s}:        {t_us:7.2f} s, {it} iterations, "
              f"||X-WH||_F = {e_us:.6e} (relative {e_us / normX:.6f}); "
              f"time ratio {t_us / t_sk:.3f}, loss ratio {e_us / e_sk:.9f} "
              f"({'<=' if e_us <= e_sk else '>'} scikit-learn's by {abs(e_us - e_sk):.3e})")
    print(f"one read pass over X: {t_pass * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
