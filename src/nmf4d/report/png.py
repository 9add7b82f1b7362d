"""Raster primitives for figures without axes: colour mapping, upscaling, text, PNG.

Images are numpy arrays, ``(h, w, 3)`` uint8 RGB, coloured with the tables of
:mod:`nmf4d.report._luts` (matplotlib's maps, copied) and enlarged by pixel
repetition (nearest neighbour: one scan position stays one crisp block). Text,
frames, scale bars and colour bars are drawn with Pillow in DejaVu Sans (shipped with
matplotlib; found without importing it). Nothing here imports matplotlib.
"""
from __future__ import annotations

import functools
import importlib.util
import io
import math
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ._luts import TABLES

WHITE = (255, 255, 255)
INK = (29, 29, 31)
MUTED = (90, 90, 96)
FONT_PX = 13
GAP = 8


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """``"#RRGGBB"`` -> (r, g, b)."""
    h = colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


@functools.lru_cache(maxsize=None)
def lut(name: str) -> np.ndarray:
    """256 x 3 uint8 colour table: ``gray``, ``cividis``, ``viridis``, ``RdBu_r``; ``_r`` reverses.

    A reversed name that is itself a table (``RdBu_r``) is taken as is.
    """
    if name in TABLES:
        return np.frombuffer(bytes.fromhex("".join(TABLES[name])), np.uint8).reshape(256, 3)
    if name == "gray":
        return np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    if name.endswith("_r"):
        return lut(name[:-2])[::-1].copy()
    raise KeyError(f"no colour table {name!r}")


