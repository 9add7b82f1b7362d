"""Compare two nmf4d results folders (or two trees of them): is the behaviour the same?

A refactor must leave every number as it was. This script pairs the ``results.h5`` files of
two folders (a single run folder, or a tree of run folders with the same relative paths)
and compares what a user gets: the chosen k, the labels, the components, the weights, the
level-one losses and knee, the level-two verdicts, the overlap maps and the background
components. Arrays are compared exactly and, where they differ, by their largest relative
difference; the exit status is 0 only if every pair agrees within ``--rtol``.

Usage: ``python benchmarks/compare_results.py BEFORE AFTER [--rtol 0]``
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np

#: Datasets compared in every pair (when present in either file).
DATASETS = ("components", "weights", "labels", "sweep/k", "sweep/loss", "sweep/rel_error",
            "iqa/k", "iqa/redundant", "overlap/ratio", "overlap/partner", "overlap/masks",
            "clusters/raw_mean", "clusters/nmf_pattern", "clusters/count")
#: Root attributes compared in every pair.
ATTRS = ("k", "background", "n_iter", "relative_error")


def _pairs(before: Path, after: Path) -> list[tuple[str, Path, Path]]:
    if (before / "results.h5").is_file():
        return [(".", before / "results.h5", after / "results.h5")]
    out = []
    for path in sorted(before.rglob("results.h5")):
        rel = path.parent.relative_to(before)
        out.append((str(rel), path, after / rel / "results.h5"))
    return out


def _rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    scale = max(float(np.max(np.abs(a))) if a.size else 0.0, 1e-300)
    return float(np.max(np.abs(a - b)) / scale) if a.size else 0.0


def compare_files(a_path: Path, b_path: Path, *, rtol: float = 0.0) -> list[str]:
    """Differences between two results files, one line each (empty: the same)."""
    problems = []
    with h5py.File(a_path, "r") as fa, h5py.File(b_path, "r") as fb:
        for key in ATTRS:
            va, vb = fa.attrs.get(key), fb.attrs.get(key)
            if va is None and vb is None:
                continue
            if va is None or vb is None:
                problems.append(f"attr {key}: only in one file")
                continue
            va, vb = np.atleast_1d(va), np.atleast_1d(vb)
            if va.shape != vb.shape or (not np.array_equal(va, vb)
                                        and _rel_diff(va, vb) > rtol):
                problems.append(f"attr {key}: {va.tolist()} != {vb.tolist()}")
        for name in DATASETS:
            ina, inb = name in fa, name in fb
            if not ina and not inb:
                continue
            if ina != inb:
                problems.append(f"{name}: only in one file")
                continue
            da, db = fa[name][()], fb[name][()]
            if da.shape != db.shape:
                problems.append(f"{name}: shape {da.shape} != {db.shape}")
            elif not np.array_equal(da, db):
                if da.dtype.kind in "biu" or _rel_diff(da, db) > rtol:
                    problems.append(f"{name}: differs (max relative difference "
                                    f"{_rel_diff(da, db):.3g})")
        for key in ("knee", "window"):
            va = fa["sweep"].attrs.get(key) if "sweep" in fa else None
            vb = fb["sweep"].attrs.get(key) if "sweep" in fb else None
            if (va is None) != (vb is None) or (va is not None and not np.array_equal(va, vb)):
                problems.append(f"sweep@{key}: {va} != {vb}")
        ca = fa["iqa"].attrs.get("chosen_k") if "iqa" in fa else None
        cb = fb["iqa"].attrs.get("chosen_k") if "iqa" in fb else None
        if ca != cb:
            problems.append(f"iqa@chosen_k: {ca} != {cb}")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--rtol", type=float, default=0.0,
                    help="largest relative difference accepted in float arrays (default 0)")
    args = ap.parse_args(argv)
    pairs = _pairs(args.before, args.after)
    if not pairs:
        print(f"no results.h5 under {args.before}", file=sys.stderr)
        return 2
    bad = 0
    for name, a, b in pairs:
        if not b.is_file():
            print(f"{name}: missing in {args.after}")
            bad += 1
            continue
        problems = compare_files(a, b, rtol=args.rtol)
        with h5py.File(a, "r") as f:
            k = int(f.attrs["k"])
        print(f"{name}: k = {k}: " + ("identical" if not problems else "; ".join(problems)))
        bad += bool(problems)
    print(f"{len(pairs) - bad}/{len(pairs)} results agree"
          + (f" (rtol {args.rtol:g})" if args.rtol else " exactly"))
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
