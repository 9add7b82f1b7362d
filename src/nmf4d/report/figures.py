"""Figures of the report: one pure function per figure, arrays in, Figure out.

No function here reads a file or touches pyplot's global state: each builds a
:class:`matplotlib.figure.Figure` attached to an Agg canvas, so importing this module
never changes the backend of the caller's session. :func:`to_png` renders a figure to
PNG bytes (200 dpi by default).

Cluster ``c`` has colour ``colours[c]`` everywhere (map, legend, frames, tables); see
:mod:`nmf4d.report.palette`. Diffraction patterns are shown on a logarithmic scale
(:func:`display_pattern`) so weak reflections stay visible beside the direct beam.
"""
from __future__ import annotations

import io
import math
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap, to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ..options import METRIC_NAMES
from .palette import HEATMAP_CMAP, PATTERN_CMAP, WEIGHT_CMAP, overlap_colours, text_colour

DPI = 200
FONT = 9
METRIC_LABELS = {"ssim": "SSIM", "psnr": "PSNR (dB)", "gmsd": "GMSD", "mdsi": "MDSI"}
HIGHER_IS_SIMILAR = {"ssim": True, "psnr": True, "gmsd": False, "mdsi": False}


def new_figure(width: float, height: float) -> Figure:
    """A Figure of ``width`` x ``height`` inches on an Agg canvas, constrained layout."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Figure, dpi: int = DPI) -> bytes:
    """Render ``fig`` to PNG bytes at ``dpi``, trimmed to its drawn content."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white", bbox_inches="tight",
                pad_inches=0.04)
    return buf.getvalue()


def display_pattern(img: np.ndarray, *, vmax: float | None = None,
                    floor: float = 1e-3) -> np.ndarray:
    """Map a diffraction pattern to [0, 1] on a log scale.

    Parameters
    ----------
    img : ndarray of shape (ky, kx)
    vmax : float, optional
        Intensity shown as white (default: the pattern's maximum). Give the same value
        to two patterns to compare them on one scale.
    floor : float
        Fraction of ``vmax`` shown as black; three decades by default.

    Returns
    -------
    ndarray of shape (ky, kx), values in [0, 1]
    """
    a = np.asarray(img, dtype=np.float64)
    top = float(np.nanmax(a)) if vmax is None else float(vmax)
    if not np.isfinite(top) or top <= 0:
        return np.zeros_like(a)
    rel = np.clip(np.nan_to_num(a / top), floor, 1.0)
    return (np.log10(rel) - math.log10(floor)) / -math.log10(floor)


def _aspect(shape: Sequence[int]) -> float:
    """Height / width of an image, clipped to [0.25, 4] for figure sizing."""
    return float(np.clip(shape[0] / max(shape[1], 1), 0.25, 4.0))


def _panel(n: int) -> float:
    """Width in inches of one small image panel in a grid of ``n``."""
    return 1.6 if n <= 4 else 1.15


def _grid(n: int, max_cols: int) -> tuple[int, int]:
    cols = max(1, min(n, max_cols))
    return int(math.ceil(n / cols)), cols


def _frame(ax, colour: str, width: float = 3.0) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_edgecolor(colour)
        s.set_linewidth(width)


def _tag(ax, text: str, colour: str) -> None:
    """A title in a box of the cluster's colour."""
    ax.set_title(text, fontsize=FONT, color=text_colour(colour), pad=4,
                 bbox=dict(boxstyle="round,pad=0.25", facecolor=colour, edgecolor="none"))


def _scan_axes(ax, xlabel: str = "scan x", ylabel: str = "scan y") -> None:
    """Label an image axis with integer pixel ticks."""
    ax.set_xlabel(xlabel, fontsize=FONT)
    ax.set_ylabel(ylabel, fontsize=FONT)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    ax.tick_params(labelsize=FONT - 1)


def _hide_unused(axes, n: int) -> None:
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)


