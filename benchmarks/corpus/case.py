"""The corpus's data model: a scan, its known answer, and how both are stored.

A *truth index* is one distinct pattern of a scan: what a microscopist would call one
phase/orientation (a grain, whatever its size, counted once even when its orientation
drifts across it), or one background region (vacuum: the direct beam alone; film-only:
the beam and the support film's diffuse rings, or a real amorphous region). Positions
where two grains are seen in projection (overlap bands, overlapping particles) mix two
truth indices and add none.

``k_true`` is the number of truth indices, every one of which is the dominant pattern
(``labels``) at some positions of the scan.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Fixed zip timestamp so that rebuilding a case gives identical bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass
class Truth:
    """The known answer of one corpus scan.

    Attributes
    ----------
    labels : ndarray of shape (scan_y, scan_x), int32
        Truth index (0 .. k_true-1) of the dominant distinct pattern at each position.
    secondary : ndarray of shape (scan_y, scan_x), int32
        Truth index of the second contributing pattern, -1 where there is none.
    ratio : ndarray of shape (scan_y, scan_x), float32
        Contribution of ``secondary`` / contribution of ``labels`` (in [0, 1]); 0 where a
        single pattern is present (outside overlap bands). How a contribution is
        measured is the generator's (documented there): the projected thickness share of
        each grain in overlap bands, the summed intensity of each crystal where pyxem's
        nanocrystals overlap.
    k_true : int
        Number of distinct patterns (see the module docstring).
    background : list of int
        Truth indices that are background regions (vacuum, film-only, amorphous).
    names : list of str, length k_true
        Human-readable name of each truth index ("grain 3 (al_fcc)", "vacuum", ...).
    phase : list of (str or None), length k_true
        Phase name of each truth index (None for backgrounds or when unknown).
    euler : ndarray of shape (k_true, 3), float64
        Bunge ZXZ Euler angles in radians (orix convention, crystal to lab) of each grain
        (at the centre of an orientation gradient); NaN for backgrounds and when unknown
        (an in-plane rotation alone, for patterns tiled from real recordings, is stored
        as (phi1, 0, 0) with phi1 that rotation).
    patterns : ndarray of shape (k_true, ky, kx), float32, or None
        Noise-free expected pattern of each truth index, each summing to 1 (before
        descan, thickness and detector effects: the pattern at the index's reference
        position, see the generator).
    extra : dict of ndarray
        Generator-specific truth arrays, for example ``gradient_deg`` (n_grains,) the
        orientation spread across each grain, ``thickness`` (scan_y, scan_x) the
        thickness factor, ``descan_px`` (scan_y, scan_x, 2) the pattern's shift (rows,
        cols) at each position.
    """

    labels: np.ndarray
    secondary: np.ndarray
    ratio: np.ndarray
    k_true: int
    background: list
    names: list
    phase: list
    euler: np.ndarray
    patterns: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    def in_band(self) -> np.ndarray:
        """Positions where two patterns contribute (ratio > 0), shape (scan_y, scan_x)."""
        return self.ratio > 0

    def overlap_mask(self, threshold: float = 0.75) -> np.ndarray:
        """Positions with second/first contribution >= threshold, shape (scan_y, scan_x)."""
        return self.ratio >= threshold

    def check(self) -> None:
        """Raise AssertionError when the arrays contradict each other."""
        lab, sec, rat = self.labels, self.secondary, self.ratio
        assert lab.dtype == np.int32 and sec.dtype == np.int32 and rat.dtype == np.float32
        assert lab.shape == sec.shape == rat.shape
        present = np.unique(lab)
        assert present.tolist() == list(range(self.k_true)), \
            f"labels {present.tolist()} are not 0..{self.k_true - 1}"
        assert np.all((rat >= 0) & (rat <= 1))
        assert np.all((sec >= 0) == (rat > 0)), "secondary set exactly where ratio > 0"
        assert np.all(sec != lab)
        assert len(self.names) == len(self.phase) == self.k_true
        assert self.euler.shape == (self.k_true, 3)
        assert all(0 <= b < self.k_true for b in self.background)
        if self.patterns is not None:
            assert self.patterns.shape[0] == self.k_true
            assert np.allclose(self.patterns.sum(axis=(1, 2)), 1.0, atol=1e-3)


@dataclass
class Case:
    """One corpus scan.

    Attributes
    ----------
    data : ndarray of shape (scan_y, scan_x, ky, kx)
        uint16 electron counts (counting detectors) or float32 (a detector with dark
        offset, gain and read noise).
    truth : Truth
    meta : dict
        JSON-serialisable: ``generator``, ``name``, ``split``, ``spec``, ``seed``,
        ``k_true``, ``calibration`` (``reciprocal_scale`` Å⁻¹/px or None when unknown,
        ``voltage_kV``, ``precession_deg``, ``beam_centre`` (row, col) px,
        ``scan_step_nm``), ``detector`` and generator notes.
    """

    data: np.ndarray
    truth: Truth
    meta: dict


def stack_basis(shared: list, grains: list) -> tuple[np.ndarray, list, int]:
    """The images every position mixes: the ``shared`` ones (beam, film, ...) first, then
    each grain's ``images`` (one per gradient step). Returns (basis of shape (m, ky, kx),
    index of each grain's first image, steps per grain)."""
    basis = list(shared)
    first_col = []
    for g in grains:
        first_col.append(len(basis))
        basis.extend(g["images"])
    return np.array(basis), first_col, len(grains[0]["images"])


