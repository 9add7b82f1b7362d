"""Command line: ``nmf4d demo | run | info | report``.

A thin layer over :func:`nmf4d.pipeline.analyse`, :mod:`nmf4d.io` and
:mod:`nmf4d.results`. Exit status: 0 success, 2 bad usage or bad input (one line on
stderr, no traceback), 1 anything else.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ._version import __version__
from .errors import InputError

DEMO = dict(scan_shape=(48, 48), pattern_shape=(64, 64), n_grains=6, vacuum=True,
            overlap_width=4.0, thickness_variation=0.3, dose=2000.0)


def _pair(text, name, sep=","):
    try:
        vals = tuple(int(v) for v in str(text).split(sep))
    except ValueError:
        raise InputError(f"{name} must be integers separated by '{sep}', got {text!r}") from None
    return vals


def _k_arg(text):
    if text == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise InputError(f"--k must be 'auto' or an integer, got {text!r}") from None


def _add_analysis_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, help="output folder (created)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--k", default="auto", help="'auto' (default: both decision levels) or a number")
    p.add_argument("--k-range", default=None, help="MIN:MAX range of k for --k auto "
                   "(default 2:20, capped at the number of patterns)")
    p.add_argument("--bin", type=int, default=1, help="integer binning of the patterns")
    p.add_argument("--crop", default=None, help="Y0,Y1,X0,X1 detector-pixel box")
    p.add_argument("--centre-crop", type=int, default=None, help="square crop of N px around the centre")
    p.add_argument("--mask-radius", type=float, default=None, help="mask the direct beam disc (px, after binning)")
    p.add_argument("--filter", default="raw", help="raw (default), mean3 (3x3 scan-neighbour mean), "
                   "pca (low-rank reconstruction) or denoise (learned autoencoder, needs torch)")
    p.add_argument("--pca-rank", default="auto", help="rank of --filter pca (default auto)")
    p.add_argument("--denoise-epochs", type=int, default=None, help="training epochs of --filter denoise")
    p.add_argument("--denoise-latent", type=int, default=None, help="latent size of --filter denoise")
    p.add_argument("--denoise-batch", type=int, default=None, help="batch size of --filter denoise")
    p.add_argument("--denoise-model", default=None, help="reuse a saved denoiser model (.pt)")
    p.add_argument("--device", default="auto", help="auto (default: a CUDA GPU when torch sees "
                   "one, else the CPU), cpu or cuda: where the denoiser trains and the final "
                   "full-data NMF runs")
    p.add_argument("--scale", default=None, choices=[None, "sqrt", "log"], help="intensity scaling")
    p.add_argument("--normalise", default=None, help="none, sum, max or mean_total")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    p.add_argument("--max-iter", type=int, default=500, help="iteration cap of the final fit")
    p.add_argument("--tol", type=float, default=1e-5, help="relative tolerance of the final fit")
    p.add_argument("--l1-weights", type=float, default=0.0, help="L1 penalty on the weights")
    p.add_argument("--l1-components", type=float, default=0.0, help="L1 penalty on the components")
    p.add_argument("--init", default="spa", help="spa (default), nndsvda, nndsvd or random")
    p.add_argument("--ortho", type=float, default=0.1, help="orthogonality penalty of the final "
                   "fit (default 0.1; 0 for plain NMF)")
    p.add_argument("--weighting", default="poisson", help="poisson (default: equalise counting "
                   "noise before NMF, results in input units) or none")
    p.add_argument("--sweep", default="sketch", choices=["sketch", "full"],
                   help="level-one fits on a shared randomized sketch of the data (default, "
                   "fast; losses measured on the full data) or on the full data")
    p.add_argument("--memory", default=None, help="memory budget, e.g. 2GB (default: half the "
                   "machine's RAM); larger data is streamed from its file block by block")
    p.add_argument("--workers", type=int, default=None, help="start a local dask.distributed "
                   "cluster of N worker processes and compute on it")
    p.add_argument("--scheduler", default=None, help="address of a running dask.distributed "
                   "scheduler (e.g. tcp://host:8786) to compute on")
    p.add_argument("--no-report", action="store_true", help="write results.h5 only")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="nmf4d", description=(
        "4D-STEM orientation/phase clustering by NMF with automatic choice of k."))
    ap.add_argument("--version", action="version", version=f"nmf4d {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run the whole pipeline on the built-in synthetic dataset")
    _add_analysis_options(d)
    r = sub.add_parser("run", help="analyse a 4D-STEM dataset")
    r.add_argument("input", help="file or folder (.npy .zarr .h5/.hdf5 .hspy .zspy .blo .mib .emd .dm4, image folder)")
    r.add_argument("--dataset", default=None, help="dataset path inside an HDF5 file")
    r.add_argument("--scan-shape", default=None, help="Y,X scan shape (image folders, 3D stacks)")
    _add_analysis_options(r)
    i = sub.add_parser("info", help="print format, shape, dtype and sizes without loading data")
    i.add_argument("input")
    i.add_argument("--dataset", default=None)
    i.add_argument("--scan-shape", default=None)
    i.add_argument("--json", action="store_true", help="machine-readable output")
    cf = sub.add_parser("compare-filters", help="level one and NSD for raw, mean3, pca and "
                        "denoise inputs (the paper's Figure 2)")
    cf.add_argument("input", help="file or folder, as for run")
    cf.add_argument("--dataset", default=None)
    cf.add_argument("--scan-shape", default=None)
    cf.add_argument("--filters", default="raw,mean3,pca,denoise",
                    help="comma-separated filters (default raw,mean3,pca,denoise)")
    _add_analysis_options(cf)
    rp = sub.add_parser("report", help="(re)build OUT/report.html from OUT/results.h5")
    rp.add_argument("output", help="an output folder written by run or demo")
    return ap


def _filter_options(args, name, save_dir=None) -> dict | None:
    """Options of filter ``name`` from the command line."""
    if name == "pca":
        rank = args.pca_rank
        if rank != "auto":
            try:
                rank = int(rank)
            except ValueError:
                raise InputError(f"--pca-rank must be 'auto' or an integer, got {rank!r}") from None
        return {"rank": rank, "seed": args.seed}
    if name == "denoise":
        opts = {"seed": args.seed, "device": args.device, "progress": not args.quiet}
        for key in ("epochs", "latent", "batch"):
            val = getattr(args, f"denoise_{key}")
            if val is not None:
                opts["batch_size" if key == "batch" else key] = val
        if args.denoise_model:
            opts["model"] = args.denoise_model
        elif save_dir is not None:
            opts["save_model"] = str(save_dir / "denoiser.pt")
        return opts
    return None


def _preprocess_config(args, save_dir=None):
    from .preprocess import PreprocessConfig

    crop = _pair(args.crop, "--crop") if args.crop else None
    if crop is not None and len(crop) != 4:
        raise InputError(f"--crop needs 4 integers Y0,Y1,X0,X1, got {args.crop!r}")
    return PreprocessConfig(bin=args.bin, crop=crop, centre_crop=args.centre_crop,
                            mask_radius=args.mask_radius, filter=args.filter,
                            filter_options=_filter_options(args, args.filter, save_dir),
                            scale=args.scale, normalise=args.normalise)


def _progress(quiet):
    t0 = time.perf_counter()

    def say(stage, info=None):
        if quiet:
            return
        el = time.perf_counter() - t0
        if stage == "sweep":
            return  # the progress bar shows it
        elif stage == "select":
            print(f"[{el:6.1f}s] level two: chose k = {info.k}", file=sys.stderr)
        elif stage == "refine":
            print(f"[{el:6.1f}s] final fit: {info.n_iter} iterations, relative error "
                  f"{info.relative_error:.4f}", file=sys.stderr)
        elif stage == "preprocess":
            print(f"[{el:6.1f}s] preprocessed: {info.get('output_shape')}", file=sys.stderr)
        else:
            print(f"[{el:6.1f}s] {stage}", file=sys.stderr)
    return say


def _check_k_args(args, shape) -> None:
    """Validate --k and --k-range against the input's shape before any data is read."""
    from .sweep import parse_k_range

    k = _k_arg(args.k)
    n_patterns = int(shape[0]) * int(shape[1]) if len(shape) == 4 else None
    if k == "auto" and args.k_range is not None:
        lo, hi = parse_k_range(args.k_range)
        if n_patterns is not None and hi > n_patterns:
            raise InputError(f"--k-range maximum {hi} exceeds the number of patterns "
                             f"({n_patterns})")
    elif k != "auto" and (k < 1 or (n_patterns is not None and k > n_patterns)):
        raise InputError(f"--k={k} is out of range: allowed 1..{n_patterns} "
                         "(at most the number of patterns)")


