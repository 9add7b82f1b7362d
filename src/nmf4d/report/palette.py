"""Colour choices of the report, in one place so every figure agrees.

Cluster colours
    The first seven are the Okabe-Ito colours without black (Okabe & Ito 2008,
    "Color Universal Design"), distinguishable under the common colour-vision
    deficiencies. Further clusters take Paul Tol's *muted* then *light* qualitative
    schemes (https://personal.sron.nl/~pault/), also designed to be colour-blind safe.
    That gives 24 distinct colours; beyond that the list repeats (the legend's number
    still tells clusters apart). Background (vacuum) components are drawn in neutral
    greys so that the coloured clusters stand out (up to four of them; more take
    palette colours so that no two clusters share a colour).

Overlap thresholds
    The paper's Figure 5 order: red 75 %, orange 80 %, yellow 85 %, green 90 %,
    blue 95 %. The hues are taken from the Okabe-Ito / Tol sets so that neighbours
    differ in lightness as well as hue.

Patterns are shown in grey levels (``PATTERN_CMAP``) so that the coloured frames are
the only colour on them; weight maps use ``cividis``, which is perceptually uniform
and readable with deuteranopia and protanopia.
"""
from __future__ import annotations

from typing import Sequence

OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"]
TOL_MUTED = ["#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99",
             "#999933", "#AA4499"]
TOL_LIGHT = ["#77AADD", "#EE8866", "#EEDD88", "#FFAABB", "#99DDFF", "#44BB99", "#BBCC33",
             "#AAAA00"]
CLUSTER_COLOURS = OKABE_ITO + TOL_MUTED + TOL_LIGHT
BACKGROUND_GREYS = ["#BBBBBB", "#888888", "#DDDDDD", "#555555"]

#: Overlap threshold colours in the paper's order (red, orange, yellow, green, blue).
OVERLAP_COLOURS = {0.75: "#CC3311", 0.80: "#EE7733", 0.85: "#F0E442", 0.90: "#009E73",
                   0.95: "#0072B2"}
OVERLAP_EXTRA = ["#AA4499", "#332288", "#882255"]

PATTERN_CMAP = "gray"
WEIGHT_CMAP = "cividis"
HEATMAP_CMAP = "viridis"


def cluster_colours(k: int, background: Sequence[int] = ()) -> list[str]:
    """Colour of each of ``k`` clusters, as ``#RRGGBB`` strings.

    Parameters
    ----------
    k : int
        Number of clusters (components).
    background : sequence of int
        Indices of background components; they get neutral greys (unless there are
        more of them than distinct greys, when every cluster takes a palette colour).

    Returns
    -------
    list of str
        ``colours[c]`` is the colour of cluster ``c`` in every figure and table.
    """
    bg = [int(b) for b in background if 0 <= int(b) < k]
    if len(bg) > len(BACKGROUND_GREYS):      # too many to grey out distinctly
        bg = []
    out: list[str] = []
    n_fg = n_bg = 0
    for c in range(k):
        if c in bg:
            out.append(BACKGROUND_GREYS[n_bg % len(BACKGROUND_GREYS)])
            n_bg += 1
        else:
            out.append(CLUSTER_COLOURS[n_fg % len(CLUSTER_COLOURS)])
            n_fg += 1
    return out


def overlap_colours(thresholds: Sequence[float]) -> list[str]:
    """Colour of each overlap threshold (paper's order for 0.75 ... 0.95).

    Parameters
    ----------
    thresholds : sequence of float
        Thresholds as fractions (0.75, not 75).

    Returns
    -------
    list of str
    """
    out = []
    extra = 0
    for t in thresholds:
        key = min(OVERLAP_COLOURS, key=lambda v: abs(v - float(t)))
        if abs(key - float(t)) < 1e-3:
            out.append(OVERLAP_COLOURS[key])
        else:
            out.append(OVERLAP_EXTRA[extra % len(OVERLAP_EXTRA)])
            extra += 1
    return out


def text_colour(hex_colour: str) -> str:
    """Black or white, whichever reads better on ``hex_colour``."""
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) / 255 for i in (0, 2, 4))
    lum = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000000" if lum > 0.45 else "#FFFFFF"
