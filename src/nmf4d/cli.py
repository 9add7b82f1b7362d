"""Command line: ``nmf4d demo | run | info | report | compare-filters``.

A thin layer over :func:`nmf4d.pipeline.analyse`, :mod:`nmf4d.io` and
:mod:`nmf4d.results`: the options become an :class:`~nmf4d.config.AnalysisConfig`
(:mod:`nmf4d.cli_options`), the data is opened, analysed and written
(:mod:`nmf4d.outputs`). Exit statuses, one-line errors and warnings and the handling of
signals are :mod:`nmf4d.exits`: 0 success, 2 bad usage, bad input or an unusable
environment (one line on stderr, no traceback), 1 internal error, 130 SIGINT, 143 SIGTERM.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ._version import __version__
from .cli_options import INDEX_OPTIONS, add_options, config_from_args
from .errors import InputError
from .exits import EPILOG, describe, handle_signals, warnings_as_lines

DEMO = dict(scan_shape=(48, 48), pattern_shape=(64, 64), n_grains=6, vacuum=True,
            overlap_width=4.0, thickness_variation=0.3, dose=2000.0)

EXIT_CODES = EPILOG


def _pair(text, name, sep=","):
    try:
        vals = tuple(int(v) for v in str(text).split(sep))
    except ValueError:
        raise InputError(f"{name} must be integers separated by '{sep}', got {text!r}") from None
    return vals


def _add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, help="output folder (created)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--save-signals", nargs="?", const="hspy", default=None, metavar="FORMAT",
                   help="also write the results as HyperSpy signals, OUT/signals/*.hspy "
                   "(or zspy); needs nmf4d[hyperspy]")
    add_options(p)
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress or summary lines (errors and warnings are still printed)")


def _add_input(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="file or folder (.npy .zarr .h5/.hdf5 .hspy .zspy .blo .mib "
                   ".emd .dm4, image folder)")
    p.add_argument("--dataset", default=None, metavar="PATH",
                   help="array inside an HDF5/zarr file (or NCEM .emd): required for "
                   ".h5/.hdf5, needed for a zarr group holding several arrays")
    p.add_argument("--scan-shape", default=None, metavar="Y,X",
                   help="scan shape, required for a folder of images and a 3D stack (n, ky, "
                   "kx); for a .mib it overrides the .hdr")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="nmf4d", epilog=EXIT_CODES, description=(
        "4D-STEM orientation/phase clustering by NMF with automatic choice of k."))
    ap.add_argument("--version", action="version", version=f"nmf4d {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run the whole pipeline on the built-in synthetic dataset",
                       epilog=EXIT_CODES)
    _add_output_options(d)
    r = sub.add_parser("run", help="analyse a 4D-STEM dataset", epilog=EXIT_CODES)
    _add_input(r)
    _add_output_options(r)
    i = sub.add_parser("info", help="print format, shape, dtype and sizes without loading data",
                       epilog=EXIT_CODES)
    _add_input(i)
    i.add_argument("--json", action="store_true", help="machine-readable output")
    cf = sub.add_parser("compare-filters", help="level one and NSD for raw, mean3, pca and "
                        "denoise inputs (the paper's Figure 2)", epilog=EXIT_CODES)
    _add_input(cf)
    cf.add_argument("--filters", default="raw,mean3,pca,denoise",
                    help="comma-separated filters (default raw,mean3,pca,denoise)")
    _add_output_options(cf)
    rp = sub.add_parser("report", help="(re)build OUT/report.html from OUT/results.h5",
                        epilog=EXIT_CODES)
    rp.add_argument("output", help="an output folder written by run or demo")
    ix = sub.add_parser("index", help="phase and orientation of every cluster of an existing "
                        "results folder (needs nmf4d[index])", epilog=EXIT_CODES)
    ix.add_argument("output", help="an output folder written by run or demo")
    add_options(ix, INDEX_OPTIONS)
    ix.add_argument("--no-report", dest="no_report", action="store_true",
                    help="do not rebuild report.html")
    ix.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    return ap


def _logger(quiet: bool):
    """The stage events of an analysis as lines on stderr."""
    t0 = time.perf_counter()

    def log(stage, info=None):
        if quiet or stage == "sweep":
            return
        el = time.perf_counter() - t0
        if stage == "select":
            text = f"level two: chose k = {info.k}"
        elif stage == "refine":
            text = f"final fit: {info.n_iter} iterations"
        elif stage == "maps":
            text = f"maps: relative error of the fit {info:.4f}"
        elif stage == "preprocess":
            text = f"preprocessed: {info.get('output_shape')}"
        elif stage == "load":
            text = f"data in {info}"       # where the data lives for the budget, and why
        elif stage == "widen":
            text = str(info)
        else:
            text = str(stage)
        print(f"[{el:6.1f}s] {text}", file=sys.stderr)
    return log


def _progress(args):
    from .execution import Progress

    return Progress(bars=not args.quiet, log=_logger(args.quiet))


def _check_before_work(config, shape) -> None:
    """What can be checked from the options and the input's shape, before any work."""
    from .config import resolve_k
    from .execution import resolve_device

    if len(shape) == 4:
        resolve_k(config, int(shape[0]) * int(shape[1]))
    resolve_device(config.execution.device)


