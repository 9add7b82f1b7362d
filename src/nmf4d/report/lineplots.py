"""The report's two line plots (K-component loss, level-two scores), drawn with Pillow.

matplotlib would cost more than the rest of the report together (its import and two
figures: ~1 s of a ~1.5 s build on two busy cores), so these plots are drawn directly:
axes with round ticks, light grid, lines, markers, a shaded window, dashed guides and a
legend. They are drawn at twice their size on the page (:data:`SCALE`), which keeps them
sharp on high-density screens and in print; the page shows them at half width.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from .png import INK, MUTED, WHITE, font, hex_rgb

SCALE = 2
GRID = (226, 226, 230)
LINE = (51, 51, 51)
METRIC_LABELS = {"ssim": "SSIM", "psnr": "PSNR (dB)", "gmsd": "GMSD", "mdsi": "MDSI"}
HIGHER_IS_SIMILAR = {"ssim": True, "psnr": True, "gmsd": False, "mdsi": False}


def nice_ticks(lo: float, hi: float, target: int = 5) -> np.ndarray:
    """Round tick values (1, 2, 2.5 or 5 x 10^n apart) covering [lo, hi]."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        hi = lo + 1.0 if np.isfinite(lo) else 1.0
        lo = hi - 1.0
    raw = (hi - lo) / max(target, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step + 1e-9) * step
    return np.arange(start, hi + step * 0.5, step)


def _tick_text(v: float, step: float) -> str:
    """A tick label with as many decimals as the step needs."""
    digits = max(0, math.ceil(-math.log10(step) - 1e-9)) if step > 0 else 0
    if abs(step * 10 ** digits - round(step * 10 ** digits)) > 1e-6:
        digits += 1
    return f"{v:.{digits}f}"


def _blend(colour: str, alpha: float) -> tuple[int, int, int]:
    c = np.array(hex_rgb(colour), float)
    return tuple(int(round(v)) for v in 255 * (1 - alpha) + c * alpha)