def _final_model_path(record: dict, tmp, out) -> None:
    """A model saved in the staging folder is recorded under its final output path."""
    info = record.get("filter_info")
    if isinstance(info, dict) and str(info.get("model_path") or "").startswith(str(tmp)):
        info["model_path"] = os.path.join(str(out), os.path.relpath(info["model_path"], str(tmp)))


def _analyse_and_write(data, args, *, input_label, input_info, extra_attrs=None):
    from .execution import dask_client, parse_memory
    from .pipeline import analyse
    from .results import AtomicOutput, check_output

    check_output(args.output, overwrite=args.overwrite)   # fail before the work
    _check_k_args(args, tuple(data.shape))
    k = _k_arg(args.k)
    say = _progress(args.quiet)
    parse_memory(args.memory)                             # fail before the work
    if args.device not in ("cpu", "auto"):
        from .nmf._torch import resolve_device
        resolve_device(args.device)
    with dask_client(scheduler=args.scheduler, workers=args.workers) as client, \
            AtomicOutput(args.output, overwrite=args.overwrite) as tmp:
        cfg = _preprocess_config(args, save_dir=tmp)
        a = analyse(data, k=k, k_range=args.k_range, preprocessing=cfg, seed=args.seed,
                    max_iter=args.max_iter, tol=args.tol, l1_weights=args.l1_weights,
                    l1_components=args.l1_components, init=args.init,
                    weighting=args.weighting, ortho=args.ortho, sweep=args.sweep,
                    memory=args.memory, client=client, device=args.device,
                    progress=say, show_progress=not args.quiet)
        _write_outputs(tmp, a, args, input_label, input_info, extra_attrs)
    if not args.quiet:
        print(f"k = {a.k}; results in {os.path.join(args.output, 'results.h5')}", file=sys.stderr)
    return a


