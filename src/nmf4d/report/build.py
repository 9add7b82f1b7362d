"""Assemble ``OUT/report.html`` and ``OUT/figures/*.png`` from ``OUT/results.h5``.

Only the results file is read (never the input data), so a report is rebuilt in a few
seconds. The page is self-contained: figures are embedded as base64 PNG data URIs and
the style sheet is inline, so it opens from disk with no network.
"""
from __future__ import annotations

import base64
import json
import shlex
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..execution.budget import format_bytes
from ..options import METRIC_NAMES as METRICS
from . import figures as F
from .palette import cluster_colours, overlap_colours, text_colour

SECTIONS = [("dataset", "1. Dataset"), ("level-one", "2. Level one: K-component loss"),
            ("level-two", "3. Level two: pairwise image-quality assessment"),
            ("clusters", "4. Clusters"), ("overlaps", "5. Overlaps"),
            ("raw-vs-nmf", "6. Raw vs NMF"), ("run", "7. Run")]
FIGURE_NAMES = ["dataset", "level_one_loss", "level_two_ssim", "level_two_psnr",
                "level_two_gmsd", "level_two_mdsi", "level_two_scores", "cluster_map",
                "components", "weights", "overlap", "raw_vs_nmf"]
TIMING_ORDER = ["preprocess", "load", "sweep", "select", "refine", "maps", "write"]
PART_ORDER = ["sketch", "fits", "loss"]


def _timing_rows(timings: dict) -> list:
    """(stage, seconds) rows in pipeline order; parts ("sweep: sketch") under their stage."""
    def order(key):
        stage, _, part = key.partition(": ")
        return (TIMING_ORDER.index(stage) if stage in TIMING_ORDER else 99, stage, part != "",
                PART_ORDER.index(part) if part in PART_ORDER else 99, part)
    rows = []
    for key in sorted(timings, key=order):
        stage, _, part = key.partition(": ")
        label = f"\u2003{part}" if part else key
        rows.append((label, f"{float(timings[key]):.2f} s"))
    return rows
DISPLAY_PX_PER_INCH = 120   # figures a little larger than print size: readable on a laptop


def _json_attr(attrs: dict, key: str, default: Any = None) -> Any:
    v = attrs.get(key)
    if v is None:
        return default
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def load(out_dir: Path) -> dict:
    """Read ``out_dir/results.h5`` into a flat dict.

    Parameters
    ----------
    out_dir : Path
        Folder holding ``results.h5``.

    Returns
    -------
    dict
        As :func:`nmf4d.results.read_results`.

    Raises
    ------
    nmf4d.errors.InputError
        If the file is missing, unreadable or lacks the core datasets.
    """
    from ..results import read_results

    path = out_dir / "results.h5"
    if not path.is_file():
        raise InputError(f"no results file at {str(path)!r}: run 'nmf4d run' or 'nmf4d demo' first")
    try:
        r = read_results(path)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure to parse is bad input here
        raise InputError(f"cannot read results file {str(path)!r}: "
                         f"{type(e).__name__}: {e}") from None
    missing = [name for name in ("components", "weights", "labels") if name not in r]
    if missing:
        raise InputError(f"results file {str(path)!r} lacks dataset(s) {', '.join(missing)}: "
                         "not written by nmf4d")
    return r


