"""Assemble ``OUT/report.html`` and ``OUT/figures/*.png`` from ``OUT/results.h5``.

Only the results file is read (never the input data). The page is self-contained:
figures are embedded as base64 PNG data URIs, the style sheet and the explorer's
script are inline and its data is one JSON object in the page, so it opens from disk
with no network.

Sections follow the order a microscopist reads them: summary and explorer, cluster
map with patterns, overlaps, raw vs NMF, the dataset, then the evidence for k (level
one, level two with the pairwise matrices last) and the run's record.
"""
from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError
from ..outputs import atomic_path, reason
from . import images as I
from . import lineplots
from .calibration import Calibration, parse_calibration
from .explorer import explorer_note, explorer_payload, payload_json
from .palette import cluster_colours, overlap_colours, text_colour
from .png import encode_png
from .orientation import orientation_context
from .text import decision_context
from .text import (METRICS, background_text, dataset_rows, extent_text, flatten, fmt,
                   json_attr, level_two, repeat_command, timing_rows)

_SECTIONS = [("summary", "Summary and explorer"), ("clusters", "Cluster map and patterns"),
             ("overlaps", "Overlaps"), ("raw-vs-nmf", "Raw vs NMF"),
             ("orientation", "Phases and orientations"), ("dataset", "Dataset"),
             ("level-one", "Choice of k, level one: K-component loss"),
             ("level-two", "Choice of k, level two: pairwise image-quality assessment"),
             ("run", "Run")]


def sections(orientation: bool = False) -> list[tuple[str, str]]:
    """(id, numbered title) of the report's sections (the orientation one when indexed)."""
    kept = [(sid, t) for sid, t in _SECTIONS if orientation or sid != "orientation"]
    return [(sid, f"{i}. {t}") for i, (sid, t) in enumerate(kept, 1)]


#: The sections of a report without orientation indexing.
SECTIONS = sections(False)
FIGURE_NAMES = ["dataset", "level_one_loss", "level_two_ssim", "level_two_psnr",
                "level_two_gmsd", "level_two_mdsi", "level_two_scores", "cluster_map",
                "components", "weights", "overlap", "raw_vs_nmf"]