def _write_outputs(tmp, a, args, input_label, input_info, extra_attrs):
    """results.h5 (+ extra root attributes) and the report into the staging folder."""
    from .results import write_results

    _final_model_path(a.preprocessing, tmp, args.output)
    write_results(tmp / "results.h5", a, input_path=input_label, input_info=input_info)
    if extra_attrs:
        import h5py
        with h5py.File(tmp / "results.h5", "a") as f:
            for key, val in extra_attrs.items():
                f.attrs[key] = val
    if not args.no_report:
        from .report import build_report
        build_report(tmp, display_dir=os.path.abspath(args.output))


def cmd_demo(args):
    from .synthetic import make_polycrystal

    data, truth = make_polycrystal(**DEMO, seed=args.seed)
    label = "synthetic:make_polycrystal(" + ", ".join(f"{k}={v}" for k, v in DEMO.items()) \
        + f", seed={args.seed})"
    a = _analyse_and_write(data, args, input_label=label,
                           input_info={"format": "synthetic", "shape": list(data.shape),
                                       "dtype": str(data.dtype)},
                           extra_attrs={"demo_k_true": truth.k_true})
    if not args.quiet:
        print(f"demo: true k = {truth.k_true}, chosen k = {a.k}", file=sys.stderr)
    return 0


