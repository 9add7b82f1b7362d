"""Writing and reading ``OUT/results.h5`` (the contract in the README and design.md).

The output folder is written atomically by :class:`nmf4d.outputs.AtomicOutput`
(re-exported here with :func:`~nmf4d.outputs.check_output`): everything goes to a
hidden staging folder beside OUT that is renamed to OUT at the end, so OUT is either the
complete previous result or the complete new one, never half written.
"""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import h5py
import numpy as np

from ._version import __version__
from .config import final_ortho
from .errors import InputError
from .options import METRIC_NAMES
from .outputs import AtomicOutput, check_output, h5_file  # noqa: F401 - part of this API


def versions() -> dict:
    """Versions of nmf4d and the libraries whose numbers it relies on."""
    import platform

    import dask
    import scipy

    out = {"nmf4d": __version__, "python": platform.python_version(),
           "numpy": np.__version__, "scipy": scipy.__version__, "h5py": h5py.__version__,
           "dask": dask.__version__}
    try:
        import rsciio
        out["rosettasciio"] = rsciio.__version__
    except Exception:  # pragma: no cover - optional at run time
        pass
    return out


def write_provenance(f: h5py.File, *, input_path: str, parameters: dict) -> None:
    """Root attributes every results file carries: version, input, parameters, time, versions."""
    f.attrs["nmf4d_version"] = __version__
    f.attrs["input"] = str(input_path)
    f.attrs["parameters"] = json.dumps(parameters, default=json_default)
    f.attrs["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    f.attrs["versions"] = json.dumps(versions())


def save_artifacts(folder, analysis, *, final_folder=None) -> None:
    """Save what the analysis made beside its results (the trained denoiser as
    ``denoiser.pt``) into ``folder``, and record where in its preprocessing record.

    ``final_folder`` is the path recorded (the staging folder is renamed to it later).
    """
    model = analysis.artifacts.get("denoiser")
    if model is None:
        return
    path = Path(folder) / "denoiser.pt"
    model.save(path)
    info = analysis.preprocessing.get("filter_info")
    if isinstance(info, dict):
        info["model_path"] = str(Path(final_folder or folder) / "denoiser.pt")


def write_results(path, analysis, *, input_path: str, input_info: dict | None = None) -> None:
    """Write an :class:`~nmf4d.pipeline.Analysis` to ``path`` (an .h5 file) per the contract."""
    a = analysis
    with h5_file(path) as f:            # in memory, one write: safe on a full disk
        write_provenance(f, input_path=input_path, parameters=a.parameters)
        f.attrs["k"] = int(a.k)
        f.attrs["preprocessing"] = json.dumps(a.preprocessing, default=json_default)
        if input_info:
            f.attrs["input_info"] = json.dumps(input_info, default=json_default)
        f.attrs["background"] = np.asarray(a.background, dtype=np.int32)
        f.attrs["n_iter"] = int(a.n_iter)
        f.attrs["converged"] = bool(a.converged)
        f.attrs["final_fit"] = a.final_fit
        f.attrs["relative_error"] = float(a.relative_error)
        f.attrs["ortho"] = final_ortho(a.config.fit, a.config.selection)   # "auto" resolved
        f.attrs["calibration"] = a.calibration.to_json()
        d = f.create_dataset("components", data=a.components.astype(np.float32))
        d.attrs["normalisation"] = "each component sums to 1"
        for key in ("bin", "crop", "centre_crop", "mask"):
            if a.preprocessing.get(key) is not None:
                d.attrs[key] = json.dumps(a.preprocessing[key], default=json_default)
        f.create_dataset("weights", data=a.weights.astype(np.float32))
        m = a.maps
        argmax = a.labels if m is None else m.argmax_labels
        f.create_dataset("labels", data=argmax.astype(np.int32))
        if m is not None:
            _write_cluster_maps(f, a)
        ov = f.create_group("overlap")
        ov.create_dataset("ratio", data=a.ratio.astype(np.float32))
        ov.create_dataset("thresholds", data=np.asarray(a.thresholds, np.float32))
        ov.create_dataset("masks", data=a.masks.astype(bool))
        ov.create_dataset("partner", data=a.partner.astype(np.int32))
        ov.attrs["background"] = np.asarray(a.background, dtype=np.int32)
        if a.sweep is not None:
            sw = f.create_group("sweep")
            sw.create_dataset("k", data=a.sweep.k.astype(np.int32))
            sw.create_dataset("loss", data=a.sweep.loss.astype(np.float64))
            sw.create_dataset("rel_error", data=a.sweep.relative_error.astype(np.float64))
            sw.create_dataset("n_iter", data=a.sweep.n_iter.astype(np.int32))
            sw.attrs["knee"] = int(a.sweep.knee)
            sw.attrs["window"] = np.asarray(a.sweep.window, dtype=np.int32)
            if a.sweep.starts:
                sw.create_dataset("start", data=np.array(a.sweep.starts, dtype="S"))
            sw.attrs["method"] = str(a.config.sweep.method)
        if a.selection is not None:
            sel = a.selection
            g = f.create_group("iqa")
            ks = sorted(sel.assessments)
            g.create_dataset("k", data=np.asarray(ks, np.int32))
            sc = g.create_group("score")
            for m in METRIC_NAMES:
                sc.create_dataset(m, data=np.asarray([sel.assessments[k].scores[m] for k in ks],
                                                     np.float64))
            g.create_dataset("redundant", data=np.asarray([sel.assessments[k].redundant for k in ks]))
            g.create_dataset("min_cluster_size", data=np.asarray(
                [sel.assessments[k].cluster_sizes.min() for k in ks], np.int64))
            g.create_dataset("max_weight_correlation", data=np.asarray(
                [sel.assessments[k].max_corr for k in ks], np.float64))
            g.attrs["chosen_k"] = int(sel.k)
            g.attrs["explanation"] = sel.explanation
            g.attrs["reasons"] = json.dumps({str(k): sel.assessments[k].reasons for k in ks})
            pr = g.create_group("pairs")
            for k in ks:
                gk = pr.create_group(f"k{k}")
                for m, mat in sel.assessments[k].pairs.items():
                    gk.create_dataset(m, data=np.asarray(mat, np.float64))
                gk.create_dataset("cluster_sizes", data=sel.assessments[k].cluster_sizes)
        cl = f.create_group("clusters")
        c = a.clusters
        cl.create_dataset("raw_mean", data=c["raw_mean"].astype(np.float32))
        cl.create_dataset("nmf_pattern", data=c["nmf_pattern"].astype(np.float32))
        cl.create_dataset("nsd", data=np.asarray(c["nsd"], np.float64))
        cl.create_dataset("immerkaer", data=np.asarray(c["immerkaer"], np.float64))
        cl.create_dataset("representative", data=c["representative"])
        cl.create_dataset("count", data=c["count"])
        ci = cl.create_group("iqa")
        for m in METRIC_NAMES:
            ci.create_dataset(m, data=np.asarray(c[f"iqa/{m}"], np.float64))
        ex = f.create_group("extras")
        ex.create_dataset("mean_pattern", data=np.asarray(a.mean_pattern, np.float32))
        ex.create_dataset("virtual_image", data=np.asarray(a.virtual_image, np.float32))
        tg = f.create_group("timings")
        for key, val in a.timings.items():
            tg.attrs[key] = float(val)
        if getattr(a, "orientation", None) is not None:
            from .index import write_orientation_group
            write_orientation_group(f, a.orientation.result, positions=a.orientation.positions)
        if a.explorer is not None:
            from .explorer_data import write_explorer
            write_explorer(f.create_group("explorer"), **a.explorer)
        exe = a.execution
        if exe:
            eg = f.create_group("execution")
            for key, val in exe.items():
                eg.attrs[key] = "" if val is None else val


def _write_cluster_maps(f: h5py.File, a) -> None:
    """nmf4d's cluster map, the clusters' kinds and members, the NMF fit behind them and
    the decision (extensions of the contract, documented in the README)."""
    m = a.maps
    f.attrs["rank"] = int(a.rank)
    f.attrs["background_kinds"] = json.dumps({str(i): m.kinds[i] for i in m.background})
    g = f.create_group("maps")
    g.create_dataset("labels", data=m.labels.astype(np.int32))
    g.create_dataset("background_fraction", data=m.background_fraction.astype(np.float32))
    g.attrs["kinds"] = json.dumps(m.kinds)
    g.attrs["members"] = json.dumps(m.members)
    if a.nmf is not None:
        sy, sx = m.labels.shape
        nm = f.create_group("nmf")
        nm.create_dataset("components", data=np.asarray(a.nmf.components, np.float32)
                          .reshape((a.rank,) + tuple(a.components.shape[1:])))
        nm.create_dataset("weights", data=np.asarray(a.nmf.weights, np.float32)
                          .reshape(a.rank, sy, sx))
        nm.attrs["rank"] = int(a.rank)
    d = a.decision
    if d is not None:
        g = f.create_group("decision")
        g.create_dataset("rank", data=d.ranks.astype(np.int32))
        g.create_dataset("n_clusters", data=d.n_clusters.astype(np.int32))
        g.attrs["k"] = int(d.k)
        g.attrs["chosen_rank"] = int(d.rank)
        g.attrs["considered"] = np.asarray(d.considered, np.int32)
        g.attrs["explanation"] = d.explanation
        g.attrs["unsettled"] = bool(d.unsettled)
        g.attrs["widened_from"] = np.asarray(d.widened_from, np.int32)
        h = d.heldout
        if h is not None:                          # the held-out test of the chosen rank
            hg = g.create_group("heldout")
            hg.attrs["applied"] = bool(h.applied)
            hg.attrs["reason"] = h.reason
            hg.attrs["z_max"] = float(h.z_max)
            hg.attrs["seed"] = int(h.seed)
            hg.attrs["merged"] = json.dumps(h.merged)
            hg.attrs["counts"] = json.dumps(h.counts or {})
            if h.applied:
                hg.create_dataset("clusters", data=np.asarray(h.clusters, np.int32))
                hg.create_dataset("sizes", data=np.asarray(h.sizes, np.int32))
                hg.create_dataset("z", data=np.asarray(h.z, np.float64))
                hg.create_dataset("group", data=np.asarray(h.group, np.int32))
        g.attrs["per_rank"] = json.dumps({str(k): {
            "n_clusters": int(fc.n_clusters), "background": [int(c) for c in fc.background],
            "kinds": {str(c): v for c, v in fc.kinds.items()},
            "merged": [[int(c) for c in grp] for grp in fc.merged],
            "merged_heldout": [[int(c) for c in grp] for grp in fc.heldout_merged],
            "dropped": [int(c) for c in fc.dropped],
            "reflections": [int(v) for v in fc.n_reflections],
            "presence": [round(float(v), 4) for v in fc.presence],
            "contrast": {str(c): round(float(v), 4) for c, v in fc.contrast.items()},
            "readmitted": [int(c) for c in fc.readmitted]}
            for k, fc in d.assessments.items()})
        for r, fc in d.assessments.items():        # every number the rule used, per rank
            rg = g.create_group(f"rank{int(r)}")
            rg.create_dataset("cluster_of", data=np.asarray(fc.cluster_of, np.int32))
            rg.create_dataset("n_reflections", data=np.asarray(fc.n_reflections, np.int32))
            rg.create_dataset("presence", data=np.asarray(fc.presence, np.float32))
            rg.create_dataset("shared", data=np.asarray(fc.shared, np.float32))
            if fc.strength is not None:
                rg.create_dataset("strength", data=np.asarray(fc.strength, np.float32))
            if fc.spot_radius is not None:
                rg.create_dataset("spot_radius", data=np.asarray(fc.spot_radius, np.float32))
            rg.attrs["n_clusters"] = int(fc.n_clusters)


def read_results(path) -> dict:
    """Read a results file back into a nested dict of numpy arrays and attributes."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.h5"
    if not path.exists():
        raise InputError(f"no results file at {str(path)!r}")
    out: dict = {}
    try:
        with h5py.File(path, "r") as f:
            out["attrs"] = {k: _attr(v) for k, v in f.attrs.items()}

            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    out[name] = obj[()]
                elif obj.attrs:
                    out[name + "@attrs"] = {k: _attr(v) for k, v in obj.attrs.items()}
            f.visititems(visit)
    except OSError as e:
        raise InputError(f"cannot read results file {str(path)!r}: {e}") from None
    return out


def _attr(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)