def dataset_figure(virtual_image: np.ndarray, mean_pattern: np.ndarray) -> Figure:
    """Virtual image (total intensity per scan position) and mean pattern (log scale).

    Parameters
    ----------
    virtual_image : ndarray of shape (scan_y, scan_x)
    mean_pattern : ndarray of shape (ky, kx)

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = new_figure(7.0, float(np.clip(3.0 * _aspect(virtual_image.shape), 1.6, 5.0)) + 0.5)
    ax1, ax2 = fig.subplots(1, 2)
    im = ax1.imshow(virtual_image, cmap="gray", interpolation="nearest")
    ax1.set_title("virtual image (total intensity)", fontsize=FONT + 1)
    cb = fig.colorbar(im, ax=ax1, shrink=0.85)
    cb.ax.tick_params(labelsize=FONT - 1)
    ax2.imshow(display_pattern(mean_pattern), cmap=PATTERN_CMAP, vmin=0, vmax=1,
               interpolation="nearest")
    ax2.set_title("mean diffraction pattern (log scale)", fontsize=FONT + 1)
    _scan_axes(ax1)
    _scan_axes(ax2, "kx", "ky")
    return fig


def loss_figure(ks: np.ndarray, loss: np.ndarray, knee: int, window: Sequence[int],
                chosen_k: int) -> Figure:
    """Level one: K-component loss against k, knee and candidate window (paper Fig. 3a).

    Parameters
    ----------
    ks, loss : ndarray of shape (m,)
        The k values of the sweep and their loss.
    knee : int
    window : (int, int)
        Inclusive candidate window.
    chosen_k : int
        Marked with a star when it lies in ``ks``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = new_figure(6.0, 3.0)
    ax = fig.subplots()
    ks = np.asarray(ks)
    loss = np.asarray(loss)
    ax.axvspan(window[0] - 0.5, window[1] + 0.5, color="#56B4E9", alpha=0.18, lw=0,
               label=f"candidate window {window[0]}..{window[1]}")
    ax.plot(ks, loss, "-o", color="#333333", ms=3.5, lw=1.2, label="K-component loss")
    ax.axvline(knee, color="#D55E00", ls="--", lw=1.2, label=f"knee (k = {knee})")
    sel = ks == chosen_k
    if sel.any():
        ax.plot(ks[sel], loss[sel], "*", color="#0072B2", ms=14, mec="black", mew=0.6,
                label=f"chosen (k = {chosen_k})", zorder=5)
    ax.set_xlabel("number of components k", fontsize=FONT + 1)
    ax.set_ylabel("mean |V − WH|", fontsize=FONT + 1)
    ax.set_xticks(ks if ks.size <= 25 else ks[::2])
    ax.tick_params(labelsize=FONT)
    ax.grid(alpha=0.3, lw=0.5)
    ax.legend(fontsize=FONT, frameon=False)
    return fig


