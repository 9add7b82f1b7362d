"""The HTML report of an nmf4d run: ``build_report(OUT)`` writes ``OUT/report.html``.

The report reads only ``OUT/results.h5`` (never the input data) and writes
``OUT/report.html``, a self-contained page (figures embedded as base64 PNG, inline
style and script, no network) with an interactive explorer of the scan at the top, and
``OUT/figures/*.png``. Images without axes are drawn directly (:mod:`.images`); only
plots use matplotlib (:mod:`.plots`, imported when a plot is drawn), through its Agg
canvas without pyplot, so building a report never changes the caller's backend.

Importing this package is cheap: :mod:`.explorer_data` and :mod:`.calibration`, which
the pipeline uses, import nothing beyond numpy.
"""
from __future__ import annotations


def build_report(out_dir, *, display_dir=None, timings=None):
    """Write ``OUT/report.html`` and ``OUT/figures/*.png``; see :func:`.build.build_report`."""
    from .build import build_report as _build

    return _build(out_dir, display_dir=display_dir, timings=timings)


__all__ = ["build_report"]
