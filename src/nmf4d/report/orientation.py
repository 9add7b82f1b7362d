"""The report's orientation section, from results.h5's ``orientation/`` group and the
figures the indexing wrote (``OUT/figures/orientation_*.png``)."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from .text import fmt

_FIGURES = (("orientation_map", "IPF-coloured orientation map (beam direction) with orix's "
             "colour key"), ("orientation_phases", "phase map"),
            ("orientation_patterns", "each cluster's pattern with its best template's spots"))


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def orientation_context(r: dict, out_dir: Path) -> dict | None:
    """Template data of the orientation section (None when the run was not indexed)."""
    if "orientation/phase" not in r:
        return None
    attrs = r.get("orientation@attrs", {})
    phase = [_text(p) for p in np.atleast_1d(r["orientation/phase"])]
    euler = np.degrees(np.asarray(r["orientation/euler"], np.float64))
    corr = r["orientation/correlation"]
    rel = r["orientation/reliability"]
    fried = r.get("orientation/friedel", np.zeros(len(phase), bool))
    feul = np.degrees(np.asarray(r.get("orientation/friedel_euler",
                                       np.full((len(phase), 3), np.nan)), np.float64))
    group = r.get("orientation/group", np.arange(len(phase)))
    rows = []
    for c in range(len(phase)):
        indexed = np.isfinite(euler[c]).all()
        rows.append({"c": c, "phase": phase[c],
                     "euler": ", ".join(f"{v:.1f}" for v in euler[c]) if indexed else "—",
                     "correlation": fmt(float(corr[c])), "reliability": fmt(float(rel[c]), 3),
                     "friedel": (", ".join(f"{v:.1f}" for v in feul[c]) if bool(fried[c])
                                 and np.isfinite(feul[c]).all() else "—"),
                     "group": int(group[c])})
    mis = np.asarray(r.get("orientation/misorientation", np.full((len(phase),) * 2, np.nan)))
    mis_rows = [[str(c)] + ["" if not np.isfinite(v) else f"{v:.1f}" for v in mis[c]]
                for c in range(len(phase))]
    figures = []
    for name, alt in _FIGURES:
        path = Path(out_dir) / "figures" / f"{name}.png"
        if path.is_file():
            figures.append({"src": "data:image/png;base64," +
                            base64.b64encode(path.read_bytes()).decode("ascii"), "alt": alt})
    try:
        names = ", ".join(p["name"] for p in json.loads(attrs.get("phases", "[]")))
    except (TypeError, ValueError, KeyError):
        names = "—"
    return {"rows": rows, "mis_columns": ["cluster"] + [str(c) for c in range(len(phase))],
            "mis_rows": mis_rows, "figures": figures, "phases": names,
            "resolution": attrs.get("resolution", "—"),
            "merge_tolerance": attrs.get("merge_tolerance", "—"),
            "scale_searched": bool(attrs.get("scale_searched", False)),
            "scale": fmt(attrs.get("reciprocal_scale"))}