def pairwise_figure(metric: str, ks: Sequence[int], mats: Sequence[np.ndarray],
                    chosen_k: int | None, redundant: Sequence[bool]) -> Figure:
    """Level two: one metric's pairwise matrices, one panel per k, on one colour scale.

    The diagonal (a pattern against itself) is left blank. The colour map is reversed
    for GMSD and MDSI (lower = more similar) so that bright always means similar.

    Parameters
    ----------
    metric : {"ssim", "psnr", "gmsd", "mdsi"}
    ks : sequence of int
        The k of each panel.
    mats : sequence of ndarray of shape (k, k)
    chosen_k : int or None
        Its panel is framed and labelled "chosen".
    redundant : sequence of bool
        Per k; labelled "redundant".

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = len(ks)
    rows, cols = _grid(n, 5)
    fig = new_figure(1.75 * cols + 0.9, 1.85 * rows + 0.35)
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    off = [np.asarray(m, float)[~np.eye(len(m), dtype=bool)] for m in mats]
    vals = np.concatenate([o for o in off if o.size]) if any(o.size for o in off) else np.zeros(1)
    vals = vals[np.isfinite(vals)]
    vmin, vmax = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
    if vmax <= vmin:
        vmax = vmin + 1e-9
    cmap = HEATMAP_CMAP if HIGHER_IS_SIMILAR.get(metric, True) else HEATMAP_CMAP + "_r"
    im = None
    for i, (k, m) in enumerate(zip(ks, mats)):
        ax = axes.ravel()[i]
        m = np.array(m, dtype=float)
        np.fill_diagonal(m, np.nan)
        im = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, vmin=vmin, vmax=vmax,
                       interpolation="nearest")
        ax.set_facecolor("#EEEEEE")
        step = 1 if k <= 8 else 2 if k <= 16 else 4
        ax.set_xticks(range(0, k, step))
        ax.set_yticks(range(0, k, step))
        ax.tick_params(labelsize=FONT - 2, length=2, pad=1)
        title = f"k = {k}"
        colour = "black"
        if chosen_k is not None and k == chosen_k:
            title += "  ✓ chosen"
            for s in ax.spines.values():
                s.set_linewidth(2.5)
                s.set_edgecolor("#0072B2")
            colour = "#0072B2"
        elif redundant[i]:
            title += "  ✗ redundant"
            colour = "#A63603"
        ax.set_title(title, fontsize=FONT, color=colour,
                     fontweight="bold" if colour != "black" else "normal")
    _hide_unused(axes, n)
    if im is not None:
        word = "higher" if HIGHER_IS_SIMILAR.get(metric, True) else "lower"
        cb = fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, aspect=25)
        cb.set_label(f"{METRIC_LABELS.get(metric, metric)} ({word} = more similar)",
                     fontsize=FONT)
        cb.ax.tick_params(labelsize=FONT - 1)
    return fig


def scores_figure(ks: Sequence[int], scores: Mapping[str, np.ndarray], chosen_k: int | None,
                  redundant: Sequence[bool]) -> Figure:
    """Level two: each metric's per-k score (its most similar pair), chosen k marked.

    Parameters
    ----------
    ks : sequence of int
    scores : mapping of metric name to ndarray of shape (len(ks),)
    chosen_k : int or None
    redundant : sequence of bool

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = new_figure(8.5, 2.7)
    metrics = [m for m in METRIC_NAMES if m in scores]
    axes = np.atleast_1d(fig.subplots(1, max(1, len(metrics)), sharex=True))
    ks = np.asarray(ks)
    red = np.asarray(redundant, bool)
    for ax, m in zip(axes, metrics):
        s = np.asarray(scores[m], float)
        ax.plot(ks, s, "-", color="#999999", lw=1)
        ax.plot(ks[~red], s[~red], "o", color="#0072B2", ms=4, label="accepted")
        ax.plot(ks[red], s[red], "x", color="#D55E00", ms=5, mew=1.4, label="redundant")
        if chosen_k is not None:
            ax.axvline(chosen_k, color="#0072B2", ls="--", lw=1)
        word = "↑ similar" if HIGHER_IS_SIMILAR[m] else "↓ similar"
        ax.set_title(f"{METRIC_LABELS[m]}  ({word})", fontsize=FONT)
        ax.set_xlabel("k", fontsize=FONT)
        ax.set_xticks(ks if ks.size <= 12 else ks[::2])
        ax.tick_params(labelsize=FONT - 1)
        ax.grid(alpha=0.3, lw=0.5)
    axes[0].set_ylabel("most similar pair", fontsize=FONT)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=2, fontsize=FONT - 1,
               frameon=False)
    return fig


