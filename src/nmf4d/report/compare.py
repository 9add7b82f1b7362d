"""Figure and page of ``nmf4d compare-filters`` (the paper's Figure 2)."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from .plots import new_figure, to_png
from .palette import HEATMAP_CMAP

# Okabe-Ito colours (colour-blind safe), one per filter
FILTER_COLOURS = ("#000000", "#E69F00", "#0072B2", "#009E73", "#CC79A7", "#D55E00")


def filters_figure(names, ks, losses, chosen, nsd_matrix):
    """K-component loss of each filter (left) and the NSD matrix filters x clusters (right).

    Parameters
    ----------
    names : sequence of str, length m
    ks, losses : sequences of ndarray of shape (n_k,)
    chosen : sequence of int
    nsd_matrix : ndarray of shape (m, max_k), NaN padded
    """
    m = len(names)
    fig = new_figure(10.5, max(3.4, 0.45 * m + 2.2))
    ax, bx = fig.subplots(1, 2, width_ratios=(1.0, 1.15))
    for i, (n, k, loss, c) in enumerate(zip(names, ks, losses, chosen)):
        col = FILTER_COLOURS[i % len(FILTER_COLOURS)]
        ax.plot(k, loss, "-o", ms=3, color=col, label=f"{n} (k = {c})")
        if c in list(k):
            j = list(k).index(c)
            ax.plot([k[j]], [loss[j]], "*", ms=12, color=col, markeredgecolor="white")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of components k")
    ax.set_ylabel("mean |V − WH|")
    ax.set_title("K-component loss per filter (star: chosen k)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    im = bx.imshow(nsd_matrix, aspect="auto", cmap=HEATMAP_CMAP)
    bx.set_yticks(range(m), names)
    bx.set_xticks(range(nsd_matrix.shape[1]), [str(i + 1) for i in range(nsd_matrix.shape[1])])
    bx.set_xlabel("cluster (sorted by NSD)")
    bx.set_title("NSD of each cluster's representative pattern")
    finite = nsd_matrix[np.isfinite(nsd_matrix)]
    mid = float(np.nanmedian(finite)) if finite.size else 0.0
    if nsd_matrix.shape[1] <= 14:
        for (i, j), v in np.ndenumerate(nsd_matrix):
            if np.isfinite(v):
                bx.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=7,
                        color="white" if v < mid else "black")
    fig.colorbar(im, ax=bx, label="NSD (input units)")
    return fig


def build_compare_report(out_dir) -> Path:
    """Write ``out_dir/report.html`` and ``out_dir/figures/filters.png`` from compare.h5."""
    import h5py
    import jinja2

    out = Path(out_dir)
    path = out / "compare.h5"
    if not path.exists():
        raise InputError(f"no comparison results at {str(path)!r}")
    with h5py.File(path, "r") as f:
        names = json.loads(f.attrs["filters"])
        skipped = json.loads(f.attrs.get("skipped", "{}"))
        chosen = [int(v) for v in f["chosen_k"][()]]
        nsd = f["nsd_matrix"][()]
        ks = [f[f"filters/{n}/sweep/k"][()] for n in names]
        losses = [f[f"filters/{n}/sweep/loss"][()] for n in names]
        knees = [int(f[f"filters/{n}/sweep"].attrs["knee"]) for n in names]
        secs = [float(f[f"filters/{n}"].attrs["seconds"]) for n in names]
        mean_nsd = [float(np.mean(f[f"filters/{n}/nsd"][()])) for n in names]
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    png = to_png(filters_figure(names, ks, losses, chosen, nsd))
    (out / "figures").mkdir(exist_ok=True)
    (out / "figures" / "filters.png").write_bytes(png)
    env = jinja2.Environment(loader=jinja2.PackageLoader("nmf4d.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html"]))
    rows = [dict(name=n, knee=kn, k=c, mean_nsd=m, seconds=s)
            for n, kn, c, m, s in zip(names, knees, chosen, mean_nsd, secs)]
    html = env.get_template("compare.html").render(
        input=attrs.get("input"), created=attrs.get("created"), version=attrs.get("nmf4d_version"),
        parameters=attrs.get("parameters"), rows=rows, skipped=skipped,
        figure="data:image/png;base64," + base64.b64encode(png).decode("ascii"))
    target = out / "report.html"
    target.write_text(html, encoding="utf-8")
    return target
