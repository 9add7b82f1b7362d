"""The report's figures that need no axes, drawn directly as images (no matplotlib).

One pure function per figure: arrays in, an ``(h, w, 3)`` uint8 RGB image out
(:func:`nmf4d.report.png.encode_png` makes the PNG). Maps are enlarged by pixel
repetition so that one scan position is one crisp block, and carry a scale bar —
calibrated (nm) when the results file records the scan step, in pixels otherwise;
patterns carry a reciprocal-space bar (Å⁻¹) likewise.

Cluster ``c`` has colour ``colours[c]`` everywhere (map, legend, frames, tables); see
:mod:`nmf4d.report.palette`. Patterns are shown on a log scale
(:func:`~nmf4d.report.png.log_scale`) so weak reflections stay visible beside the
direct beam. Per-cluster grids show at most the clusters in ``show`` (the caller
bounds it, :data:`MAX_PANELS`).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from . import png as P
from .calibration import Calibration, format_length, nice_bar
from .palette import HEATMAP_CMAP, PATTERN_CMAP, WEIGHT_CMAP, overlap_colours

#: Most per-cluster panels drawn in one figure (the tables list every cluster).
MAX_PANELS = 64
MAP_PX = 440        # longer side of a map
PATTERN_PX = 256    # longer side of a single pattern
TILE_PX = 128       # longer side of a grid tile
METRIC_LABELS = {"ssim": "SSIM", "psnr": "PSNR (dB)", "gmsd": "GMSD", "mdsi": "MDSI"}
HIGHER_IS_SIMILAR = {"ssim": True, "psnr": True, "gmsd": False, "mdsi": False}
ACCENT, BAD, PLAIN = "#0072B2", "#A63603", "#E6E6E6"


def panels_to_show(counts: Sequence[int], limit: int = MAX_PANELS) -> list[int]:
    """Clusters that get a panel: all if at most ``limit``, else the ``limit`` largest.

    Returns the indices in increasing order.
    """
    k = len(counts)
    if k <= limit:
        return list(range(k))
    order = np.argsort(-np.asarray(counts, float), kind="stable")[:limit]
    return sorted(int(c) for c in order)


def _scan_bar(rgb: np.ndarray, small_w: int, zoom: int, cal: Calibration | None,
              thin: int = 1) -> np.ndarray:
    upp = (cal.scan_step[1] if cal is not None and cal.scan_step else 1.0) * thin
    units = cal.scan_label if cal is not None else "px"
    length, px = nice_bar(upp, small_w)
    return P.scale_bar(rgb, px * zoom, format_length(length, units))


def _pattern_bar(rgb: np.ndarray, small_w: int, zoom: float, cal: Calibration | None,
                 shrink: int = 1) -> np.ndarray:
    upp = (cal.reciprocal[1] if cal is not None and cal.reciprocal else 1.0) * shrink
    units = cal.reciprocal_label if cal is not None else "px"
    length, px = nice_bar(upp, small_w)
    return P.scale_bar(rgb, int(round(px * zoom)), format_length(length, units))


def map_image(rgb_small: np.ndarray, cal: Calibration | None, *, target: int = MAP_PX,
              bar: bool = True, thin: int = 1) -> np.ndarray:
    """Enlarge a map (one pixel per scan position) and draw its scale bar.

    Maps more than twice ``target`` across are thinned instead (every ``f``-th position,
    nearest neighbour), so that a 4096-position scan still gives a small image. ``thin``:
    the map was already reduced by that factor (for the scale bar).
    """
    f = P.shrink_for(rgb_small.shape, target)
    if f > 1:
        small = rgb_small[::f, ::f]
        return _scan_bar(small, small.shape[1], 1, cal, thin=f * thin) if bar else small
    zoom = P.zoom_for(rgb_small.shape, target)
    out = P.upscale(rgb_small, zoom)
    return _scan_bar(out, rgb_small.shape[1], zoom, cal, thin=thin) if bar else out


def pattern_image(img: np.ndarray, cal: Calibration | None, *, target: int = PATTERN_PX,
                  vmax: float | None = None, bar: bool = True) -> np.ndarray:
    """A pattern on the log scale, enlarged (or block-averaged if large), with its bar."""
    shrink = P.shrink_for(img.shape, target)
    small = P.block_mean(img, shrink)
    zoom = P.zoom_for(small.shape, target)
    out = P.upscale(P.colourise(P.log_scale(small, vmax=None if vmax is None
                                            else vmax / shrink ** 2), PATTERN_CMAP), zoom)
    return _pattern_bar(out, small.shape[1], zoom, cal, shrink) if bar else out


def dataset_image(virtual_image: np.ndarray, mean_pattern: np.ndarray,
                  cal: Calibration | None = None) -> np.ndarray:
    """Virtual image (total intensity per position) beside the mean pattern (log scale).

    Parameters
    ----------
    virtual_image : ndarray of shape (scan_y, scan_x)
    mean_pattern : ndarray of shape (ky, kx)
    cal : Calibration, optional

    Returns
    -------
    ndarray of shape (h, w, 3), uint8
    """
    vi = np.asarray(virtual_image, np.float32)
    lo, hi = float(np.nanmin(vi)), float(np.nanmax(vi))
    norm = (vi - lo) / (hi - lo) if hi > lo else np.zeros_like(vi)
    left = map_image(P.colourise(norm, "gray"), cal, target=360)
    bar = P.colourbar("gray", left.shape[0], f"{hi:.4g}", f"{lo:.4g}", title="counts")
    right = pattern_image(mean_pattern, cal, target=max(256, min(360, left.shape[0])))
    return P.hstack([P.titled(P.hstack([left, bar], gap=6), "virtual image (total intensity)"),
                     P.titled(right, "mean diffraction pattern (log scale)")], gap=28)


def cluster_map_image(labels: np.ndarray, colours: Sequence[str], counts: Sequence[int],
                      background: Sequence[int] = (), cal: Calibration | None = None,
                      max_legend: int = MAX_PANELS) -> np.ndarray:
    """Cluster map (each position in its largest-weight component's colour) and legend.

    Parameters
    ----------
    labels : ndarray of shape (scan_y, scan_x), int
    colours : sequence of str
        ``colours[c]`` for cluster ``c`` (:func:`~nmf4d.report.palette.cluster_colours`).
    counts : sequence of int
        Positions per cluster, shown in the legend.
    background : sequence of int
        Clusters marked "(background)".
    cal : Calibration, optional
    max_legend : int
        Legend entries drawn; the rest are summarised in one line.

    Returns
    -------
    ndarray of shape (h, w, 3), uint8
    """
    k = len(colours)
    bg = {int(b) for b in background}
    m = map_image(P.labels_rgb(labels, colours), cal)
    shown = panels_to_show(counts, max_legend)
    lines = [(c, f"{c}: {int(counts[c])} px" + (" (background)" if c in bg else ""))
             for c in shown]
    row = P.text_size("0", P.FONT_PX)[1] + 7
    per_col = max(4, (max(m.shape[0], 200) - row) // row)
    ncol = int(math.ceil(len(lines) / per_col)) or 1
    col_w = 26 + max(P.text_size(t)[0] for _, t in lines) + 14
    extra = k - len(shown)
    c = P.Canvas(ncol * col_w + 4, max(m.shape[0], row * (min(per_col, len(lines)) + 2)))
    c.text(0, 0, "cluster: positions", bold=True)
    for i, (cl, text) in enumerate(lines):
        q, r = divmod(i, per_col)
        x, y = q * col_w, row * (r + 1) + 2
        c.rect(x, y, x + 18, y + row - 6, fill=P.hex_rgb(colours[cl]), outline=P.INK)
        c.text(x + 24, y, text)
    if extra > 0:
        c.text(0, row * (min(per_col, len(lines)) + 1) + 4,
               f"+ {extra} smaller clusters (see the table)", fill=P.MUTED)
    return P.hstack([m, c.array()], gap=16)


def patterns_image(components: np.ndarray, colours: Sequence[str],
                   background: Sequence[int] = (), cal: Calibration | None = None,
                   show: Sequence[int] | None = None) -> tuple[np.ndarray, list[tuple]]:
    """Component patterns (log scale, each to its maximum), framed in cluster colours.

    Parameters
    ----------
    components : ndarray of shape (k, ky, kx)
    colours : sequence of str
    background : sequence of int
        Tagged "bg".
    cal : Calibration, optional
        The first panel carries the reciprocal-space bar.
    show : sequence of int, optional
        Clusters drawn (default all).

    Returns
    -------
    image : ndarray of shape (h, w, 3), uint8
    boxes : list of (x0, y0, x1, y1)
        The pattern area of each panel (inside its frame).
    """
    show = list(range(components.shape[0])) if show is None else list(show)
    bg = {int(b) for b in background}
    tiles = [pattern_image(components[c], cal, target=TILE_PX, bar=(i == 0))
             for i, c in enumerate(show)]
    return P.tile_grid(tiles, heads=[(f"{c}" + (" bg" if c in bg else ""), colours[c])
                                     for c in show], frames=[colours[c] for c in show])


def weights_image(weights: np.ndarray, colours: Sequence[str], cal: Calibration | None = None,
                  show: Sequence[int] | None = None) -> np.ndarray:
    """Weight map of each component, each to its own maximum (paper Fig. 5b).

    Parameters
    ----------
    weights : ndarray of shape (k, scan_y, scan_x)
    colours : sequence of str
    cal : Calibration, optional
    show : sequence of int, optional

    Returns
    -------
    ndarray of shape (h, w, 3), uint8
    """
    show = list(range(weights.shape[0])) if show is None else list(show)
    side = max(weights.shape[1:])
    f = int(math.ceil(side / (1.5 * (TILE_PX + 32)))) if side > 1.5 * (TILE_PX + 32) else 1
    tiles = [map_image(P.colourise(P.unit_scale(P.block_mean(weights[c], f)), WEIGHT_CMAP), cal,
                       target=TILE_PX + 32, bar=(i == 0), thin=f) for i, c in enumerate(show)]
    grid, _ = P.tile_grid(tiles, heads=[(str(c), colours[c]) for c in show],
                          frames=[colours[c] for c in show], max_width=900)
    bar = P.colourbar(WEIGHT_CMAP, min(grid.shape[0], 220), "1", "0",
                      title="weight / component max")
    return P.hstack([grid, bar], gap=12)


def _boundaries(labels: np.ndarray) -> np.ndarray:
    b = np.zeros(labels.shape, bool)
    b[:-1, :] |= labels[:-1, :] != labels[1:, :]
    b[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    return b


def overlap_image(masks: np.ndarray, thresholds: Sequence[float], ratio: np.ndarray,
                  labels: np.ndarray, cal: Calibration | None = None) -> np.ndarray:
    """Overlap map at each threshold (paper Fig. 5c) beside the ratio second / first weight.

    Positions whose ratio passes a threshold take its colour (red 75 % ... blue 95 %),
    higher thresholds on top; cluster borders in light grey underneath.

    Parameters
    ----------
    masks : ndarray of shape (n, scan_y, scan_x), bool
    thresholds : sequence of float
    ratio : ndarray of shape (scan_y, scan_x)
    labels : ndarray of shape (scan_y, scan_x)
    cal : Calibration, optional

    Returns
    -------
    ndarray of shape (h, w, 3), uint8
    """
    rgb = np.full(labels.shape + (3,), 255, np.uint8)
    rgb[_boundaries(labels)] = (208, 208, 208)
    cols = overlap_colours(thresholds)
    order = np.argsort(np.asarray(thresholds, float))
    for i in order:
        rgb[np.asarray(masks[i], bool)] = P.hex_rgb(cols[i])
    left = map_image(rgb, cal, target=340)
    row = P.text_size("0")[1] + 7
    leg = P.Canvas(150, max(left.shape[0], row * (len(order) + 1)))
    leg.text(0, 0, "second / first", bold=True)
    for r, i in enumerate(order[::-1]):
        y = row * (r + 1) + 2
        leg.rect(0, y, 18, y + row - 6, fill=P.hex_rgb(cols[i]), outline=P.INK)
        leg.text(24, y, f"≥ {100 * float(thresholds[i]):.0f} %: {int(np.sum(masks[i]))}")
    right = map_image(P.colourise(np.clip(np.asarray(ratio, np.float32), 0, 1), WEIGHT_CMAP),
                      cal, target=340)
    bar = P.colourbar(WEIGHT_CMAP, right.shape[0], "1", "0")
    return P.hstack([P.titled(P.hstack([left, leg.array()], gap=10),
                              "overlap at each threshold (grey: cluster borders)"),
                     P.titled(P.hstack([right, bar], gap=6), "ratio second / first weight")],
                    gap=24)


def raw_vs_nmf_image(raw_mean: np.ndarray, nmf_pattern: np.ndarray, colours: Sequence[str],
                     ssim: Sequence[float] | None = None, psnr: Sequence[float] | None = None,
                     cal: Calibration | None = None,
                     show: Sequence[int] | None = None) -> np.ndarray:
    """Per cluster: mean raw pattern beside the NMF pattern, on one log scale per pair.

    Parameters
    ----------
    raw_mean, nmf_pattern : ndarray of shape (k, ky, kx)
    colours : sequence of str
    ssim, psnr : sequence of float, optional
        Shown in each pair's heading.
    cal : Calibration, optional
    show : sequence of int, optional

    Returns
    -------
    ndarray of shape (h, w, 3), uint8
    """
    show = list(range(raw_mean.shape[0])) if show is None else list(show)
    cells, heads = [], []
    lab_h = P.text_size("raw")[1] + 4
    for i, c in enumerate(show):
        top = float(max(np.max(raw_mean[c]), np.max(nmf_pattern[c])))
        a = P.framed(pattern_image(raw_mean[c], cal, target=112, vmax=top, bar=(i == 0)),
                     colours[c], 2)
        b = P.framed(pattern_image(nmf_pattern[c], cal, target=112, vmax=top, bar=False),
                     colours[c], 2)
        pair = P.hstack([a, b], gap=4)
        cv = P.Canvas(pair.shape[1], pair.shape[0] + lab_h)
        cv.paste(pair, 0, 0)
        cv.text(a.shape[1] // 2, pair.shape[0] + 1,
                "raw mean" if np.any(raw_mean[c]) else "no positions", anchor="ma",
                size=P.FONT_PX - 1, fill=P.MUTED)
        cv.text(a.shape[1] + 4 + b.shape[1] // 2, pair.shape[0] + 1, "NMF", anchor="ma",
                size=P.FONT_PX - 1, fill=P.MUTED)
        cells.append(cv.array())
        head = f"cluster {c}"
        if ssim is not None and psnr is not None:
            head += f" · SSIM {float(ssim[c]):.3f} · PSNR {float(psnr[c]):.1f}"
        heads.append((head, colours[c]))
    grid, _ = P.tile_grid(cells, heads=heads, gap=14)
    return grid


def pairwise_image(metric: str, ks: Sequence[int], mats: Sequence[np.ndarray],
                   chosen_k: int | None, redundant: Sequence[bool]) -> np.ndarray:
    """Level two: one metric's pairwise matrices, one panel per k, on one colour scale.

    The diagonal (a pattern against itself) is grey; the colour table is reversed for
    GMSD and MDSI (lower = more similar) so that bright always means similar. Component
    indices label the first row and column.

    Parameters
    ----------
    metric : {"ssim", "psnr", "gmsd", "mdsi"}
    ks : sequence of int
    mats : sequence of ndarray of shape (k, k)
    chosen_k : int or None
        Its panel is tagged "✓ chosen".
    redundant : sequence of bool
        Per k; tagged "✗ redundant".

    Returns
    -------
    ndarray of shape (h, w, 3), uint8
    """
    off = [np.asarray(m, float)[~np.eye(len(m), dtype=bool)] for m in mats]
    vals = np.concatenate([o for o in off if o.size]) if any(o.size for o in off) else np.zeros(1)
    vals = vals[np.isfinite(vals)]
    vmin, vmax = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
    span = vmax - vmin if vmax > vmin else 1.0
    higher = HIGHER_IS_SIMILAR.get(metric, True)
    table = HEATMAP_CMAP if higher else HEATMAP_CMAP + "_r"
    side = 112
    margin = 14
    tiles, heads = [], []
    for k, m, red in zip(ks, mats, redundant):
        m = np.asarray(m, float)
        cell = max(2, side // max(int(k), 1))
        rgb = P.colourise((m - vmin) / span, table)
        rgb[np.eye(len(m), dtype=bool) | ~np.isfinite(m)] = (238, 238, 238)
        img = P.upscale(rgb, cell)
        cv = P.Canvas(side + margin, side + margin)
        cv.paste(img, margin, margin)
        every = max(1, int(math.ceil(12 / cell)))
        for i in range(0, int(k), every):
            mid = margin + i * cell + cell // 2
            cv.text(mid, margin - 2, str(i), size=9, fill=P.MUTED, anchor="ms")
            cv.text(margin - 2, mid, str(i), size=9, fill=P.MUTED, anchor="rm")
        tiles.append(cv.array())
        if chosen_k is not None and int(k) == int(chosen_k):
            heads.append((f"k = {k}  ✓ chosen", ACCENT))
        elif red:
            heads.append((f"k = {k}  ✗ redundant", BAD))
        else:
            heads.append((f"k = {k}", PLAIN))
    grid, _ = P.tile_grid(tiles, heads=heads, gap=10, max_width=860)
    word = "higher" if higher else "lower"
    top, bottom = (vmax, vmin) if higher else (vmin, vmax)
    bar = P.colourbar(HEATMAP_CMAP, min(grid.shape[0], 260), f"{top:.3g}", f"{bottom:.3g}",
                      title=f"{METRIC_LABELS.get(metric, metric)}, {word} = similar")
    return P.hstack([grid, bar], gap=12)


__all__ = ["MAX_PANELS", "cluster_map_image", "dataset_image", "map_image", "overlap_image",
           "pairwise_image", "panels_to_show", "pattern_image", "patterns_image",
           "raw_vs_nmf_image", "weights_image"]
