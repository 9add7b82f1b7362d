"""Figures of an indexing result (matplotlib ``Figure`` on an Agg canvas, no pyplot state).

* :func:`orientation_map_figure` — the scan coloured by orix's IPF-TSL key (crystal
  direction along the beam, or another sample direction) with the key of every phase;
* :func:`phase_map_figure` — the phase of every position;
* :func:`cluster_patterns_figure` — each cluster's prepared pattern with its solution's
  spots drawn over it;
* :func:`misorientation_table` — the misorientation matrix as table data for HTML.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ._deps import require
from .core import IndexResult

_DIRECTIONS = {"x": (1, 0, 0), "y": (0, 1, 0), "z": (0, 0, 1)}
_NOT_INDEXED = (0.0, 0.0, 0.0)


def _figure(size):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def _map_orientations(result: IndexResult, labels, positions):
    lab = np.asarray(labels)
    if lab.ndim != 2 or (lab.size and (lab.min() < 0 or lab.max() >= result.k)):
        raise InputError(f"labels must be 2D with values in 0..{result.k - 1}")
    phase = result.phase_index[lab]
    euler = result.euler[lab]
    if positions is not None:
        own = np.isfinite(positions.euler).all(axis=-1) & (phase >= 0)
        euler = np.where(own[..., None], positions.euler, euler)
    return lab, phase, euler


def ipf_colours(result: IndexResult, labels, *, positions=None,
                direction: str = "z") -> np.ndarray:
    """IPF-TSL colours (scan_y, scan_x, 3) in [0, 1] of the orientation map (orix);
    black where not indexed."""
    require()
    import orix.plot  # noqa: F401 (colour keys)
    from orix.plot import IPFColorKeyTSL
    from orix.vector import Vector3d

    from .symmetry import orientations

    if direction not in _DIRECTIONS:
        raise InputError(f"direction={direction!r} is not allowed: choose x, y or z")
    lab, phase, euler = _map_orientations(result, labels, positions)
    rgb = np.zeros(lab.shape + (3,))
    rgb[:] = _NOT_INDEXED
    for p, ph in enumerate(result.phases):
        sel = phase == p
        if not sel.any():
            continue
        key = IPFColorKeyTSL(ph.point_group.laue, direction=Vector3d(_DIRECTIONS[direction]))
        rgb[sel] = key.orientation2color(orientations(euler[sel], ph)).reshape(-1, 3)
    return rgb


def orientation_map_figure(result: IndexResult, labels, *, positions=None,
                           direction: str = "z"):
    """IPF-coloured orientation map with orix's colour key of each phase.

    Parameters
    ----------
    result : IndexResult
    labels : ndarray of shape (scan_y, scan_x)
    positions : PositionOrientations, optional
        Per-position orientations instead of the clusters'.
    direction : {"z", "x", "y"}
        Sample direction whose crystal direction is coloured (z: the beam).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from orix.vector import Vector3d

    rgb = ipf_colours(result, labels, positions=positions, direction=direction)
    in_map = result.phase_index[np.asarray(labels)]
    present = [p for p in range(len(result.phases)) if np.any(in_map == p)]
    n = max(1, len(present))
    fig = _figure((4.2 + 2.2 * n, 4.2))
    gs = fig.add_gridspec(n, 2, width_ratios=[4.2, 2.2 * 1.0])
    ax = fig.add_subplot(gs[:, 0])
    ax.imshow(rgb, interpolation="nearest")
    ax.set_title(f"IPF-{direction.upper()} orientation map")
    ax.set_xlabel("scan x")
    ax.set_ylabel("scan y")
    for i, p in enumerate(present):
        ph = result.phases[p]
        kax = fig.add_subplot(gs[i, 1], projection="ipf", symmetry=ph.point_group.laue,
                              direction=Vector3d(_DIRECTIONS[direction]))
        kax.plot_ipf_color_key(show_title=False)
        kax.set_title(f"{ph.name} ({ph.point_group.laue.name})", fontsize=9, pad=14)
    fig.tight_layout()
    return fig


def phase_map_figure(result: IndexResult, labels):
    """The phase of every position (grey: not indexed), with a legend.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import ListedColormap, to_rgb
    from matplotlib.patches import Patch

    from .crystalmap import _COLOURS

    lab, phase, _ = _map_orientations(result, labels, None)
    colours = [to_rgb("0.6")] + [to_rgb(_COLOURS[i % len(_COLOURS)])
                                 for i in range(len(result.phases))]
    fig = _figure((5.5, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(phase + 1, cmap=ListedColormap(colours), vmin=0, vmax=len(colours) - 1,
              interpolation="nearest")
    handles = [Patch(color=colours[0], label="not indexed")] + [
        Patch(color=colours[i + 1], label=p.name) for i, p in enumerate(result.phases)]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    ax.set_title("phase map")
    ax.set_xlabel("scan x")
    ax.set_ylabel("scan y")
    fig.tight_layout()
    return fig


def cluster_patterns_figure(result: IndexResult, *, columns: int = 4, label_spots: int = 6):
    """Each cluster's prepared pattern (background removed, as matched) with the spots of
    its solution (circles, area ~ kinematic intensity; the strongest labelled hkl).

    Returns
    -------
    matplotlib.figure.Figure
    """
    k = result.k
    cols = max(1, min(columns, k))
    rows = int(np.ceil(k / cols))
    fig = _figure((2.6 * cols, 2.8 * rows))
    for c in range(k):
        ax = fig.add_subplot(rows, cols, c + 1)
        img = result.prepared[c]
        ax.imshow(img, cmap="gray", vmin=0, vmax=max(float(img.max()), 1e-12))
        spots = result.spots[c] if c < len(result.spots) else None
        if spots is not None and len(spots):
            ax.scatter(spots[:, 1], spots[:, 0], s=20 + 80 * spots[:, 2], facecolors="none",
                       edgecolors="tab:red", linewidths=0.8)
            for s in spots[np.argsort(spots[:, 2])[::-1][:label_spots]]:
                ax.annotate("".join(str(int(round(v))) if v >= 0 else f"-{int(round(-v))}"
                                    for v in s[3:6]), (s[1], s[0]), xytext=(3, 3),
                            textcoords="offset points", color="tab:red", fontsize=6)
            title = (f"{c}: {result.phase[c]} r={result.correlation[c]:.2f} "
                     f"rel={result.reliability[c]:.2f}" + (" F" if result.friedel[c] else ""))
        else:
            title = f"{c}: {result.phase[c]}"
        ax.set_title(title, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def misorientation_table(result: IndexResult, *, decimals: int = 1) -> dict:
    """The misorientation matrix as table data for an HTML report.

    Returns
    -------
    dict with
        ``columns`` : list of str (``"cluster"``, ``"phase"``, then ``"0"`` .. ``"k-1"``),
        ``rows`` : list of lists of str (one per cluster; "" where not defined),
        ``values`` : the (k, k) float matrix in degrees (NaN where not defined),
        ``groups`` : the merged groups, ``tolerance`` : their tolerance (degrees).
    """
    m = np.asarray(result.misorientation, dtype=np.float64)
    cols = ["cluster", "phase"] + [str(c) for c in range(result.k)]
    rows = []
    for i in range(result.k):
        cells = ["" if not np.isfinite(v) else f"{v:.{decimals}f}" for v in m[i]]
        rows.append([str(i), str(result.phase[i])] + cells)
    return {"columns": cols, "rows": rows, "values": m,
            "groups": [list(g) for g in result.groups],
            "tolerance": float(result.merge_tolerance)}