class _Figures:
    """Renders figures to ``figures/NAME.png`` and keeps their data URIs."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.items: dict[str, dict] = {}

    def add(self, name: str, fig, alt: str) -> None:
        png = F.to_png(fig)
        (self.folder / f"{name}.png").write_bytes(png)
        w = int.from_bytes(png[16:20], "big") / F.DPI   # PNG IHDR width, in inches
        self.items[name] = {
            "src": "data:image/png;base64," + base64.b64encode(png).decode("ascii"),
            "file": f"figures/{name}.png", "alt": alt,
            "width": int(round(w * DISPLAY_PX_PER_INCH))}


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "—"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "—"
        return f"{float(v):.{digits}g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x, digits) for x in v) + "]"
    return str(v)


def _shape(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return " × ".join(str(x) for x in v)
    return _fmt(v)


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if isinstance(d, dict):
        for k, v in d.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict):
                rows += _flatten(v, key)
            else:
                rows.append((key, _fmt(v)))
    return rows


def repeat_command(attrs: dict, params: dict) -> str:
    """The command line that repeats this run, rebuilt from the recorded settings.

    Parameters
    ----------
    attrs : dict
        Root attributes of the results file.
    params : dict
        The decoded ``parameters`` attribute (an :class:`~nmf4d.config.AnalysisConfig`
        as a dict; the flat records of nmf4d before 0.2 are read too).

    Returns
    -------
    str
        A shell-quoted ``nmf4d demo`` or ``nmf4d run`` command with output ``OUT``,
        every recorded option written out (:func:`nmf4d.cli_options.config_to_args`).
        ``--dataset`` and ``--scan-shape`` come from the recorded input information.
        Settings no flag can express are named in a trailing shell comment.
    """
    from ..cli_options import config_to_args, not_expressible
    from ..config import config_from_record

    inp = str(attrs.get("input", "INPUT"))
    demo = attrs.get("demo_k_true") is not None      # written only by 'nmf4d demo'
    args = ["nmf4d", "demo"] if demo else ["nmf4d", "run", inp]
    info = _json_attr(attrs, "input_info", {}) or {}
    if not demo and isinstance(info, dict) and info.get("dataset"):
        args += ["--dataset", str(info["dataset"])]
    if not demo and isinstance(info, dict) and info.get("scan_shape"):
        args += ["--scan-shape", ",".join(str(v) for v in info["scan_shape"])]
    args += ["-o", "OUT"]
    try:
        config = config_from_record(params)
    except InputError:
        return " ".join(shlex.quote(a) for a in args) + "  # settings not readable"
    cmd = " ".join(shlex.quote(a) for a in args + config_to_args(config))
    extra = not_expressible(config)
    return cmd + (f"  # also set from Python: {', '.join(extra)}" if extra else "")


def _dataset_rows(attrs: dict, r: dict) -> list[tuple[str, str]]:
    info = _json_attr(attrs, "input_info", {}) or {}
    pre = _json_attr(attrs, "preprocessing", {}) or {}
    rows = [("input", str(attrs.get("input", "—")))]
    if isinstance(info, dict):
        for key in ("format", "shape", "dtype", "dataset", "chunks"):
            if info.get(key) is not None:
                rows.append((key, _shape(info[key]) if key == "shape" else _fmt(info[key])))
        for key, name in (("nbytes", "size in memory"), ("size_on_disk", "size on disk")):
            if isinstance(info.get(key), (int, float)):
                rows.append((name, format_bytes(info[key])))
    applied = []
    if isinstance(pre, dict):
        for key in ("crop", "centre_crop", "bin", "mask", "filter", "scale", "normalise"):
            v = pre.get(key)
            if v in (None, 1, "raw") or (key == "bin" and v == 1):
                continue
            applied.append(f"{key} = {_fmt(v)}")
        if pre.get("output_shape"):
            rows.append(("factorised shape",
                         _shape(pre["output_shape"]) + "  (scan_y × scan_x × ky × kx)"))
    rows.append(("preprocessing applied", "; ".join(applied) if applied else "none (raw data)"))
    rows.append(("scan positions", str(int(np.prod(r["labels"].shape)))))
    return rows


def _level_two(r: dict, chosen: int) -> dict | None:
    if "iqa/k" not in r:
        return None
    attrs = r.get("iqa@attrs", {})
    ks = [int(v) for v in r["iqa/k"]]
    reasons = _json_attr(attrs, "reasons", {}) or {}
    red = r.get("iqa/redundant", np.array([bool(reasons.get(str(k))) for k in ks]))
    rows = []
    for i, k in enumerate(ks):
        rows.append({
            "k": k, "chosen": k == chosen, "redundant": bool(red[i]),
            "scores": [_fmt(r[f"iqa/score/{m}"][i]) if f"iqa/score/{m}" in r else "—"
                       for m in METRICS],
            "min_size": _fmt(r["iqa/min_cluster_size"][i])
            if "iqa/min_cluster_size" in r else "—",
            "max_corr": _fmt(r["iqa/max_weight_correlation"][i], 3)
            if "iqa/max_weight_correlation" in r else "—",
            "reasons": reasons.get(str(k), [])})
    explanation = str(attrs.get("explanation", ""))
    return {"ks": ks, "redundant": [bool(v) for v in red], "rows": rows,
            "chosen_k": int(attrs.get("chosen_k", chosen)), "explanation": explanation,
            "headline": explanation.split("; k = ")[0].rstrip(".")}


def _context(r: dict, out_dir: Path, figs: _Figures) -> dict:
    attrs = r["attrs"]
    params = _json_attr(attrs, "parameters", {}) or {}
    comps, weights, labels = r["components"], r["weights"], r["labels"]
    k = int(attrs.get("k", comps.shape[0]))
    bg = [int(b) for b in np.atleast_1d(attrs.get("background", r.get("overlap@attrs", {})
                                                 .get("background", [])))]
    colours = cluster_colours(comps.shape[0], bg)
    counts = r.get("clusters/count", np.bincount(labels.ravel(), minlength=comps.shape[0]))
    notes: dict[str, str] = {}

    if "extras/virtual_image" in r and "extras/mean_pattern" in r:
        figs.add("dataset", F.dataset_figure(r["extras/virtual_image"], r["extras/mean_pattern"]),
                 "virtual image and mean diffraction pattern")
    else:
        notes["dataset"] = "This results file has no extras/virtual_image or extras/mean_pattern."

    sweep = None
    if "sweep/k" in r:
        sa = r.get("sweep@attrs", {})
        knee = int(sa.get("knee", k))
        window = [int(v) for v in sa.get("window", [knee, knee])]
        figs.add("level_one_loss", F.loss_figure(r["sweep/k"], r["sweep/loss"], knee, window, k),
                 "K-component loss against k")
        sweep = {"knee": knee, "window": window, "rows": [
            (int(kk), _fmt(r["sweep/loss"][i]),
             _fmt(r["sweep/rel_error"][i]) if "sweep/rel_error" in r else "—",
             str(int(r["sweep/n_iter"][i])) if "sweep/n_iter" in r else "—")
            for i, kk in enumerate(r["sweep/k"])]}

    level2 = _level_two(r, k)
    if level2 is not None:
        for m in METRICS:
            mats = [r.get(f"iqa/pairs/k{kk}/{m}") for kk in level2["ks"]]
            if any(x is None for x in mats):
                continue
            figs.add(f"level_two_{m}", F.pairwise_figure(m, level2["ks"], mats, k,
                                                         level2["redundant"]),
                     f"pairwise {m.upper()} between component patterns, one panel per k")
        if all(f"iqa/score/{m}" in r for m in METRICS):
            figs.add("level_two_scores", F.scores_figure(
                level2["ks"], {m: r[f"iqa/score/{m}"] for m in METRICS}, k, level2["redundant"]),
                "per-k score of each metric")

    figs.add("cluster_map", F.cluster_map_figure(labels, colours, counts, bg),
             "colour-coded cluster map")
    figs.add("components", F.patterns_figure(comps, colours, bg),
             "component patterns framed in cluster colours")
    figs.add("weights", F.weights_figure(weights, colours), "weight map of each component")

    overlap = None
    if "overlap/masks" in r and "overlap/thresholds" in r:
        thr = [float(t) for t in r["overlap/thresholds"]]
        masks = r["overlap/masks"]
        ratio = r.get("overlap/ratio", np.zeros(labels.shape, np.float32))
        figs.add("overlap", F.overlap_figure(masks, thr, ratio, labels),
                 "overlap map at each threshold and ratio map")
        n = labels.size
        overlap = [{"t": f"{100 * t:.0f} %", "colour": c, "count": int(masks[i].sum()),
                    "pct": f"{100 * masks[i].sum() / n:.1f} %"}
                   for i, (t, c) in enumerate(zip(thr, overlap_colours(thr)))]

    clusters = []
    have_cmp = "clusters/raw_mean" in r and "clusters/nmf_pattern" in r
    if have_cmp:
        iq = {m: r.get(f"clusters/iqa/{m}") for m in METRICS}
        figs.add("raw_vs_nmf", F.raw_vs_nmf_figure(r["clusters/raw_mean"],
                                                   r["clusters/nmf_pattern"],
                                                   colours, iq["ssim"], iq["psnr"]),
                 "mean raw pattern beside NMF pattern for each cluster")
    rep = r.get("clusters/representative")
    for c in range(comps.shape[0]):
        row = {"c": c, "colour": colours[c], "fg": text_colour(colours[c]),
               "count": int(counts[c]), "background": c in bg,
               "rep": f"({int(rep[c][0])}, {int(rep[c][1])})" if rep is not None else "—"}
        for m in METRICS:
            v = r.get(f"clusters/iqa/{m}")
            row[m] = _fmt(v[c], 4) if v is not None else "—"
        for key in ("nsd", "immerkaer"):
            v = r.get(f"clusters/{key}")
            row[key] = _fmt(v[c], 4) if v is not None else "—"
        clusters.append(row)

    timings = r.get("timings@attrs", {})
    fit = [("iterations", _fmt(attrs.get("n_iter"))), ("converged", _fmt(attrs.get("converged"))),
           ("relative error ‖V − WH‖/‖V‖", _fmt(attrs.get("relative_error")))]
    versions = _json_attr(attrs, "versions", {}) or {}
    demo_k = attrs.get("demo_k_true")
    return {
        "title": f"nmf4d report — k = {k}",
        "sections": SECTIONS, "figs": figs.items, "notes": notes,
        "k": k, "auto": sweep is not None, "demo_k_true": demo_k,
        "created": attrs.get("created", "—"), "version": attrs.get("nmf4d_version", "—"),
        "input": attrs.get("input", "—"), "out_dir": str(out_dir),
        "dataset_rows": _dataset_rows(attrs, r), "sweep": sweep, "level2": level2,
        "background": bg, "clusters": clusters, "overlap": overlap, "have_cmp": have_cmp,
        "seed": params.get("seed", "—"), "command": repeat_command(attrs, params),
        "parameters": _flatten(params), "versions": _flatten(versions),
        "timings": _timing_rows(timings),
        "execution": _flatten(r.get("execution@attrs", {}) or {}),
        "total_time": f"{sum(float(v) for key, v in timings.items() if ':' not in key):.1f} s"
        if timings else "—",
        "fit": fit, "k_param": params.get("k", "auto"),
    }


def render(context: dict) -> str:
    """Render the Jinja2 template ``templates/report.html``.

    Parameters
    ----------
    context : dict
        Template variables (see ``_context``).

    Returns
    -------
    str
        The HTML page.
    """
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True,
        undefined=jinja2.StrictUndefined)
    return env.get_template("report.html").render(**context)


def build_report(out_dir, *, display_dir=None) -> Path:
    """Write ``out_dir/report.html`` and ``out_dir/figures/*.png`` from ``out_dir/results.h5``.

    Parameters
    ----------
    out_dir : str or path-like
        An output folder written by ``nmf4d run`` or ``nmf4d demo``.
    display_dir : str or path-like, optional
        The folder named in the report (default ``out_dir``): the command line builds the
        report in a staging folder that is renamed to the output folder afterwards.

    Returns
    -------
    Path
        The path of the HTML report.

    Raises
    ------
    nmf4d.errors.InputError
        If ``out_dir`` holds no readable results file, or the report cannot be written.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise InputError(f"output folder {str(out_dir)!r} does not exist")
    r = load(out_dir)
    folder = out_dir / "figures"
    try:
        folder.mkdir(exist_ok=True)
        for name in FIGURE_NAMES:      # figures of an earlier report that may not recur
            (folder / f"{name}.png").unlink(missing_ok=True)
        figs = _Figures(folder)
        page = render(_context(r, Path(display_dir) if display_dir else out_dir, figs))
        path = out_dir / "report.html"
        path.write_text(page, encoding="utf-8")
    except PermissionError as e:
        raise InputError(f"cannot write the report in {str(out_dir)!r}: {e.strerror}") from None
    return path


__all__ = ["build_report", "load", "render", "repeat_command"]