def truth_from_contributions(contrib: np.ndarray, **kwargs) -> Truth:
    """Labels, secondary and ratio from per-index contributions.

    Parameters
    ----------
    contrib : ndarray of shape (k_true, scan_y, scan_x)
        Non-negative contribution of each truth index at each position (at least one
        positive per position).
    **kwargs
        The remaining `Truth` fields (``k_true`` is taken from ``contrib``).

    Returns
    -------
    Truth
    """
    c = np.asarray(contrib, np.float64)
    k = c.shape[0]
    order = np.argsort(-c, axis=0, kind="stable")
    first = order[0]
    top = np.take_along_axis(c, first[None], 0)[0]
    if k > 1:
        second = order[1]
        nxt = np.take_along_axis(c, second[None], 0)[0]
    else:
        second = np.full_like(first, -1)
        nxt = np.zeros_like(top)
    if np.any(top <= 0):
        raise ValueError("every position needs a positive contribution")
    ratio = (nxt / top).astype(np.float32)
    ratio[ratio < 1e-6] = 0.0
    secondary = np.where(ratio > 0, second, -1).astype(np.int32)
    return Truth(labels=first.astype(np.int32), secondary=secondary, ratio=ratio,
                 k_true=k, **kwargs)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def _write_npz(path: Path, arrays: dict) -> None:
    """np.savez_compressed with fixed zip timestamps (byte-identical on rebuild)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]),
                                      allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def save_case(case: Case, folder: str | os.PathLike) -> None:
    """Write ``data.npy``, ``truth.npz`` and ``meta.json`` into ``folder``.

    The files are written under temporary names and renamed, ``meta.json`` last, so a
    folder with ``meta.json`` is complete.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    t = case.truth
    arrays = {"labels": t.labels, "secondary": t.secondary, "ratio": t.ratio,
              "euler": np.asarray(t.euler, np.float64)}
    if t.patterns is not None:
        arrays["patterns"] = t.patterns.astype(np.float32)
    for key, val in t.extra.items():
        arrays[f"extra_{key}"] = np.asarray(val)
    meta = dict(case.meta)
    meta["truth"] = {"k_true": int(t.k_true), "background": [int(b) for b in t.background],
                     "names": list(t.names), "phase": list(t.phase)}
    tmp = {name: folder / f".{name}.tmp" for name in ("data.npy", "truth.npz", "meta.json")}
    with open(tmp["data.npy"], "wb") as f:
        np.lib.format.write_array(f, np.ascontiguousarray(case.data), allow_pickle=False)
    _write_npz(tmp["truth.npz"], arrays)
    with open(tmp["meta.json"], "w") as f:
        json.dump(_jsonable(meta), f, indent=1, sort_keys=True)
        f.write("\n")
    for name in ("data.npy", "truth.npz", "meta.json"):
        os.replace(tmp[name], folder / name)


def load_case(folder: str | os.PathLike, mmap: bool = True) -> Case:
    """Read a case written by `save_case` (data memory-mapped by default)."""
    folder = Path(folder)
    with open(folder / "meta.json") as f:
        meta = json.load(f)
    data = np.load(folder / "data.npy", mmap_mode="r" if mmap else None)
    with np.load(folder / "truth.npz") as z:
        arr = {k: z[k] for k in z.files}
    tm = meta["truth"]
    truth = Truth(labels=arr["labels"], secondary=arr["secondary"], ratio=arr["ratio"],
                  k_true=int(tm["k_true"]), background=list(tm["background"]),
                  names=list(tm["names"]), phase=list(tm["phase"]), euler=arr["euler"],
                  patterns=arr.get("patterns"),
                  extra={k[6:]: v for k, v in arr.items() if k.startswith("extra_")})
    return Case(data=data, truth=truth, meta=meta)


def is_built(folder: str | os.PathLike) -> bool:
    """True when ``folder`` holds a complete case (its ``meta.json`` exists)."""
    return (Path(folder) / "meta.json").is_file()
