"""The report's plots (figures with axes), drawn with matplotlib.

Only figures that need axes are drawn here (the K-component loss, the level-two scores,
the filter comparison); images without axes are in :mod:`nmf4d.report.images`.
matplotlib is imported with this module, which the report imports only when it draws
a plot. No function touches pyplot's global state: each builds a
:class:`matplotlib.figure.Figure` on an Agg canvas, so the caller's backend is never
changed. :func:`to_png` renders a figure to PNG bytes.
"""
from __future__ import annotations

import io
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 150
FONT = 9
METRIC_LABELS = {"ssim": "SSIM", "psnr": "PSNR (dB)", "gmsd": "GMSD", "mdsi": "MDSI"}
HIGHER_IS_SIMILAR = {"ssim": True, "psnr": True, "gmsd": False, "mdsi": False}


def new_figure(width: float, height: float, *, margins: Mapping[str, float] | None = None
               ) -> Figure:
    """A Figure of ``width`` x ``height`` inches on an Agg canvas.

    With ``margins`` (``left``, ``right``, ``bottom``, ``top``, ``wspace`` as for
    :meth:`~matplotlib.figure.Figure.subplots_adjust`) the layout is fixed, which renders
    in half the time of matplotlib's constrained layout; without, constrained layout.
    """
    if margins is None:
        fig = Figure(figsize=(width, height), layout="constrained")
    else:
        fig = Figure(figsize=(width, height))
        fig.subplots_adjust(**margins)
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Figure, dpi: int = DPI, *, tight: bool | None = None) -> bytes:
    """Render ``fig`` to PNG bytes at ``dpi``.

    ``tight`` (default: when the figure uses constrained layout) trims the PNG to the
    drawn content, at the cost of a second draw.
    """
    if tight is None:
        tight = fig.get_layout_engine() is not None
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white",
                **({"bbox_inches": "tight", "pad_inches": 0.04} if tight else {}))
    return buf.getvalue()


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
    fig = new_figure(6.0, 3.0, margins=dict(left=0.12, right=0.985, bottom=0.16, top=0.97))
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
    fig = new_figure(8.5, 2.7, margins=dict(left=0.07, right=0.99, bottom=0.27, top=0.9,
                                            wspace=0.32))
    metrics = [m for m in ("ssim", "psnr", "gmsd", "mdsi") if m in scores]
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
    fig.legend(handles, names, loc="lower center", ncol=2, fontsize=FONT - 1,
               frameon=False)
    return fig


__all__ = ["DPI", "loss_figure", "new_figure", "scores_figure", "to_png"]
