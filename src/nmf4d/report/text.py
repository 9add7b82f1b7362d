"""Text of the report: tables, formatted numbers, the repeat command, the decision.

Pure functions of the results file's attributes and arrays (no figures, no I/O).
"""
from __future__ import annotations

import json
import shlex
from typing import Any

import numpy as np

from ..execution.budget import format_bytes
from ..options import METRIC_NAMES as METRICS
TIMING_ORDER = ["preprocess", "load", "sweep", "select", "refine", "maps", "index", "write"]
PART_ORDER = ["sketch", "fits", "loss"]


def timing_rows(timings: dict) -> list:
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


def json_attr(attrs: dict, key: str, default: Any = None) -> Any:
    """Attribute ``key`` decoded from JSON when it is JSON text (``default`` if absent)."""
    v = attrs.get(key)
    if v is None:
        return default
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def fmt(v: Any, digits: int = 4) -> str:
    """A value for a table cell: ``digits`` significant digits, yes/no, — for none."""
    if v is None:
        return "—"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "—"
        return f"{float(v):.{digits}g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt(x, digits) for x in v) + "]"
    return str(v)


def shape_text(v: Any) -> str:
    """``[60, 90]`` -> ``"60 × 90"``."""
    if isinstance(v, (list, tuple)):
        return " × ".join(str(x) for x in v)
    return fmt(v)


