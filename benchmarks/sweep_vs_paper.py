"""Level one side by side: the paper's approach vs nmf4d's sketched k sweep.

(a) The paper: scikit-learn ``NMF(init="nndsvd")`` (its defaults otherwise: coordinate
    descent, max_iter=200, tol=1e-4), one independent fit per k = 3..20, the loss
    mean|V - WH| of each, knee with kneed.
(b) nmf4d: one randomized sketch of V shared by every k, HALS fits on the sketch, the
    losses of all k measured on the full V in one pass (``nmf4d.sweep.loss_sweep``),
    on the same objective as (a) (``weighting="none"``), and nmf4d's default
    (Poisson-weighted) sweep with its level-two decision.
(c) optional (``--reference``): full-data nmf4d fits run to convergence for every k,
    to measure how faithful the sketched losses are.

Data: synthetic 96x96 scan of 128x128 patterns, k_true = 8 (7 grains + vacuum).
Usage: ``python benchmarks/sweep_vs_paper.py [--reference] [--small]``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings

import numpy as np


def paper_sweep(X, ks, seed=0):
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    losses, iters = [], []
    t0 = time.perf_counter()
    for k in ks:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m = NMF(n_components=k, init="nndsvd", random_state=seed)
            W = m.fit_transform(X)
        losses.append(float(np.mean(np.abs(X - W @ m.components_), dtype=np.float64)))
        iters.append(int(m.n_iter_))
        print(f"  paper k={k}: {iters[-1]} iterations, loss {losses[-1]:.5f}, "
              f"{time.perf_counter() - t0:.1f} s so far", flush=True)
    return time.perf_counter() - t0, np.array(losses), iters


def kneed_knee(ks, losses):
    from kneed import KneeLocator
    return KneeLocator(list(ks), list(losses), curve="convex", direction="decreasing").knee


def _time_run(data, truth) -> dict:
    """``nmf4d run DATA.npy -o OUT`` with default options (report included), in a
    subprocess of this interpreter: wall seconds, k and the ARI of its labels."""
    import subprocess
    import sys
    import tempfile

    import h5py
    from sklearn.metrics import adjusted_rand_score

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "scan.npy")
        np.save(src, data)
        cmd = [sys.executable, "-m", "nmf4d", "run", src, "-o", os.path.join(tmp, "out"), "-q"]
        t = time.perf_counter()
        subprocess.run(cmd, check=True)
        seconds = time.perf_counter() - t
        with h5py.File(os.path.join(tmp, "out", "results.h5"), "r") as f:
            k = int(f.attrs["k"])
            labels = f["maps/labels"][()]
    outside = ~truth.in_band()
    return {"seconds": seconds, "k": k, "command": "nmf4d run scan.npy -o out -q",
            "ari_outside_bands": float(adjusted_rand_score(truth.labels[outside],
                                                           labels[outside]))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", action="store_true", help="also full-data converged fits")
    ap.add_argument("--reference-k", default="3:20", help="k range of the reference fits "
                    "(MIN:MAX; they take minutes each at full size)")
    ap.add_argument("--reference-max-iter", type=int, default=1000)
    ap.add_argument("--reference-from", default=None, help="reuse (c) from an earlier run's "
                    "JSON (the full-data fits do not depend on the sketch)")
    ap.add_argument("--small", action="store_true", help="48x48 scan of 64x64 (quick check)")
    ap.add_argument("--skip-paper", action="store_true")
    ap.add_argument("--paper-from", default=None, help="reuse (a) from an earlier run's JSON "
                    "(it takes minutes and does not depend on nmf4d)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                  "sweep_vs_paper.json"))
    args = ap.parse_args()

    from nmf4d.config import SweepConfig
    from nmf4d.nmf import InMemoryOperator
    from nmf4d.prepare import load
    from nmf4d.select_k import select
    from nmf4d.sweep import loss_sweep
    from nmf4d.synthetic import make_polycrystal

    scan, pat = ((48, 48), (64, 64)) if args.small else ((96, 96), (128, 128))
    data, truth = make_polycrystal(scan, pat, n_grains=7, vacuum=True, dose=2000, seed=0)
    X = np.ascontiguousarray(data.reshape(scan[0] * scan[1], -1).astype(np.float32))
    ks = list(range(3, 21))
    print(f"data: {scan} scan of {pat} patterns, k_true {truth.k_true}, "
          f"V {X.shape} float32 ({X.nbytes / 1e6:.0f} MB)", flush=True)
    out = {"data": {"scan": scan, "pattern": pat, "k_true": truth.k_true},
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "processor": platform.processor()}, "k": ks}

    op = InMemoryOperator(X)
    # (b) nmf4d, same objective as the paper
    t = time.perf_counter()
    sw = loss_sweep(op, SweepConfig(k_range=(3, 20)), scan_shape=scan, seed=0)
    t_b = time.perf_counter() - t
    out["nmf4d_same_objective"] = {"seconds": t_b, "loss": sw.loss.tolist(),
                                   "starts": sw.starts,
                                   "knee": sw.knee, "kneed_knee": kneed_knee(ks, sw.loss),
                                   "timings": sw.timings, "n_iter": sw.n_iter.tolist()}
    print(f"nmf4d sweep (weighting none): {t_b:.2f} s, knee {sw.knee}", flush=True)
    # nmf4d default: Poisson-weighted, with the level-two decision
    t = time.perf_counter()
    fd = load(data.astype(np.float32), weighting="poisson")
    sp = loss_sweep(fd, SweepConfig(k_range=(3, 20)), seed=0)
    sel = select(sp, fd)
    t_p = time.perf_counter() - t
    out["nmf4d_default"] = {"seconds": t_p, "loss": sp.loss.tolist(), "knee": sp.knee,
                            "chosen_k": sel.k, "timings": sp.timings}
    print(f"nmf4d default sweep + level two (Poisson): {t_p:.2f} s, knee {sp.knee}, "
          f"chosen k {sel.k}", flush=True)

    out["nmf4d_run"] = _time_run(data, truth)
    print(f"nmf4d run end to end (default options, with the report): "
          f"{out['nmf4d_run']['seconds']:.1f} s, k {out['nmf4d_run']['k']}", flush=True)

    if args.paper_from:
        with open(args.paper_from) as f:
            out["paper"] = json.load(f)["paper"]
        out["paper"]["reused_from"] = args.paper_from
    elif not args.skip_paper:
        t_a, la, iters = paper_sweep(X, ks)
        out["paper"] = {"seconds": t_a, "loss": la.tolist(), "n_iter": iters,
                        "knee": kneed_knee(ks, la)}
    if "paper" in out:
        t_a, la, iters = out["paper"]["seconds"], np.array(out["paper"]["loss"]), \
            out["paper"]["n_iter"]
        diff = 100 * (sw.loss / la - 1)
        out["ratio"] = t_a / t_b
        out["ratio_run"] = t_a / out["nmf4d_run"]["seconds"]
        print(f"paper sweep alone / nmf4d run end to end: {out['ratio_run']:.1f}x")
        out["max_loss_excess_percent"] = float(diff.max())
        print(f"\npaper approach: {t_a:.1f} s, knee {out['paper']['knee']}; "
              f"nmf4d: {t_b:.2f} s; speed-up {t_a / t_b:.0f}x")
        print("| k | paper loss (iter) | nmf4d loss | nmf4d vs paper |")
        print("|---|---|---|---|")
        for i, k in enumerate(ks):
            print(f"| {k} | {la[i]:.5f} ({iters[i]}) | {sw.loss[i]:.5f} | {diff[i]:+.2f} % |")

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1, default=str)
    if args.reference or args.reference_from:
        if args.reference_from:
            with open(args.reference_from) as f:
                out["reference"] = json.load(f)["reference"]
            out["reference"]["reused_from"] = args.reference_from
        else:
            lo, hi = (int(v) for v in args.reference_k.split(":"))
            t = time.perf_counter()
            ref = SweepConfig(k_range=(lo, hi), method="full", tol=1e-6,
                              max_iter=args.reference_max_iter)
            r0 = loss_sweep(op, ref, scan_shape=scan, seed=0)
            r1 = loss_sweep(fd, ref, seed=0)
            out["reference"] = {"seconds": time.perf_counter() - t, "k": list(range(lo, hi + 1)),
                                "loss_none": r0.loss.tolist(), "loss_poisson": r1.loss.tolist(),
                                "n_iter_none": r0.n_iter.tolist(),
                                "n_iter_poisson": r1.n_iter.tolist()}
        R = out["reference"]
        idx = [ks.index(k) for k in R["k"]]
        ref_l, refp_l = np.array(R["loss_none"]), np.array(R["loss_poisson"])
        out["reference"]["max_diff_percent_none"] = float(
            np.max(np.abs(100 * (sw.loss[idx] / ref_l - 1))))
        out["reference"]["max_diff_percent_poisson"] = float(
            np.max(np.abs(100 * (sp.loss[idx] / refp_l - 1))))
        print("\n| k | full-data converged (none) | sketch (none) | diff | "
              "full-data converged (Poisson) | sketch (Poisson) | diff |")
        print("|---|---|---|---|---|---|---|")
        for j, i in enumerate(idx):
            print(f"| {ks[i]} | {ref_l[j]:.5f} ({R['n_iter_none'][j]}) | {sw.loss[i]:.5f} | "
                  f"{100 * (sw.loss[i] / ref_l[j] - 1):+.2f} % | {refp_l[j]:.5f} "
                  f"({R['n_iter_poisson'][j]}) | {sp.loss[i]:.5f} | "
                  f"{100 * (sp.loss[i] / refp_l[j] - 1):+.2f} % |")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1, default=str)
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
