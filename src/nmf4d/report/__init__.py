"""The HTML report of an nmf4d run: ``build_report(OUT)`` writes ``OUT/report.html``.

The report reads only ``OUT/results.h5`` (never the input data) and writes
``OUT/report.html``, a self-contained page (figures embedded as base64 PNG, inline
style, no network) and ``OUT/figures/*.png`` at 200 dpi. Figures are drawn with
matplotlib's Agg canvas without pyplot, so building a report never changes the
matplotlib backend of the calling session.
"""
from .build import build_report

__all__ = ["build_report"]