def cluster_map_figure(labels: np.ndarray, colours: Sequence[str], counts: Sequence[int],
                       background: Sequence[int] = ()) -> Figure:
    """Cluster map: each scan position coloured by its largest-weight component.

    Parameters
    ----------
    labels : ndarray of shape (scan_y, scan_x), int
    colours : sequence of str
        ``colours[c]`` for cluster ``c`` (see :func:`~nmf4d.report.palette.cluster_colours`).
    counts : sequence of int
        Positions per cluster, shown in the legend.
    background : sequence of int
        Clusters marked "(background)" in the legend.

    Returns
    -------
    matplotlib.figure.Figure
    """
    k = len(colours)
    ncol = 1 if k <= 12 else 2
    height = float(np.clip(3.4 * _aspect(labels.shape), 1.8, 6.0)) + 0.4
    fig = new_figure(4.6 + 1.0 * ncol, max(height, 0.2 * math.ceil(k / ncol) + 0.7))
    ax = fig.subplots()
    ax.imshow(labels, cmap=ListedColormap(list(colours)), vmin=-0.5, vmax=k - 0.5,
              interpolation="nearest")
    _scan_axes(ax)
    bg = {int(b) for b in background}
    handles = [Patch(facecolor=colours[c], edgecolor="black", lw=0.4,
                     label=f"{c}: {int(counts[c])} px" + (" (background)" if c in bg else ""))
               for c in range(k)]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=FONT,
              frameon=False, ncol=ncol, title="cluster: positions", title_fontsize=FONT)
    return fig


def _panel_grid(k: int, image_shape, *, extra_width: float):
    """Figure with one panel per component (7 or 8 per row) sized for ``image_shape``."""
    rows, cols = _grid(k, 7 if k <= 14 else 8)
    p = _panel(k)
    fig = new_figure(p * cols + extra_width, (p * _aspect(image_shape) + 0.25) * rows + 0.1)
    return fig, np.atleast_2d(fig.subplots(rows, cols, squeeze=False))


def patterns_figure(components: np.ndarray, colours: Sequence[str],
                    background: Sequence[int] = ()) -> Figure:
    """Component patterns (log scale), each framed in its cluster's colour.

    Parameters
    ----------
    components : ndarray of shape (k, ky, kx)
    colours : sequence of str
    background : sequence of int
        Components tagged "bg".

    Returns
    -------
    matplotlib.figure.Figure
    """
    k = components.shape[0]
    fig, axes = _panel_grid(k, components.shape[1:], extra_width=0.2)
    bg = {int(b) for b in background}
    for c in range(k):
        ax = axes.ravel()[c]
        ax.imshow(display_pattern(components[c]), cmap=PATTERN_CMAP, vmin=0, vmax=1,
                  interpolation="nearest")
        _frame(ax, colours[c])
        _tag(ax, f"{c}" + (" bg" if c in bg else ""), colours[c])
    _hide_unused(axes, k)
    return fig


def weights_figure(weights: np.ndarray, colours: Sequence[str]) -> Figure:
    """Weight map of each component, each scaled to its own maximum (paper Fig. 5b).

    Parameters
    ----------
    weights : ndarray of shape (k, scan_y, scan_x)
    colours : sequence of str

    Returns
    -------
    matplotlib.figure.Figure
    """
    k = weights.shape[0]
    fig, axes = _panel_grid(k, weights.shape[1:], extra_width=0.8)
    im = None
    for c in range(k):
        ax = axes.ravel()[c]
        w = np.asarray(weights[c], float)
        top = float(w.max())
        im = ax.imshow(w / top if top > 0 else w, cmap=WEIGHT_CMAP, vmin=0, vmax=1,
                       interpolation="nearest")
        _frame(ax, colours[c])
        _tag(ax, f"{c}", colours[c])
    _hide_unused(axes, k)
    if im is not None:
        cb = fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, aspect=20)
        cb.set_label("weight / component max", fontsize=FONT - 1)
        cb.ax.tick_params(labelsize=FONT - 2)
    return fig