def _inputs(args) -> list:
    """Every path the command reads (the input with a .mib's .hdr, a reused model, the
    phases' CIF files)."""
    from .outputs import input_paths

    phases = [p for p in str(getattr(args, "phases", None) or "").split(",") if p.strip()]
    return input_paths(getattr(args, "input", None), getattr(args, "denoise_model", None),
                       *phases)


def _check_paths(args) -> None:
    """Before any work: OUT may be replaced (see nmf4d.outputs.check_output) and is
    neither an input, nor inside one, nor holding one."""
    from .outputs import check_output, check_separate

    check_separate(args.output, _inputs(args))
    check_output(args.output, overwrite=args.overwrite)


def _analyse_and_write(data, args, *, input_label, input_info, extra_attrs=None):
    from .execution import dask_client
    from .pipeline import analyse
    from .results import AtomicOutput

    _check_paths(args)                                     # fail before the work
    config = config_from_args(args)
    _check_before_work(config, tuple(data.shape))
    if args.save_signals is not None:
        from .signals import _hyperspy, check_format
        check_format(args.save_signals)
        _hyperspy()
    ex = config.execution
    with dask_client(scheduler=ex.scheduler, workers=ex.workers) as client, \
            AtomicOutput(args.output, overwrite=args.overwrite) as tmp:
        a = analyse(data, config, progress=_progress(args), client=client)
        _write_outputs(tmp, a, args, input_label, input_info, extra_attrs)
    if not args.quiet:
        print(f"k = {a.k}; results in {os.path.join(args.output, 'results.h5')}", file=sys.stderr)
    return a


def _write_outputs(tmp, a, args, input_label, input_info, extra_attrs):
    """results.h5 (+ extra root attributes), saved artifacts and the report, into ``tmp``."""
    from .results import save_artifacts, write_results

    save_artifacts(tmp, a, final_folder=os.path.abspath(args.output))
    write_results(tmp / "results.h5", a, input_path=input_label, input_info=input_info)
    if getattr(args, "save_signals", None):
        from .signals import save_signals
        save_signals(tmp, a, args.save_signals)
    if a.orientation is not None:
        from .orientation import write_orientation_files
        write_orientation_files(tmp, a.orientation, a.labels, a.calibration)
    if extra_attrs:
        from .outputs import h5_file
        with h5_file(tmp / "results.h5", "a") as f:
            for key, val in extra_attrs.items():
                f.attrs[key] = val
    if a.config.report.enabled:
        from .report import build_report
        build_report(tmp, display_dir=os.path.abspath(args.output))


def cmd_demo(args):
    from .synthetic import make_polycrystal

    _check_paths(args)
    seed = config_from_args(args).seed
    data, truth = make_polycrystal(**DEMO, seed=seed)
    label = "synthetic:make_polycrystal(" + ", ".join(f"{k}={v}" for k, v in DEMO.items()) \
        + f", seed={seed})"
    a = _analyse_and_write(data, args, input_label=label,
                           input_info={"format": "synthetic", "shape": list(data.shape),
                                       "dtype": str(data.dtype)},
                           extra_attrs={"demo_k_true": truth.k_true})
    if not args.quiet:
        print(f"demo: true k = {truth.k_true}, chosen k = {a.k}", file=sys.stderr)
    return 0


