"""The ``orientation/`` group of a results file (h5py), and reading it back.

Layout (k clusters; the phase names and conventions are also in the attributes):

| item | dtype, shape | meaning |
|---|---|---|
| ``phase`` | str (k,) | phase name, ``"not indexed"`` for background/unindexed |
| ``phase_index`` | int32 (k,) | index into attr ``phases``, -1 if not indexed |
| ``euler`` | float64 (k, 3) | Bunge ZXZ radians, orix convention (NaN if not indexed) |
| ``correlation`` | float64 (k,) | refined cosine similarity pattern/template |
| ``reliability`` | float64 (k,) | 1 - second distinct / best |
| ``second_correlation`` | float64 (k,) | the best distinct other solution |
| ``misorientation`` | float64 (k, k) | degrees, with symmetry; NaN across phases |
| ``friedel`` | bool (k,) | the 180-degree partner is possible |
| ``friedel_euler`` | float64 (k, 3) | that partner |
| ``friedel_correlation`` | float64 (k,) | its correlation |
| ``group`` | int32 (k,) | merged-orientation group of each cluster |
| ``scale_scores`` | float64 (n, 3) | scale tried (Å⁻¹/px), mean coarse, refined score |
| ``positions/*`` | (sy, sx[, 3]) | ``euler``, ``correlation``, ``phase_index``, ``deviation`` |

Attributes: ``phases`` (JSON list of name, space group, point group), ``calibration``
(JSON), ``resolution``, ``tolerance``, ``merge_tolerance``, ``friedel_margin``,
``min_correlation``, ``max_excitation_error``, ``preparation`` (JSON),
``reciprocal_scale`` (used), ``scale_searched`` (bool), ``background`` (JSON),
``euler_convention``, ``timings`` (JSON).
"""
from __future__ import annotations

import json

import numpy as np

from ..errors import InputError
from .core import IndexResult

EULER_CONVENTION = ("Bunge ZXZ Euler angles in radians, orix convention (Rotation.from_euler); "
                    "the rotation given to diffsims calculate_diffraction2d to reproduce the "
                    "pattern, with pixel (row, col) = beam centre + (y, x) / reciprocal_scale")


def write_orientation_group(h5, result: IndexResult, *, positions=None,
                            name: str = "orientation"):
    """Write ``result`` as group ``name`` of an open h5py file or group (replacing it).

    Parameters
    ----------
    h5 : h5py.File or h5py.Group, open for writing
    result : IndexResult
    positions : PositionOrientations, optional
    name : str

    Returns
    -------
    h5py.Group
    """
    import h5py

    if not isinstance(h5, (h5py.File, h5py.Group)):
        raise InputError(f"h5 must be an open h5py File or Group, got {type(h5).__name__}")
    if name in h5:
        del h5[name]
    g = h5.create_group(name)
    str_t = h5py.string_dtype("utf-8")
    g.create_dataset("phase", data=np.array([str(p) for p in result.phase], dtype=object),
                     dtype=str_t)
    g.create_dataset("phase_index", data=result.phase_index.astype(np.int32))
    for key in ("euler", "correlation", "reliability", "second_correlation",
                "misorientation", "friedel_euler", "friedel_correlation", "scale_scores"):
        g.create_dataset(key, data=np.asarray(getattr(result, key), dtype=np.float64))
    g.create_dataset("friedel", data=np.asarray(result.friedel, dtype=bool))
    group = np.zeros(result.k, np.int32)
    for i, members in enumerate(result.groups):
        group[members] = i
    g.create_dataset("group", data=group)
    g["euler"].attrs["convention"] = EULER_CONVENTION
    g["misorientation"].attrs["unit"] = "degree"
    a = g.attrs
    a["phases"] = json.dumps([{"name": p.name,
                               "space_group": int(p.space_group.number)
                               if p.space_group is not None else None,
                               "point_group": p.point_group.name} for p in result.phases])
    a["calibration"] = json.dumps(result.calibration.to_dict())
    a["reciprocal_scale"] = float(result.calibration.reciprocal_scale)
    a["scale_searched"] = bool(result.scale_searched)
    for key in ("resolution", "tolerance", "merge_tolerance", "friedel_margin",
                "min_correlation", "max_excitation_error"):
        a[key] = float(getattr(result, key))
    prep = result.preparation
    a["preparation"] = json.dumps({"beam_radius": prep.beam_radius, "gamma": prep.gamma,
                                   "spot_sigma": prep.spot_sigma})
    a["background"] = json.dumps([int(b) for b in result.background])
    a["euler_convention"] = EULER_CONVENTION
    a["timings"] = json.dumps({k: float(v) for k, v in result.timings.items()})
    if positions is not None:
        pg = g.create_group("positions")
        pg.create_dataset("euler", data=positions.euler.astype(np.float64))
        pg.create_dataset("correlation", data=positions.correlation.astype(np.float64))
        pg.create_dataset("deviation", data=positions.deviation.astype(np.float64))
        pg.create_dataset("phase_index", data=positions.phase_index.astype(np.int32))
    return g


def read_orientation_group(h5, name: str = "orientation") -> dict:
    """The arrays and attributes of a group written by :func:`write_orientation_group`.

    Returns
    -------
    dict of numpy arrays (``phase`` as str) plus ``attrs`` (JSON attributes decoded).
    """
    if name not in h5:
        raise InputError(f"results file has no {name!r} group (run the indexing first)")
    g = h5[name]
    out = {}
    for key, ds in g.items():
        if key == "positions":
            out["positions"] = {k: v[()] for k, v in ds.items()}
        elif key == "phase":
            out[key] = np.array([s.decode() if isinstance(s, bytes) else str(s)
                                 for s in ds[()]], dtype=object)
        else:
            out[key] = ds[()]
    attrs = {}
    for k, v in g.attrs.items():
        if k in ("phases", "calibration", "preparation", "background", "timings"):
            attrs[k] = json.loads(v)
        else:
            attrs[k] = v.item() if hasattr(v, "item") else v
    out["attrs"] = attrs
    return out