def cmd_run(args):
    from .io import dataset_info, open_dataset

    scan_shape = _pair(args.scan_shape, "--scan-shape") if args.scan_shape else None
    if scan_shape is not None and len(scan_shape) != 2:
        raise InputError(f"--scan-shape needs 2 integers Y,X, got {args.scan_shape!r}")
    ds = open_dataset(args.input, dataset=args.dataset, scan_shape=scan_shape)
    info = dataset_info(args.input, dataset=args.dataset, scan_shape=scan_shape)
    info = dict(info, dataset=args.dataset, scan_shape=list(scan_shape) if scan_shape else None)
    _analyse_and_write(ds.data, args, input_label=ds.path, input_info=info)
    return 0


def _human(n):
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024


def cmd_info(args):
    from .io import dataset_info

    scan_shape = _pair(args.scan_shape, "--scan-shape") if args.scan_shape else None
    info = dataset_info(args.input, dataset=args.dataset, scan_shape=scan_shape)
    if args.json:
        print(json.dumps(info, default=str))
        return 0
    print(f"path:         {info.get('path')}")
    print(f"format:       {info.get('format')}")
    print(f"shape:        {tuple(info.get('shape', ()))}  (scan_y, scan_x, ky, kx)")
    print(f"dtype:        {info.get('dtype')}")
    print(f"in memory:    {_human(info.get('nbytes', 0))}")
    print(f"on disk:      {_human(info.get('size_on_disk', 0))}")
    if info.get("chunks") is not None:
        print(f"chunks:       {info.get('chunks')}")
    return 0


def cmd_compare_filters(args):
    from .execution import dask_client, parse_memory
    from .io import open_dataset
    from .results import AtomicOutput, check_output

    check_output(args.output, overwrite=args.overwrite)
    scan_shape = _pair(args.scan_shape, "--scan-shape") if args.scan_shape else None
    ds = open_dataset(args.input, dataset=args.dataset, scan_shape=scan_shape)
    _check_k_args(args, tuple(ds.data.shape))
    names = [f.strip() for f in args.filters.split(",") if f.strip()]
    say = _progress(args.quiet)
    parse_memory(args.memory)                             # fail before the work
    with dask_client(scheduler=args.scheduler, workers=args.workers) as client, \
            AtomicOutput(args.output, overwrite=args.overwrite) as tmp:
        comp = _compare_and_write(ds, args, names, say, tmp, client)
    if not args.quiet:
        for n in comp.filters:
            print(f"{n:8s} k = {comp.analyses[n].k}", file=sys.stderr)
        for n, why in comp.skipped.items():
            print(f"{n:8s} skipped: {why}", file=sys.stderr)
    return 0


def _compare_and_write(ds, args, names, say, tmp, client):
    """Run the filter comparison and write compare.h5 and its report into ``tmp``."""
    from .compare import compare_filters, write_comparison
    from .report.compare import build_compare_report

    base = _preprocess_config(args)
    opts = {n: _filter_options(args, n, tmp) for n in names}
    comp = compare_filters(ds.data, filters=names, preprocessing=base, filter_options=opts,
                           k=_k_arg(args.k), k_range=args.k_range, seed=args.seed,
                           weighting=args.weighting, ortho=args.ortho,
                           sweep=args.sweep, memory=args.memory, client=client,
                           device=args.device,
                           progress=lambda n, a: say(f"filter {n}: k = {a.k}"))
    params = {"filters": names, "k": args.k, "k_range": args.k_range, "seed": args.seed,
              "weighting": args.weighting, "ortho": args.ortho, "bin": args.bin,
              "sweep": args.sweep, "memory": args.memory}
    write_comparison(tmp / "compare.h5", comp, input_path=ds.path, parameters=params)
    build_compare_report(tmp)
    return comp


def cmd_report(args):
    from .report import build_report

    path = build_report(args.output)
    print(f"report: {path}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"demo": cmd_demo, "run": cmd_run, "info": cmd_info, "report": cmd_report,
                "compare-filters": cmd_compare_filters}
    try:
        return handlers[args.command](args)
    except InputError as e:
        print(f"nmf4d: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nmf4d: interrupted", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - last line of defence, keep the message short
        if os.environ.get("NMF4D_DEBUG"):
            raise
        print(f"nmf4d: internal error: {type(e).__name__}: {e} "
              "(set NMF4D_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