def _boundaries(labels: np.ndarray) -> np.ndarray:
    b = np.zeros(labels.shape, bool)
    b[:-1, :] |= labels[:-1, :] != labels[1:, :]
    b[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    return b


def overlap_figure(masks: np.ndarray, thresholds: Sequence[float], ratio: np.ndarray,
                   labels: np.ndarray) -> Figure:
    """Overlap maps (paper Fig. 5c) beside the continuous second/first weight ratio.

    Positions whose ratio passes each threshold take the threshold's colour (red 75 %,
    orange 80 %, yellow 85 %, green 90 %, blue 95 %), higher thresholds drawn on top;
    cluster borders are drawn in light grey underneath.

    Parameters
    ----------
    masks : ndarray of shape (n, scan_y, scan_x), bool
    thresholds : sequence of float
        Fractions, one per mask.
    ratio : ndarray of shape (scan_y, scan_x)
    labels : ndarray of shape (scan_y, scan_x)

    Returns
    -------
    matplotlib.figure.Figure
    """
    sy, sx = labels.shape
    fig = new_figure(8.0, float(np.clip(3.0 * _aspect(labels.shape), 1.6, 5.5)) + 0.7)
    ax1, ax2 = fig.subplots(1, 2)
    rgba = np.ones((sy, sx, 4))
    rgba[_boundaries(labels)] = to_rgba("#D0D0D0")
    cols = overlap_colours(thresholds)
    order = np.argsort(np.asarray(thresholds, float))
    handles = []
    for i in order:
        m = np.asarray(masks[i], bool)
        rgba[m] = to_rgba(cols[i])
        handles.append(Patch(facecolor=cols[i], edgecolor="black", lw=0.4,
                             label=f"≥ {100 * float(thresholds[i]):.0f} %: {int(m.sum())} px"))
    ax1.imshow(rgba, interpolation="nearest")
    ax1.set_title("overlap at each threshold (grey: cluster borders)", fontsize=FONT)
    ax1.legend(handles=handles[::-1], loc="upper left", bbox_to_anchor=(1.02, 1.0),
               fontsize=FONT - 1, frameon=False, title="second / first weight",
               title_fontsize=FONT - 1)
    im = ax2.imshow(ratio, cmap=WEIGHT_CMAP, vmin=0, vmax=1, interpolation="nearest")
    ax2.set_title("ratio second / first weight", fontsize=FONT)
    cb = fig.colorbar(im, ax=ax2, shrink=0.85)
    cb.ax.tick_params(labelsize=FONT - 1)
    _scan_axes(ax1)
    _scan_axes(ax2)
    return fig


def raw_vs_nmf_figure(raw_mean: np.ndarray, nmf_pattern: np.ndarray,
                      colours: Sequence[str], ssim: Sequence[float] | None = None,
                      psnr: Sequence[float] | None = None) -> Figure:
    """Per cluster: mean raw pattern beside the NMF pattern, on one log scale per pair.

    Parameters
    ----------
    raw_mean, nmf_pattern : ndarray of shape (k, ky, kx)
    colours : sequence of str
    ssim, psnr : sequence of float, optional
        Raw vs NMF metrics shown in each pair's heading.

    Returns
    -------
    matplotlib.figure.Figure
    """
    k = raw_mean.shape[0]
    rows, cols = _grid(k, 4)
    fig = new_figure(2.15 * cols, 1.45 * rows + 0.1)
    subs = np.atleast_2d(fig.subfigures(rows, cols, squeeze=False, wspace=0.02, hspace=0.02))
    for c in range(k):
        sf = subs.ravel()[c]
        a1, a2 = sf.subplots(1, 2)
        top = float(max(np.max(raw_mean[c]), np.max(nmf_pattern[c])))
        raw_name = "raw mean" if np.any(raw_mean[c]) else "no positions"
        for ax, img, name in ((a1, raw_mean[c], raw_name), (a2, nmf_pattern[c], "NMF")):
            ax.imshow(display_pattern(img, vmax=top), cmap=PATTERN_CMAP, vmin=0, vmax=1,
                      interpolation="nearest")
            _frame(ax, colours[c], 2.5)
            ax.set_xlabel(name, fontsize=FONT - 1, labelpad=2)
        head = f"cluster {c}"
        if ssim is not None and psnr is not None:
            head += f" · SSIM {ssim[c]:.3f} · PSNR {psnr[c]:.1f}"
        sf.suptitle(head, fontsize=FONT - 1, color=text_colour(colours[c]),
                    bbox=dict(boxstyle="round,pad=0.2", facecolor=colours[c], edgecolor="none"))
    for sf in subs.ravel()[k:]:
        sf.set_visible(False)
    return fig
