"""The data of the report's explorer, embedded in the page as one JSON object.

Built from what ``OUT/results.h5`` holds: the ``explorer/`` group (binned, encoded
patterns at the stored positions, see :mod:`nmf4d.explorer_data`), the weights,
labels, overlap ratio, virtual image and cluster means. Arrays travel as base64 of
their little-endian bytes, the large ones deflate-compressed (``"z": true``; the page
inflates them with the browser's ``DecompressionStream``). The page script
(``templates/explorer.js``) draws everything else: the map of any layer, the pattern,
its NMF reconstruction ``weights[:, y, x] @ components`` (binned components), the
residual, and each cluster's component and mean pattern.
"""
from __future__ import annotations

import base64
import json
import zlib
from typing import Any, Sequence

import numpy as np

from .calibration import Calibration
from ..explorer_data import MAX_WEIGHT_MAPS, bin_sum, grid_offset, grid_shape
from .images import panels_to_show

ZLIB_LEVEL = 1          # fast; diffraction data compresses 3-6x even so
_DTYPES = {"u1": "<u1", "u2": "<u2", "f4": "<f4"}


def encode_array(a: np.ndarray, dtype: str, *, compress: bool = True) -> dict:
    """``{"b64", "dtype", "shape", "z"}`` of an array in a little-endian dtype.

    Parameters
    ----------
    a : ndarray
    dtype : {"u1", "u2", "f4"}
        uint8, uint16 or float32.
    compress : bool
        Deflate (zlib) the bytes before base64.

    Returns
    -------
    dict
    """
    raw = np.ascontiguousarray(a, dtype=_DTYPES[dtype]).tobytes()
    data = zlib.compress(raw, ZLIB_LEVEL) if compress and len(raw) > 4096 else raw
    return {"b64": base64.b64encode(data).decode("ascii"), "dtype": dtype,
            "shape": list(np.shape(a)), "z": data is not raw}


def decode_array(d: dict) -> np.ndarray:
    """Inverse of :func:`encode_array` (used by tests)."""
    raw = base64.b64decode(d["b64"])
    if d["z"]:
        raw = zlib.decompress(raw)
    return np.frombuffer(raw, dtype=_DTYPES[d["dtype"]]).reshape(d["shape"])


def _u8(img: np.ndarray) -> np.ndarray:
    a = np.nan_to_num(np.asarray(img, np.float32))
    lo, hi = float(a.min()), float(a.max())
    return np.zeros(a.shape, np.uint8) if hi <= lo else \
        ((a - lo) * (255.0 / (hi - lo)) + 0.5).astype(np.uint8)


def _layer(name: str, values: np.ndarray, lut: str, lo: str, hi: str) -> dict:
    return {"name": name, "lut": lut, "lo": lo, "hi": hi,
            "data": encode_array(_u8(values), "u1")}