def to_index(values01: np.ndarray) -> np.ndarray:
    """[0, 1] floats (NaN -> 0) to uint8 table indices, rounded."""
    v = np.nan_to_num(np.asarray(values01, np.float32), nan=0.0)
    return (np.clip(v, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def colourise(values01: np.ndarray, name: str) -> np.ndarray:
    """Colour an image of values in [0, 1] with table ``name``: (h, w) -> (h, w, 3) uint8."""
    return lut(name)[to_index(values01)]


def labels_rgb(labels: np.ndarray, colours: Sequence[str]) -> np.ndarray:
    """Cluster map: position coloured ``colours[label]`` (labels outside the list: white)."""
    table = np.array([hex_rgb(c) for c in colours] + [WHITE], np.uint8)
    lab = np.asarray(labels)
    idx = np.where((lab >= 0) & (lab < len(colours)), lab, len(colours))
    return table[idx]


def log_scale(img: np.ndarray, *, vmax: float | None = None, floor: float = 1e-3) -> np.ndarray:
    """Map a diffraction pattern to [0, 1] on a log scale (black = ``floor`` x ``vmax``).

    Parameters
    ----------
    img : ndarray of shape (ky, kx)
    vmax : float, optional
        Intensity shown as white (default: the pattern's maximum); give two patterns the
        same value to compare them on one scale.
    floor : float
        Fraction of ``vmax`` shown as black; three decades by default.

    Returns
    -------
    ndarray of shape (ky, kx), float32 in [0, 1]
    """
    a = np.asarray(img, dtype=np.float32)
    top = float(np.nanmax(a)) if vmax is None and a.size else float(vmax or 0.0)
    if not np.isfinite(top) or top <= 0:
        return np.zeros(a.shape, np.float32)
    rel = np.clip(np.nan_to_num(a / np.float32(top)), floor, 1.0)
    return ((np.log10(rel) - math.log10(floor)) / -math.log10(floor)).astype(np.float32)


def unit_scale(img: np.ndarray) -> np.ndarray:
    """Linear [0, 1] scale to the image's maximum (all zero stays zero)."""
    a = np.asarray(img, np.float32)
    top = float(np.nanmax(a)) if a.size else 0.0
    return a / np.float32(top) if np.isfinite(top) and top > 0 else np.zeros_like(a)


def upscale(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer factor: (h, w, 3) -> (f h, f w, 3)."""
    if factor <= 1:
        return rgb
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def block_mean(img: np.ndarray, factor: int) -> np.ndarray:
    """Shrink a 2D float image by averaging ``factor`` x ``factor`` blocks (remainder cropped)."""
    if factor <= 1:
        return np.asarray(img, np.float32)
    h, w = img.shape[0] // factor, img.shape[1] // factor
    a = np.asarray(img, np.float32)[:h * factor, :w * factor]
    return a.reshape(h, factor, w, factor).mean(axis=(1, 3))


def zoom_for(shape: Sequence[int], target: int) -> int:
    """Integer enlargement bringing the longer side of ``shape`` near ``target`` px (>= 1)."""
    return max(1, int(round(target / max(int(shape[0]), int(shape[1]), 1))))


def shrink_for(shape: Sequence[int], target: int) -> int:
    """Integer reduction bringing the longer side of ``shape`` to at most ~2 x ``target``."""
    return max(1, int(max(shape[0], shape[1]) // (2 * target)) + 1) \
        if max(shape[0], shape[1]) > 2 * target else 1


@functools.lru_cache(maxsize=None)
def _font_path(bold: bool) -> str | None:
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or spec.origin is None:
        return None
    p = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / (
        "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    return str(p) if p.is_file() else None


@functools.lru_cache(maxsize=None)
def font(size: int = FONT_PX, bold: bool = False):
    """DejaVu Sans at ``size`` px (Pillow's own font when it cannot be found)."""
    path = _font_path(bold)
    if path:
        return ImageFont.truetype(path, size)
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1
        return ImageFont.load_default()


def text_size(text: str, size: int = FONT_PX, bold: bool = False) -> tuple[int, int]:
    """(width, height) in px of ``text``."""
    x0, y0, x1, y1 = font(size, bold).getbbox(text or " ")
    return int(x1 - min(x0, 0)), int(y1 - min(y0, 0))


class Canvas:
    """A white Pillow image to paste arrays and draw text on; :meth:`array` returns it."""

    def __init__(self, width: int, height: int):
        self.image = Image.new("RGB", (max(1, int(width)), max(1, int(height))), WHITE)
        self.draw = ImageDraw.Draw(self.image)

    def paste(self, rgb: np.ndarray, x: int, y: int) -> None:
        self.image.paste(Image.fromarray(np.ascontiguousarray(rgb)), (int(x), int(y)))

    def text(self, x: int, y: int, text: str, *, size: int = FONT_PX, fill=INK,
             bold: bool = False, anchor: str = "la") -> None:
        self.draw.text((int(x), int(y)), text, font=font(size, bold), fill=fill, anchor=anchor)

    def rect(self, x0: int, y0: int, x1: int, y1: int, *, fill=None, outline=None,
             width: int = 1) -> None:
        self.draw.rectangle((int(x0), int(y0), int(x1), int(y1)), fill=fill, outline=outline,
                            width=width)

    def tag(self, x: int, y: int, text: str, colour: str, *, size: int = FONT_PX - 1) -> int:
        """A label in a box of ``colour`` (text black or white); returns its width."""
        from .palette import text_colour

        w, h = text_size(text, size)
        self.rect(x, y, x + w + 8, y + h + 4, fill=hex_rgb(colour))
        self.text(x + 4, y + 1, text, size=size, fill=hex_rgb(text_colour(colour)))
        return w + 8

    def array(self) -> np.ndarray:
        return np.asarray(self.image)


def framed(rgb: np.ndarray, colour: str | tuple, width: int = 3) -> np.ndarray:
    """``rgb`` inside a border of ``width`` px in ``colour``."""
    c = hex_rgb(colour) if isinstance(colour, str) else colour
    h, w = rgb.shape[:2]
    out = np.empty((h + 2 * width, w + 2 * width, 3), np.uint8)
    out[...] = c
    out[width:width + h, width:width + w] = rgb
    return out


def scale_bar(rgb: np.ndarray, bar_px: int, label: str, *, margin: int = 6) -> np.ndarray:
    """Draw a white scale bar with a dark outline and its label in the lower right corner.

    Parameters
    ----------
    rgb : ndarray of shape (h, w, 3)
        The (enlarged) image; drawn on a copy.
    bar_px : int
        Length of the bar in pixels of ``rgb``.
    label : str
        E.g. ``"50 nm"``.

    Returns
    -------
    ndarray of shape (h, w, 3)
    """
    img = Image.fromarray(np.ascontiguousarray(rgb))
    d = ImageDraw.Draw(img)
    h, w = rgb.shape[:2]
    size = FONT_PX - 1 if w >= 120 else FONT_PX - 3
    tw, th = text_size(label, size, bold=True)
    thick = 4 if w >= 120 else 3
    x1 = w - margin
    x0 = max(margin, x1 - int(bar_px))
    y1 = h - margin
    y0 = y1 - thick
    d.rectangle((x0 - 1, y0 - 1, x1 + 1, y1 + 1), fill=INK)
    d.rectangle((x0, y0, x1, y1), fill=WHITE)
    tx = min(max(2, (x0 + x1) // 2), w - tw // 2 - 2)
    d.text((tx, y0 - 3), label, font=font(size, True), fill=WHITE, anchor="ms",
           stroke_width=2, stroke_fill=INK)
    return np.asarray(img)


def colourbar(name: str, height: int, top: str, bottom: str, *, width: int = 12,
              title: str = "") -> np.ndarray:
    """A vertical colour bar of table ``name`` with labels at its ends (and a title)."""
    labels_w = max(text_size(top)[0], text_size(bottom)[0])
    tw = text_size(title, FONT_PX - 1)[1] + 4 if title else 0
    c = Canvas(width + 6 + labels_w + tw + 4, height)
    grad = lut(name)[np.linspace(255, 0, max(2, height - 12)).round().astype(int)]
    bar = np.repeat(grad[:, None, :], width, axis=1)
    c.paste(framed(bar, INK, 1), 0, 5)
    c.text(width + 6, 5, top, anchor="lt")
    c.text(width + 6, height - 5, bottom, anchor="lb")
    if title:
        tmp = Image.new("RGB", (height, tw), WHITE)
        ImageDraw.Draw(tmp).text((height // 2, tw // 2), title, font=font(FONT_PX - 1),
                                 fill=MUTED, anchor="mm")
        c.image.paste(tmp.rotate(90, expand=True), (width + 8 + labels_w, 0))
    return c.array()


def tile_grid(tiles: Sequence[np.ndarray], *, heads: Sequence[tuple[str, str]] | None = None,
              frames: Sequence[str] | None = None, frame_width: int = 3,
              max_width: int = 1000, gap: int = GAP) -> tuple[np.ndarray, list[tuple]]:
    """Lay equal-sized tiles out in rows, each optionally framed and headed by a tag.

    Parameters
    ----------
    tiles : sequence of ndarray of shape (h, w, 3)
        All of one size.
    heads : sequence of (text, colour), optional
        A tag above each tile, in a box of the colour.
    frames : sequence of str, optional
        Frame colour of each tile.
    max_width : int
        Width the rows may take; sets the number of columns.

    Returns
    -------
    image : ndarray of shape (H, W, 3)
    boxes : list of (x0, y0, x1, y1)
        Where each tile (inside its frame) lies in ``image``.
    """
    n = len(tiles)
    if n == 0:
        return np.full((1, 1, 3), 255, np.uint8), []
    th, tw = tiles[0].shape[:2]
    fw = frame_width if frames else 0
    head_h = text_size("0", FONT_PX - 1)[1] + 8 if heads else 0
    head_w = max(text_size(t, FONT_PX - 1)[0] + 12 for t, _ in heads) if heads else 0
    cell_w = max(tw + 2 * fw, head_w)
    cell_h = th + 2 * fw + head_h
    cols = max(1, min(n, (max_width + gap) // (cell_w + gap)))
    rows = int(math.ceil(n / cols))
    c = Canvas(cols * cell_w + (cols - 1) * gap, rows * cell_h + (rows - 1) * gap)
    boxes = []
    for i, t in enumerate(tiles):
        r, q = divmod(i, cols)
        x, y = q * (cell_w + gap), r * (cell_h + gap)
        if heads:
            text, colour = heads[i]
            c.tag(x, y, text, colour)
        tile = framed(t, frames[i], fw) if frames else t
        c.paste(tile, x, y + head_h)
        boxes.append((x + fw, y + head_h + fw, x + fw + tw, y + head_h + fw + th))
    return c.array(), boxes


def hstack(parts: Sequence[np.ndarray], gap: int = 2 * GAP, align: str = "top") -> np.ndarray:
    """Place images side by side on white (top- or centre-aligned)."""
    h = max(p.shape[0] for p in parts)
    c = Canvas(sum(p.shape[1] for p in parts) + gap * (len(parts) - 1), h)
    x = 0
    for p in parts:
        c.paste(p, x, 0 if align == "top" else (h - p.shape[0]) // 2)
        x += p.shape[1] + gap
    return c.array()


def titled(rgb: np.ndarray, title: str, *, size: int = FONT_PX) -> np.ndarray:
    """``rgb`` with a one-line title above it."""
    th = text_size(title, size)[1] + 6
    c = Canvas(max(rgb.shape[1], text_size(title, size)[0] + 2), rgb.shape[0] + th)
    c.text(0, 0, title, size=size)
    c.paste(rgb, 0, th)
    return c.array()


def encode_png(rgb: np.ndarray, compress_level: int = 4) -> bytes:
    """PNG bytes of an (h, w, 3) uint8 image (zlib level 4: ~fast, ~small)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG",
                                                    compress_level=compress_level)
    return buf.getvalue()


__all__ = ["Canvas", "colourbar", "colourise", "encode_png", "framed", "hex_rgb", "hstack",
           "labels_rgb", "log_scale", "lut", "scale_bar", "tile_grid", "titled", "upscale",
           "zoom_for"]
