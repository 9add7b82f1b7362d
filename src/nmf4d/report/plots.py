"""matplotlib figures: the filter comparison's plot (:mod:`nmf4d.report.compare`).

The run report draws no matplotlib figure (its images are in :mod:`.images`, its two
line plots in :mod:`.lineplots`: matplotlib's import and drawing took longer than the
rest of the report). matplotlib is imported with this module only. No function touches
pyplot's global state: figures live on an Agg canvas, so the caller's backend is never
changed. :func:`to_png` renders a figure to PNG bytes.
"""
from __future__ import annotations

import io
from typing import Mapping

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 150


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


__all__ = ["DPI", "new_figure", "to_png"]