def _open(args):
    from .io import open_dataset

    scan_shape = _pair(args.scan_shape, "--scan-shape") if args.scan_shape else None
    if scan_shape is not None and len(scan_shape) != 2:
        raise InputError(f"--scan-shape needs 2 integers Y,X, got {args.scan_shape!r}")
    return open_dataset(args.input, dataset=args.dataset, scan_shape=scan_shape), scan_shape


def cmd_run(args):
    from .io import dataset_info

    _check_paths(args)
    ds, scan_shape = _open(args)
    info = dataset_info(args.input, dataset=args.dataset, scan_shape=scan_shape)
    info = dict(info, dataset=args.dataset, scan_shape=list(scan_shape) if scan_shape else None)
    _analyse_and_write(ds, args, input_label=ds.path, input_info=info)
    return 0


def cmd_info(args):
    from .execution import format_bytes
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
    print(f"in memory:    {format_bytes(info.get('nbytes', 0))}")
    print(f"on disk:      {format_bytes(info.get('size_on_disk', 0))}")
    if info.get("chunks") is not None:
        print(f"chunks:       {info.get('chunks')}")
    return 0


def cmd_compare_filters(args):
    from .execution import dask_client
    from .filter_comparison import compare_filters, write_comparison
    from .report.compare import build_compare_report
    from .results import AtomicOutput, save_artifacts

    _check_paths(args)
    ds, _ = _open(args)
    config = config_from_args(args)
    _check_before_work(config, tuple(ds.data.shape))
    names = [f.strip() for f in args.filters.split(",") if f.strip()]
    progress = _progress(args)
    ex = config.execution
    with dask_client(scheduler=ex.scheduler, workers=ex.workers) as client, \
            AtomicOutput(args.output, overwrite=args.overwrite) as tmp:
        comp = compare_filters(ds.data, config, filters=names, progress=progress,
                               client=client,
                               on_filter=lambda n, a: progress.event(f"filter {n}: k = {a.k}"))
        for a in comp.analyses.values():
            save_artifacts(tmp, a, final_folder=os.path.abspath(args.output))
        params = {"filters": names, **config.to_dict()}
        write_comparison(tmp / "compare.h5", comp, input_path=ds.path, parameters=params)
        build_compare_report(tmp)
    if not args.quiet:
        for n in comp.filters:
            print(f"{n:8s} k = {comp.analyses[n].k}", file=sys.stderr)
        for n, why in comp.skipped.items():
            print(f"{n:8s} skipped: {why}", file=sys.stderr)
    return 0


def cmd_index(args):
    import json

    from .config import config_from_record
    from .errors import ConfigError as _ConfigError
    from .orientation import index_results
    from .results import read_results

    attrs = read_results(args.output)["attrs"]
    base = config_from_record(json.loads(attrs.get("parameters", "{}") or "{}"))
    config = config_from_args(args, base)
    if not config.index.phases:
        raise _ConfigError("index.phases", "", "name at least one CIF file")
    o = index_results(args.output, config, progress=_progress(args))
    if not args.no_report:
        from .report import build_report
        build_report(args.output)
    if not args.quiet:
        res = o.result
        for c in range(res.k):
            print(f"cluster {c}: {res.phase[c]}", file=sys.stderr)
    return 0


def cmd_report(args):
    from .report import build_report

    path = build_report(args.output)
    print(f"report: {path}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"demo": cmd_demo, "run": cmd_run, "info": cmd_info, "report": cmd_report,
                "compare-filters": cmd_compare_filters, "index": cmd_index}
    with warnings_as_lines(), handle_signals(exit_after=argv is None) as sig:
        try:
            return handlers[args.command](args)
        except (SystemExit, GeneratorExit):
            raise
        except BaseException as e:  # noqa: BLE001 - every way a command ends, one line
            sig.ending()
            code, line = describe(e, inputs=_inputs(args))
            if code == 1 and os.environ.get("NMF4D_DEBUG"):
                raise
            print(line, file=sys.stderr)
            return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