def explorer_payload(r: dict, *, colours: Sequence[str], background: Sequence[int],
                     counts: Sequence[int], cal: Calibration,
                     max_layers: int = MAX_WEIGHT_MAPS) -> dict | None:
    """The explorer's JSON object, or None when the results file has no ``explorer/``.

    Parameters
    ----------
    r : dict
        The results file as read by :func:`nmf4d.report.build.load`.
    colours : sequence of str
        Cluster colours.
    background : sequence of int
    counts : sequence of int
        Positions per cluster.
    cal : Calibration
    max_layers : int
        Weight maps offered in the layer list (the largest clusters when k is larger).

    Returns
    -------
    dict or None
    """
    if "explorer/patterns" not in r:
        return None
    ea = r.get("explorer@attrs", {})
    q = r["explorer/patterns"]
    weights = np.asarray(r["weights"], np.float32)
    labels = np.asarray(r["labels"])
    k, sy, sx = weights.shape
    b, step = int(ea.get("bin", 1)), int(ea.get("step", 1))
    off = int(ea.get("offset", grid_offset(step)))
    gy, gx = grid_shape((sy, sx), step)
    if q.shape[0] != gy * gx:
        raise ValueError(f"explorer/patterns holds {q.shape[0]} patterns, "
                         f"expected {gy} x {gx} for step {step}")
    comps = r.get("explorer/components")
    if comps is None or comps.shape[0] != k:
        comps = bin_sum(r["components"], b)
    by, bx = q.shape[1:]
    if comps.shape[1:] != (by, bx) or r["explorer/scale"].shape != (q.shape[0],):
        raise ValueError(f"its {by} x {bx} patterns do not match the components binned "
                         f"{b} x {b} ({comps.shape[1]} x {comps.shape[2]})")
    ys = np.arange(off, sy, step)
    xs = np.arange(off, sx, step)
    w_sel = weights[:, ys[:, None], xs[None, :]].reshape(k, -1).T      # (n_sel, k)
    wmax = np.maximum(weights.reshape(k, -1).max(axis=1), 0).astype(np.float32)
    wq = np.rint(np.divide(w_sel, wmax, out=np.zeros_like(w_sel), where=wmax > 0) * 65535)
    arrays: dict[str, Any] = {
        "labels": encode_array(labels, "u1" if k <= 255 else "u2"),
        "patterns": encode_array(q, "u1"),
        "scale": encode_array(r["explorer/scale"], "f4"),
        "weights": encode_array(np.clip(wq, 0, 65535), "u2"),
        "wscale": encode_array(wmax / np.float32(65535), "f4", compress=False),
        "components": encode_array(comps, "f4"),
    }
    if "clusters/raw_mean" in r:
        arrays["means"] = encode_array(bin_sum(r["clusters/raw_mean"], b), "f4")
    layers = [{"name": "clusters (largest weight)", "lut": "", "lo": "", "hi": ""}]
    if "extras/virtual_image" in r:
        vi = np.asarray(r["extras/virtual_image"], np.float32)
        layers.append(_layer("virtual image (total intensity)", vi, "gray",
                             f"{vi.min():.4g}", f"{vi.max():.4g}"))
    if "overlap/ratio" in r:
        layers.append(_layer("overlap ratio second / first", np.clip(r["overlap/ratio"], 0, 1),
                             "cividis", "0", "1"))
    for c in panels_to_show(counts, max_layers):
        layers.append(_layer(f"weight of component {c}", weights[c], "cividis", "0",
                             f"{float(wmax[c]):.4g}"))
    iq = {m: r.get(f"clusters/iqa/{m}") for m in ("ssim", "psnr")}
    clusters = []
    for c in range(k):
        row = {"count": int(counts[c]), "bg": c in set(int(v) for v in background)}
        for m, v in iq.items():
            if v is not None and np.isfinite(v[c]):
                row[m] = round(float(v[c]), 4)
        clusters.append(row)
    rep = r.get("clusters/representative")
    fg = [c for c in np.argsort(-np.asarray(counts), kind="stable") if int(c) not in set(background)]
    start = [int(v) for v in rep[int(fg[0])]] if rep is not None and fg else [sy // 2, sx // 2]
    return {
        "version": 1, "start": start, "scan": [sy, sx], "grid": [gy, gx], "step": step, "offset": off,
        "bin": b, "shape": [int(by), int(bx)],
        "pattern_shape": [int(v) for v in r["components"].shape[1:]], "k": k,
        "colours": list(colours), "clusters": clusters, "arrays": arrays, "layers": layers,
        "layers_capped": max(0, k - max_layers),
        "luts": {name: _lut_hex(name) for name in ("cividis", "RdBu_r")},
        "cal": cal.to_dict(display_bin=b),
    }


def _lut_hex(name: str) -> str:
    from ._luts import TABLES

    return "".join(TABLES[name])


def payload_json(payload: dict) -> str:
    """JSON text safe inside ``<script type="application/json">``."""
    return json.dumps(payload, separators=(",", ":")).replace("</", "<\\/")


def explorer_note(payload: dict | None, r: dict) -> dict:
    """What the page says about the explorer's data: binning, subsampling, sizes.

    Returns
    -------
    dict
        ``available`` (bool), ``text`` (str), and for the template ``binned`` and
        ``subsampled`` (bool).
    """
    if payload is None:
        return {"available": False, "binned": False, "subsampled": False,
                "text": "This results file has no explorer/ group (per-position patterns), "
                        "so the explorer is not shown; the maps and figures below are "
                        "complete. Results written by an nmf4d version that stores "
                        "explorer/ have it."}
    sy, sx = payload["scan"]
    gy, gx = payload["grid"]
    by, bx = payload["shape"]
    ky, kx = payload["pattern_shape"]
    parts = []
    if payload["bin"] > 1:
        parts.append(f"patterns binned {payload['bin']} × {payload['bin']} "
                     f"({by} × {bx} px shown of {ky} × {kx})")
    if payload["step"] > 1:
        parts.append(f"one position in {payload['step']} along y and x stored "
                     f"({gy * gx:,} of {sy * sx:,}; a click picks the nearest stored one)")
    why = ("; ".join(parts) + " to keep the page small") if parts else \
        f"every position's {by} × {bx} pattern stored"
    text = (f"{why[0].upper()}{why[1:]}. Reconstruction = weights × binned components, "
            "computed in the browser (binned display); patterns stored square-root "
            "encoded in 8 bits.")
    if payload["layers_capped"]:
        n = payload["k"] - payload["layers_capped"]
        text += f" Weight maps are offered for the {n} largest of the {payload['k']} clusters."
    return {"available": True, "binned": payload["bin"] > 1,
            "subsampled": payload["step"] > 1, "text": text}


__all__ = ["decode_array", "encode_array", "explorer_note", "explorer_payload", "payload_json"]