PIXELATED = {"cluster_map", "weights", "overlap", "dataset"}   # maps: keep blocks crisp
PLOTS = {"level_one_loss", "level_two_scores"}   # drawn at lineplots.SCALE x their page size


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
    """Renders figures to ``figures/NAME.png``, keeps their data URIs and their cost."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.items: dict[str, dict] = {}
        self.seconds: dict[str, float] = {}

    def add(self, name: str, make: Callable[[], np.ndarray], alt: str) -> None:
        """Draw ``make()`` (an RGB array, ``(h, w, 3)`` uint8) and store it as ``name``."""
        t0 = time.perf_counter()
        rgb = make()
        png = encode_png(rgb)
        width = rgb.shape[1] // (lineplots.SCALE if name in PLOTS else 1)
        (self.folder / f"{name}.png").write_bytes(png)
        self.items[name] = {
            "src": "data:image/png;base64," + base64.b64encode(png).decode("ascii"),
            "file": f"figures/{name}.png", "alt": alt, "width": int(width),
            "pixelated": name in PIXELATED}
        self.seconds[name] = time.perf_counter() - t0


def _background(attrs: dict, r: dict, k: int) -> list[int]:
    raw = attrs.get("background", r.get("overlap@attrs", {}).get("background", []))
    return [int(b) for b in np.atleast_1d(raw) if 0 <= int(b) < k]


def _context(r: dict, out_dir: Path, figs: _Figures, seconds: dict) -> dict:
    attrs = r["attrs"]
    params = json_attr(attrs, "parameters", {}) or {}
    pre = json_attr(attrs, "preprocessing", {}) or {}
    comps, weights = r["components"], r["weights"]
    labels = r.get("maps/labels", r["labels"])       # nmf4d's cluster map (else the paper's)
    k = int(attrs.get("k", comps.shape[0]))
    kk = comps.shape[0]
    bg = _background(attrs, r, kk)
    colours = cluster_colours(kk, bg)
    counts = np.asarray(r.get("clusters/count", np.bincount(labels.ravel().astype(np.int64),
                                                            minlength=kk)))
    cal = parse_calibration(attrs.get("calibration"),
                            preprocessing_bin=pre.get("bin", 1) if isinstance(pre, dict) else 1)
    show = I.panels_to_show(counts)
    capped = kk - len(show)
    notes: dict[str, str] = {}

    t0 = time.perf_counter()
    try:
        payload = explorer_payload(r, colours=colours, background=bg, counts=counts, cal=cal)
        explorer = explorer_note(payload, r)
    except ValueError as e:          # a group from other data: report the rest all the same
        payload = None
        explorer = explorer_note(None, r)
        explorer["text"] = f"The explorer/ group does not match this results file ({e}), " \
                           "so the explorer is not shown; the figures below are complete."
    explorer_json = payload_json(payload) if payload is not None else ""
    seconds["explorer data"] = time.perf_counter() - t0

    figs.add("cluster_map", lambda: I.cluster_map_image(labels, colours, counts, bg, cal),
             "colour-coded cluster map with its legend")
    figs.add("components", lambda: I.patterns_image(comps, colours, bg, cal, show)[0],
             "component patterns framed in cluster colours")
    figs.add("weights", lambda: I.weights_image(weights, colours, cal, show),
             "weight map of each component")

    overlap = None
    if "overlap/masks" in r and "overlap/thresholds" in r:
        thr = [float(t) for t in r["overlap/thresholds"]]
        masks = r["overlap/masks"]
        ratio = r.get("overlap/ratio", np.zeros(labels.shape, np.float32))
        figs.add("overlap", lambda: I.overlap_image(masks, thr, ratio, labels, cal),
                 "overlap map at each threshold and ratio map")
        n = labels.size
        overlap = [{"t": f"{100 * t:.0f} %", "colour": c, "count": int(masks[i].sum()),
                    "pct": f"{100 * masks[i].sum() / n:.1f} %"}
                   for i, (t, c) in enumerate(zip(thr, overlap_colours(thr)))]

    have_cmp = "clusters/raw_mean" in r and "clusters/nmf_pattern" in r
    if have_cmp:
        iq = {m: r.get(f"clusters/iqa/{m}") for m in METRICS}
        figs.add("raw_vs_nmf", lambda: I.raw_vs_nmf_image(
            r["clusters/raw_mean"], r["clusters/nmf_pattern"], colours, iq["ssim"], iq["psnr"],
            cal, show), "mean raw pattern beside NMF pattern for each cluster")

    if "extras/virtual_image" in r and "extras/mean_pattern" in r:
        figs.add("dataset", lambda: I.dataset_image(r["extras/virtual_image"],
                                                    r["extras/mean_pattern"], cal),
                 "virtual image and mean diffraction pattern")
    else:
        notes["dataset"] = "This results file has no extras/virtual_image or extras/mean_pattern."

    sweep = None
    if "sweep/k" in r:
        sa = r.get("sweep@attrs", {})
        knee = int(sa.get("knee", k))
        window = [int(v) for v in sa.get("window", [knee, knee])]
        figs.add("level_one_loss", lambda: lineplots.loss_plot(r["sweep/k"], r["sweep/loss"],
                                                               knee, window, k),
                 "K-component loss against k")
        sweep = {"knee": knee, "window": window, "rows": [
            (int(kv), fmt(r["sweep/loss"][i]),
             fmt(r["sweep/rel_error"][i]) if "sweep/rel_error" in r else "—",
             str(int(r["sweep/n_iter"][i])) if "sweep/n_iter" in r else "—")
            for i, kv in enumerate(r["sweep/k"])]}

    level2 = level_two(r, k)
    if level2 is not None:
        if all(f"iqa/score/{m}" in r for m in METRICS):
            figs.add("level_two_scores", lambda: lineplots.scores_plot(
                level2["ks"], {m: r[f"iqa/score/{m}"] for m in METRICS}, k,
                level2["redundant"]), "per-k score of each metric")
        for m in METRICS:
            mats = [r.get(f"iqa/pairs/k{kv}/{m}") for kv in level2["ks"]]
            if any(x is None for x in mats):
                continue
            figs.add(f"level_two_{m}", lambda m=m, mats=mats: I.pairwise_image(
                m, level2["ks"], mats, k, level2["redundant"]),
                f"pairwise {m.upper()} between component patterns, one panel per k")

    clusters = []
    rep = r.get("clusters/representative")
    for c in range(kk):
        row = {"c": c, "colour": colours[c], "fg": text_colour(colours[c]),
               "count": int(counts[c]), "background": c in bg,
               "rep": f"({int(rep[c][0])}, {int(rep[c][1])})" if rep is not None else "—"}
        for m in METRICS:
            v = r.get(f"clusters/iqa/{m}")
            row[m] = fmt(v[c], 4) if v is not None else "—"
        for key in ("nsd", "immerkaer"):
            v = r.get(f"clusters/{key}")
            row[key] = fmt(v[c], 4) if v is not None else "—"
        clusters.append(row)

    orientation = orientation_context(r, out_dir)
    timings = r.get("timings@attrs", {})
    fit = [("iterations", fmt(attrs.get("n_iter"))), ("converged", fmt(attrs.get("converged"))),
           ("relative error ‖V − WH‖/‖V‖", fmt(attrs.get("relative_error"))),
           ("maps from", {"weights": "the decision's components, weights refitted"}.get(
               attrs.get("final_fit"), "the refined fit"))]
    versions = json_attr(attrs, "versions", {}) or {}
    kinds = json_attr(attrs, "background_kinds", {}) or {}
    sy, sx = labels.shape
    return {
        "title": f"nmf4d report — k = {k}",
        "sections": sections(orientation is not None),
        "titles": dict(sections(orientation is not None)), "orientation": orientation,
        "figs": figs.items, "notes": notes,
        "k": k, "auto": sweep is not None, "demo_k_true": attrs.get("demo_k_true"),
        "created": attrs.get("created", "—"), "version": attrs.get("nmf4d_version", "—"),
        "input": attrs.get("input", "—"), "out_dir": str(out_dir),
        "dataset_rows": dataset_rows(attrs, r), "sweep": sweep, "level2": level2,
        "decision": decision_context(r),
        "background": bg, "background_text": background_text(
            bg, counts, labels.size, kinds if isinstance(kinds, dict) else None),
        "clusters": clusters, "overlap": overlap, "have_cmp": have_cmp,
        "capped": capped, "max_panels": I.MAX_PANELS,
        "scan_text": f"{sy} × {sx} positions" + (
            f" ({extent_text((sy, sx), cal.scan_step, cal.scan_label)})" if cal.scan_step else ""),
        "pattern_text": f"{comps.shape[1]} × {comps.shape[2]} px" + (
            f" ({cal.reciprocal[0]:.3g} {cal.reciprocal_label} per px)" if cal.reciprocal else ""),
        "calibration": _calibration_rows(cal),
        "bar_text": f"scale bars in {cal.scan_label} (scan) and {cal.reciprocal_label} (patterns)"
        if cal.scan_step or cal.reciprocal else
        "no calibration recorded: scale bars in scan pixels and detector pixels",
        "explorer_scan": [sy, sx],
        "explorer_map_px": int(round(sx * min(32.0, 460.0 / max(sy, sx)))),
        "explorer": explorer, "explorer_json": explorer_json,
        "explorer_js": _EXPLORER_JS.read_text(encoding="utf-8") if payload else "",
        "seed": params.get("seed", "—"), "command": repeat_command(attrs, params),
        "parameters": flatten(params), "versions": flatten(versions),
        "timings": timing_rows(timings),
        "execution": flatten(r.get("execution@attrs", {}) or {}),
        "total_time": f"{sum(float(v) for key, v in timings.items() if ':' not in key):.1f} s"
        if timings else "—",
        "fit": fit, "k_param": params.get("k", "auto"),
    }


_EXPLORER_JS = Path(__file__).parent / "templates" / "explorer.js"


def _calibration_rows(cal: Calibration) -> list[tuple[str, str]]:
    rows = [("scan step", f"{cal.scan_step[0]:.4g} × {cal.scan_step[1]:.4g} {cal.scan_label}"
             if cal.scan_step else "not recorded: maps in scan pixels"),
            ("detector pixel (factorised patterns)",
             f"{cal.reciprocal[0]:.4g} × {cal.reciprocal[1]:.4g} {cal.reciprocal_label}"
             if cal.reciprocal else "not recorded: patterns in detector pixels")]
    if cal.source:
        rows.append(("calibration source", cal.source))
    return rows


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


def build_report(out_dir, *, display_dir=None, timings: dict | None = None) -> Path:
    """Write ``out_dir/report.html`` and ``out_dir/figures/*.png`` from ``out_dir/results.h5``.

    Parameters
    ----------
    out_dir : str or path-like
        An output folder written by ``nmf4d run`` or ``nmf4d demo``.
    display_dir : str or path-like, optional
        The folder named in the report (default ``out_dir``): the command line builds the
        report in a staging folder that is renamed to the output folder afterwards.
    timings : dict, optional
        Filled with the seconds each step took: ``read``, ``explorer data``, one entry
        per figure (``figure: NAME``, drawing and PNG encoding), ``render``, ``write``
        and ``total``.

    Returns
    -------
    Path
        The path of the HTML report.

    Raises
    ------
    nmf4d.errors.InputError
        If ``out_dir`` holds no readable results file, or the report cannot be written.
    """
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise InputError(f"output folder {str(out_dir)!r} does not exist")
    r = load(out_dir)
    seconds: dict[str, float] = {"read": time.perf_counter() - t_start}
    folder = out_dir / "figures"
    try:
        folder.mkdir(exist_ok=True)
        for name in FIGURE_NAMES:      # figures of an earlier report that may not recur
            (folder / f"{name}.png").unlink(missing_ok=True)
        figs = _Figures(folder)
        context = _context(r, Path(display_dir) if display_dir else out_dir, figs, seconds)
        seconds.update({f"figure: {n}": s for n, s in figs.seconds.items()})
        t0 = time.perf_counter()
        page = render(context)
        seconds["render"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        path = out_dir / "report.html"
        with atomic_path(path, overwrite=True) as tmp:
            tmp.write_text(page, encoding="utf-8")
        seconds["write"] = time.perf_counter() - t0
    except OSError as e:
        shown = str(display_dir or out_dir)
        raise InputError(f"cannot write the report in {shown!r}: {reason(e)}") from None
    seconds["total"] = time.perf_counter() - t_start
    if timings is not None:
        timings.update(seconds)
    return path


__all__ = ["FIGURE_NAMES", "SECTIONS", "build_report", "load", "render", "repeat_command"]