def flatten(d: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dict -> (dotted key, formatted value) rows."""
    rows: list[tuple[str, str]] = []
    if isinstance(d, dict):
        for k, v in d.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict):
                rows += flatten(v, key)
            else:
                rows.append((key, fmt(v)))
    return rows


def repeat_command(attrs: dict, params: dict) -> str:
    """The command line that repeats this run, rebuilt from the recorded settings.

    Parameters
    ----------
    attrs : dict
        Root attributes of the results file.
    params : dict
        The decoded ``parameters`` attribute (an :class:`~nmf4d.config.AnalysisConfig`
        as a dict; the flat records of nmf4d 0.1 are read too).

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
    from ..errors import InputError

    inp = str(attrs.get("input", "INPUT"))
    demo = attrs.get("demo_k_true") is not None      # written only by 'nmf4d demo'
    args = ["nmf4d", "demo"] if demo else ["nmf4d", "run", inp]
    info = json_attr(attrs, "input_info", {}) or {}
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


def dataset_rows(attrs: dict, r: dict) -> list[tuple[str, str]]:
    """(name, value) rows of the Dataset table: input, shape, sizes, preprocessing."""
    info = json_attr(attrs, "input_info", {}) or {}
    pre = json_attr(attrs, "preprocessing", {}) or {}
    rows = [("input", str(attrs.get("input", "—")))]
    if isinstance(info, dict):
        for key in ("format", "shape", "dtype", "dataset", "chunks"):
            if info.get(key) is not None:
                rows.append((key, shape_text(info[key]) if key == "shape" else fmt(info[key])))
        for key, name in (("nbytes", "size in memory"), ("size_on_disk", "size on disk")):
            if isinstance(info.get(key), (int, float)):
                rows.append((name, format_bytes(info[key])))
    applied = []
    if isinstance(pre, dict):
        for key in ("crop", "centre_crop", "bin", "mask", "filter", "scale", "normalise"):
            v = pre.get(key)
            if v in (None, 1, "raw") or (key == "bin" and v == 1):
                continue
            applied.append(f"{key} = {fmt(v)}")
        if pre.get("output_shape"):
            rows.append(("factorised shape",
                         shape_text(pre["output_shape"]) + "  (scan_y × scan_x × ky × kx)"))
    rows.append(("preprocessing applied", "; ".join(applied) if applied else "none (raw data)"))
    rows.append(("scan positions", str(int(np.prod(r["labels"].shape)))))
    return rows


def level_two(r: dict, chosen: int) -> dict | None:
    """The level-two table and decision text, or None when level two was not run."""
    if "iqa/k" not in r:
        return None
    attrs = r.get("iqa@attrs", {})
    ks = [int(v) for v in r["iqa/k"]]
    reasons = json_attr(attrs, "reasons", {}) or {}
    red = r.get("iqa/redundant", np.array([bool(reasons.get(str(k))) for k in ks]))
    rows = []
    for i, k in enumerate(ks):
        rows.append({
            "k": k, "chosen": k == chosen, "redundant": bool(red[i]),
            "scores": [fmt(r[f"iqa/score/{m}"][i]) if f"iqa/score/{m}" in r else "—"
                       for m in METRICS],
            "min_size": fmt(r["iqa/min_cluster_size"][i])
            if "iqa/min_cluster_size" in r else "—",
            "max_corr": fmt(r["iqa/max_weight_correlation"][i], 3)
            if "iqa/max_weight_correlation" in r else "—",
            "reasons": reasons.get(str(k), [])})
    explanation = str(attrs.get("explanation", ""))
    return {"ks": ks, "redundant": [bool(v) for v in red], "rows": rows,
            "chosen_k": int(attrs.get("chosen_k", chosen)), "explanation": explanation,
            "headline": explanation.split("; k = ")[0].rstrip(".")}



def background_text(background: list[int], counts, n_positions: int,
                    kinds: dict | None = None) -> str:
    """The background chip: ``"2 background components: 0 (vacuum, 12 % of the scan), 3 (…)"``.

    Parameters
    ----------
    background : list of int
        Background component indices (root attribute ``background``).
    counts : sequence of int
        Positions per cluster.
    n_positions : int
    kinds : dict, optional
        ``{index: kind}`` from the root attribute ``background_kinds`` (JSON) when the
        writer recorded one; otherwise every background component is ``"vacuum"``
        (nmf4d's detector flags patterns holding the direct beam alone).

    Returns
    -------
    str
    """
    if not background:
        return "no background component"
    kinds = {str(k): str(v) for k, v in (kinds or {}).items()}
    items = []
    for b in background:
        share = 100.0 * float(counts[b]) / max(n_positions, 1) if b < len(counts) else 0.0
        items.append(f"{b} ({kinds.get(str(b), 'vacuum')}, {share:.0f} % of the scan)")
    n = len(background)
    return f"{n} background component{'s' if n > 1 else ''}: " + ", ".join(items)


def extent_text(shape, step, units: str) -> str:
    """``(60, 90)``, ``(2.5, 2.5)``, ``"nm"`` -> ``"150 × 225 nm"`` (None step: pixels)."""
    if not step:
        return f"{int(shape[0])} × {int(shape[1])} px"
    return f"{shape[0] * step[0]:.4g} × {shape[1] * step[1]:.4g} {units}"


def decision_context(r: dict) -> dict | None:
    """nmf4d's decision (results.h5 ``decision/``): clusters per rank and the verdict."""
    if "decision/rank" not in r:
        return None
    a = r.get("decision@attrs", {})
    per = json_attr(a, "per_rank", {}) or {}
    considered = [int(v) for v in a.get("considered", [0, 0])]
    rows = []
    for rank, n in zip(r["decision/rank"], r["decision/n_clusters"]):
        d = per.get(str(int(rank)), {})
        rows.append({"rank": int(rank), "n": int(n), "used": int(rank) == int(a.get("chosen_rank", -1)),
                     "considered": considered[0] <= int(rank) <= considered[1],
                     "merged": "; ".join("+".join(map(str, g)) for g in d.get("merged", [])) or "—",
                     "heldout": "; ".join("+".join(map(str, g))
                                          for g in d.get("merged_heldout", [])) or "—",
                     "background": ", ".join(f"{c} ({d.get('kinds', {}).get(str(c), '')})"
                                             for c in d.get("background", [])) or "—",
                     "dropped": ", ".join(map(str, d.get("dropped", []))) or "—"})
    return {"k": int(a.get("k", 0)), "rank": int(a.get("chosen_rank", 0)),
            "explanation": str(a.get("explanation", "")), "rows": rows}