class Panel:
    """One set of axes in a box of the image; data limits map to pixel coordinates."""

    def __init__(self, draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int],
                 xlim: tuple[float, float], ylim: tuple[float, float]):
        self.d, self.box, self.xlim, self.ylim = draw, box, xlim, ylim

    def x(self, v: float) -> float:
        x0, _, x1, _ = self.box
        return x0 + (v - self.xlim[0]) / (self.xlim[1] - self.xlim[0]) * (x1 - x0)

    def y(self, v: float) -> float:
        _, y0, _, y1 = self.box
        return y1 - (v - self.ylim[0]) / (self.ylim[1] - self.ylim[0]) * (y1 - y0)

    def vspan(self, a: float, b: float, colour: str, alpha: float) -> None:
        x0, y0, x1, y1 = self.box
        self.d.rectangle((max(x0, self.x(a)), y0, min(x1, self.x(b)), y1),
                         fill=_blend(colour, alpha))

    def grid_and_axes(self, xticks: Sequence[float], yticks: Sequence[float], *,
                      xlabels: Sequence[str], ylabels: Sequence[str], size: int) -> None:
        x0, y0, x1, y1 = self.box
        f = font(size)
        for v, t in zip(yticks, ylabels):
            yy = self.y(v)
            if y0 - 1 <= yy <= y1 + 1:
                self.d.line((x0, yy, x1, yy), fill=GRID, width=SCALE)
                self.d.line((x0 - 4 * SCALE, yy, x0, yy), fill=INK, width=SCALE)
                self.d.text((x0 - 6 * SCALE, yy), t, font=f, fill=INK, anchor="rm")
        for v, t in zip(xticks, xlabels):
            xx = self.x(v)
            self.d.line((xx, y0, xx, y1), fill=GRID, width=SCALE)
            self.d.line((xx, y1, xx, y1 + 4 * SCALE), fill=INK, width=SCALE)
            self.d.text((xx, y1 + 6 * SCALE), t, font=f, fill=INK, anchor="ma")

    def frame(self) -> None:
        self.d.rectangle(self.box, outline=INK, width=SCALE)

    def line(self, xs, ys, colour, width: float = 1.2, dashed: bool = False) -> None:
        pts = [(self.x(a), self.y(b)) for a, b in zip(xs, ys) if np.isfinite(b)]
        w = max(1, int(round(width * SCALE)))
        if dashed:
            for (ax, ay), (bx, by) in zip(pts[:-1], pts[1:]):
                n = max(1, int(math.hypot(bx - ax, by - ay) // (6 * SCALE)))
                for i in range(0, n, 2):
                    self.d.line((ax + (bx - ax) * i / n, ay + (by - ay) * i / n,
                                 ax + (bx - ax) * (i + 1) / n, ay + (by - ay) * (i + 1) / n),
                                fill=colour, width=w)
        elif len(pts) > 1:
            self.d.line(pts, fill=colour, width=w, joint="curve")

    def vline(self, v: float, colour, dashed: bool = True, width: float = 1.2) -> None:
        self.line([v, v], [self.ylim[0], self.ylim[1]], colour, width, dashed)

    def markers(self, xs, ys, kind: str, colour, size: float = 3.5) -> None:
        for a, b in zip(xs, ys):
            if np.isfinite(b):
                marker(self.d, self.x(a), self.y(b), kind, colour, size)


def marker(d: ImageDraw.ImageDraw, x: float, y: float, kind: str, colour, size: float) -> None:
    """A marker ``o``, ``x`` or ``*`` of radius ``size`` (page px) centred at (x, y)."""
    r = size * SCALE
    if kind == "o":
        d.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    elif kind == "x":
        w = max(1, int(1.4 * SCALE))
        d.line((x - r, y - r, x + r, y + r), fill=colour, width=w)
        d.line((x - r, y + r, x + r, y - r), fill=colour, width=w)
    elif kind == "*":
        pts = [(x + (r if i % 2 == 0 else 0.45 * r) * math.sin(i * math.pi / 5),
                y - (r if i % 2 == 0 else 0.45 * r) * math.cos(i * math.pi / 5)) for i in range(10)]
        d.polygon(pts, fill=colour, outline=INK)


def _ylabel(img: Image.Image, x: int, y_mid: int, text: str, size: int) -> None:
    f = font(size)
    x0, y0, x1, y1 = f.getbbox(text)
    tmp = Image.new("RGB", (x1 - x0 + 4, y1 - y0 + 4), WHITE)
    ImageDraw.Draw(tmp).text((2 - x0, 2 - y0), text, font=f, fill=INK)
    rot = tmp.rotate(90, expand=True)
    img.paste(rot, (x, int(y_mid - rot.size[1] / 2)))


def _legend(d: ImageDraw.ImageDraw, x: int, y: int, entries, size: int, *, row: int) -> None:
    f = font(size)
    for i, (kind, colour, label, line) in enumerate(entries):
        yy = y + i * row + row // 2
        if line:
            d.line((x, yy, x + 22 * SCALE, yy), fill=colour, width=max(1, int(1.2 * SCALE)))
        if kind == "span":
            d.rectangle((x, yy - 5 * SCALE, x + 22 * SCALE, yy + 5 * SCALE), fill=colour)
        elif kind == "dash":
            for s in range(0, 22, 8):
                d.line((x + s * SCALE, yy, x + (s + 5) * SCALE, yy), fill=colour,
                       width=max(1, int(1.2 * SCALE)))
        elif kind:
            marker(d, x + 11 * SCALE, yy, kind, colour, 5 if kind == "*" else 3.5)
        d.text((x + 28 * SCALE, yy), label, font=f, fill=INK, anchor="lm")


def _limits(values: np.ndarray, pad: float = 0.06) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if not v.size:
        return 0.0, 1.0
    lo, hi = float(v.min()), float(v.max())
    span = hi - lo if hi > lo else max(abs(hi), 1.0) * 0.1
    return lo - pad * span, hi + pad * span


def loss_plot(ks: np.ndarray, loss: np.ndarray, knee: int, window: Sequence[int],
              chosen_k: int) -> np.ndarray:
    """Level one: K-component loss against k, knee and candidate window (paper Fig. 3a).

    Parameters
    ----------
    ks, loss : ndarray of shape (m,)
    knee : int
    window : (int, int)
        Inclusive candidate window, shaded.
    chosen_k : int
        Starred when in ``ks``.

    Returns
    -------
    ndarray of shape (h, w, 3), uint8, drawn at :data:`SCALE` times its page size
    """
    S = SCALE
    W, H = 720 * S, 340 * S
    img = Image.new("RGB", (W, H), WHITE)
    d = ImageDraw.Draw(img)
    ks = np.asarray(ks, float)
    loss = np.asarray(loss, float)
    ylo, yhi = _limits(loss)
    yt = nice_ticks(ylo, yhi)
    ylo, yhi = min(ylo, yt[0]), max(yhi, yt[-1])
    p = Panel(d, (88 * S, 14 * S, W - 16 * S, H - 56 * S), (ks.min() - 0.7, ks.max() + 0.7),
              (ylo, yhi))
    p.vspan(window[0] - 0.5, window[1] + 0.5, "#56B4E9", 0.18)
    step = float(yt[1] - yt[0]) if len(yt) > 1 else 1.0
    xt = ks if ks.size <= 25 else ks[::2]
    p.grid_and_axes(xt, yt, xlabels=[str(int(v)) for v in xt],
                    ylabels=[_tick_text(v, step) for v in yt], size=12 * S)
    p.line(ks, loss, LINE, 1.4)
    p.markers(ks, loss, "o", LINE, 2.6)
    p.vline(knee, hex_rgb("#D55E00"))
    sel = ks == chosen_k
    if sel.any():
        marker(d, p.x(chosen_k), p.y(float(loss[sel][0])), "*", hex_rgb("#0072B2"), 8)
    p.frame()
    d.text(((p.box[0] + p.box[2]) / 2, H - 8 * S), "number of components k", font=font(13 * S),
           fill=INK, anchor="md")
    _ylabel(img, 6 * S, (p.box[1] + p.box[3]) // 2, "mean |V − WH|", 13 * S)
    entries = [("span", _blend("#56B4E9", 0.35), f"candidate window {window[0]}..{window[1]}",
                False), ("o", LINE, "K-component loss", True),
               ("dash", hex_rgb("#D55E00"), f"knee (k = {knee})", False)]
    if sel.any():
        entries.append(("*", hex_rgb("#0072B2"), f"chosen (k = {chosen_k})", False))
    _legend(d, p.box[2] - 230 * S, p.box[1] + 8 * S, entries, 12 * S, row=20 * S)
    return np.asarray(img)


def scores_plot(ks: Sequence[int], scores: Mapping[str, np.ndarray], chosen_k: int | None,
                redundant: Sequence[bool]) -> np.ndarray:
    """Level two: each metric's per-k score (its most similar pair), chosen k dashed.

    Parameters
    ----------
    ks : sequence of int
    scores : mapping of metric name to ndarray of shape (len(ks),)
    chosen_k : int or None
    redundant : sequence of bool
        Redundant k are crosses, accepted ones dots.

    Returns
    -------
    ndarray of shape (h, w, 3), uint8, drawn at :data:`SCALE` times its page size
    """
    S = SCALE
    metrics = [m for m in ("ssim", "psnr", "gmsd", "mdsi") if m in scores]
    n = max(1, len(metrics))
    W, H = 1000 * S, 300 * S
    img = Image.new("RGB", (W, H), WHITE)
    d = ImageDraw.Draw(img)
    ks = np.asarray(ks, float)
    red = np.asarray(redundant, bool)
    left, gap, right = 80 * S, 62 * S, 12 * S
    pw = (W - left - right - gap * (n - 1)) / n
    xt = ks if ks.size <= 12 else ks[::2]
    for i, m in enumerate(metrics):
        s = np.asarray(scores[m], float)
        ylo, yhi = _limits(s, 0.08)
        yt = nice_ticks(ylo, yhi, 4)
        yt = yt[(yt >= ylo) & (yt <= yhi)] if ((yt >= ylo) & (yt <= yhi)).sum() >= 2 else yt
        step = float(yt[1] - yt[0]) if len(yt) > 1 else 1.0
        x0 = int(left + i * (pw + gap))
        p = Panel(d, (x0, 30 * S, int(x0 + pw), H - 78 * S), (ks.min() - 0.6, ks.max() + 0.6),
                  (ylo, yhi))
        p.grid_and_axes(xt, yt, xlabels=[str(int(v)) for v in xt],
                        ylabels=[_tick_text(v, step) for v in yt], size=11 * S)
        p.line(ks, s, (153, 153, 153), 1.0)
        p.markers(ks[~red], s[~red], "o", hex_rgb("#0072B2"), 3)
        p.markers(ks[red], s[red], "x", hex_rgb("#D55E00"), 3.5)
        if chosen_k is not None:
            p.vline(chosen_k, hex_rgb("#0072B2"), width=1.0)
        p.frame()
        word = "↑ similar" if HIGHER_IS_SIMILAR[m] else "↓ similar"
        d.text(((p.box[0] + p.box[2]) / 2, 22 * S), f"{METRIC_LABELS[m]}  ({word})",
               font=font(12 * S), fill=INK, anchor="md")
        d.text(((p.box[0] + p.box[2]) / 2, p.box[3] + 24 * S), "k", font=font(12 * S),
               fill=INK, anchor="ma")
    _ylabel(img, 4 * S, (30 * S + H - 78 * S) // 2, "most similar pair", 12 * S)
    _legend(d, W // 2 - 130 * S, H - 30 * S, [("o", hex_rgb("#0072B2"), "accepted", False)],
            12 * S, row=20 * S)
    _legend(d, W // 2 + 20 * S, H - 30 * S, [("x", hex_rgb("#D55E00"), "redundant", False)],
            12 * S, row=20 * S)
    d.text((W - right, H - 12 * S), "dashed: chosen k", font=font(11 * S), fill=MUTED,
           anchor="rd")
    return np.asarray(img)


__all__ = ["SCALE", "loss_plot", "nice_ticks", "scores_plot"]
