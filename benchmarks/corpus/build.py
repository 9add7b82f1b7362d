"""Build the validation corpus into a cache folder outside the repository.

Usage::

    python benchmarks/corpus/build.py [--half design|holdout|fresh|fresh2|fresh3|both] [--only NAME[,NAME]]
                                      [--cache DIR] [--force] [--list]

Each case goes to ``DIR/<half>/<name>/`` (``data.npy``, ``truth.npz``, ``meta.json``);
cases already there are skipped (``--force`` rebuilds). Every file is a deterministic
function of the case's spec and seed, so a rebuild gives identical bytes (the SHA-256
of each file is listed in ``DIR/<half>/index.json``; build times go to
``DIR/<half>/build_times.json``).

pyxem cases need pyxem, which pins zarr < 3 and so lives in its own environment: when
it cannot be imported here, this script re-runs itself for those cases under the
interpreter named by ``$NMF4D_PYXEM_PYTHON`` (default ``/work/venv-pyxem/bin/python``).

Default cache: ``$NMF4D_CORPUS_CACHE`` or ``/work/corpus_cache``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from corpus import make_case  # noqa: E402
from corpus.case import is_built, save_case  # noqa: E402
from corpus.specs import cases  # noqa: E402

DEFAULT_CACHE = os.environ.get("NMF4D_CORPUS_CACHE", "/work/corpus_cache")
PYXEM_PYTHON = os.environ.get("NMF4D_PYXEM_PYTHON", "/work/venv-pyxem/bin/python")


def case_dir(cache, spec) -> Path:
    """Folder of one case: ``cache/<split>/<name>``."""
    return Path(cache) / spec.split / spec.name


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _update_json(path: Path, entries: dict) -> None:
    old = {}
    if path.is_file():
        with open(path) as f:
            old = json.load(f)
    old.update(entries)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        json.dump(dict(sorted(old.items())), f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def build_one(spec, cache, force=False, reindex=False) -> tuple[str, float | None]:
    """Build one case unless present; returns (status, seconds)."""
    out = case_dir(cache, spec)
    if reindex and not is_built(out):
        raise FileNotFoundError(f"{out} is not built")
    if is_built(out) and (not force or reindex):
        return "present", None
    t = time.perf_counter()
    case = make_case(spec.generator, spec.as_dict(), spec.seed)
    save_case(case, out)
    return "built", time.perf_counter() - t


def _pyxem_here() -> bool:
    from corpus.pyxem_gen import available
    return available()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--half", choices=("design", "holdout", "fresh", "fresh2", "fresh3", "both"),
                    default="both", help="both = design and holdout; fresh, fresh2 and fresh3 are "
                    "built only when asked")
    ap.add_argument("--only", default=None, help="comma-separated case names (exact, or "
                    "substrings / a generator name when nothing matches exactly)")
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    ap.add_argument("--force", action="store_true", help="rebuild cases already present")
    ap.add_argument("--list", action="store_true", help="list the selected cases and exit")
    ap.add_argument("--reindex", action="store_true", help="recompute the SHA-256 of every "
                    "selected case present in index.json")
    ap.add_argument("--no-delegate", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    halves = ("design", "holdout") if args.half == "both" else (args.half,)
    specs = [s for h in halves for s in cases(h, args.only)]
    if args.list:
        for s in specs:
            print(f"{s.split:8s} {s.name:28s} {s.generator:10s} seed {s.seed:5d} "
                  f"k_true {s.k_true}  {s.varies}")
        return 0
    failures = 0
    pyxem_specs = [s for s in specs if s.generator == "pyxem"]
    if pyxem_specs and not args.no_delegate and not args.reindex and not _pyxem_here():
        todo = [s for s in pyxem_specs if args.force or not is_built(case_dir(args.cache, s))]
        for h in halves:
            names = sorted({s.name for s in todo if s.split == h})
            if not names:
                continue
            cmd = [PYXEM_PYTHON, str(Path(__file__).resolve()), "--half", h, "--only",
                   ",".join(names), "--cache", args.cache, "--no-delegate"]
            if args.force:
                cmd.append("--force")
            print(f"pyxem is not importable here: running {len(names)} {h} case(s) under "
                  f"{PYXEM_PYTHON}", flush=True)
            env = dict(os.environ)
            env.pop("PYTHONPATH", None)     # the venv sees its own packages
            r = subprocess.run(cmd, env=env)
            failures += r.returncode != 0
        specs = [s for s in specs if s.generator != "pyxem"]
    times, index = {h: {} for h in halves}, {h: {} for h in halves}
    known = {}
    for h in halves:
        p = Path(args.cache) / h / "index.json"
        known[h] = json.load(open(p)) if p.is_file() else {}
    t_all = time.perf_counter()
    for s in specs:
        try:
            status, sec = build_one(s, args.cache, args.force, args.reindex)
        except Exception as exc:          # report and go on with the other cases
            failures += 1
            print(f"FAILED {s.split}/{s.name}: {type(exc).__name__}: {exc}", flush=True)
            continue
        d = case_dir(args.cache, s)
        mb = (d / "data.npy").stat().st_size / 1e6
        with open(d / "meta.json") as f:
            k = json.load(f)["k_true"]
        msg = f"{s.split}/{s.name}: {status}"
        if sec is not None:
            msg += f" in {sec:.1f} s"
            times[s.split][s.name] = round(sec, 2)
        print(f"{msg}, k_true {k}, {mb:.0f} MB", flush=True)
        if status == "built" or args.reindex or s.name not in known[s.split]:
            index[s.split][s.name] = {name: _sha256(d / name)
                                      for name in ("data.npy", "truth.npz", "meta.json")}
    for h in halves:
        root = Path(args.cache) / h
        if index[h]:
            _update_json(root / "index.json", index[h])
        if times[h]:
            _update_json(root / "build_times.json", times[h])
    print(f"done in {time.perf_counter() - t_all:.0f} s ({failures} failure(s))")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
