"""The paper's filter comparison (Figure 2): level one and NSD for several filters.

For each filter (raw, mean3, pca, denoise, ...) the same analysis runs on the filtered
data; the K-component loss curves are drawn together and the noise standard deviation
(NSD) of each cluster's representative pattern forms a filters x clusters matrix.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass

import h5py
import numpy as np

from .errors import InputError
from .pipeline import analyse
from .preprocess import FILTERS, PreprocessConfig

DEFAULT_FILTERS = ("raw", "mean3", "pca", "denoise")


@dataclass
class FilterComparison:
    """Outcome of :func:`compare_filters`; ``analyses[name]`` is each filter's Analysis."""

    filters: list
    analyses: dict
    seconds: dict
    skipped: dict           # filter -> reason (e.g. torch missing)

    def nsd_matrix(self) -> np.ndarray:
        """NSD of each cluster's representative pattern, shape (n_filters, max k), NaN padded."""
        kmax = max(a.k for a in self.analyses.values())
        m = np.full((len(self.filters), kmax), np.nan)
        for i, f in enumerate(self.filters):
            nsd = np.sort(np.asarray(self.analyses[f].clusters["nsd"], np.float64))
            m[i, :nsd.size] = nsd
        return m


def compare_filters(data, *, filters=DEFAULT_FILTERS, preprocessing: PreprocessConfig | None = None,
                    filter_options: dict | None = None, progress=None,
                    **analyse_options) -> FilterComparison:
    """Run :func:`nmf4d.pipeline.analyse` once per filter on the same data.

    Parameters
    ----------
    data : array-like of shape (scan_y, scan_x, ky, kx)
    filters : sequence of str
        Names registered in :data:`nmf4d.preprocess.FILTERS`.
    preprocessing : PreprocessConfig, optional
        Every other preprocessing step (its ``filter`` is replaced).
    filter_options : dict, optional
        filter name -> options dict for that filter.
    **analyse_options
        Passed to every :func:`analyse` call (k, k_range, seed, ...).

    Returns
    -------
    FilterComparison
        Filters that cannot run here (the learned denoiser without torch) are listed in
        ``skipped`` with the reason instead of failing the comparison.
    """
    base = preprocessing or PreprocessConfig()
    names = list(filters)
    unknown = [f for f in names if f not in FILTERS]
    if unknown:
        raise InputError(f"unknown filter(s) {', '.join(unknown)}: choose from "
                         + ", ".join(sorted(FILTERS)))
    if not names:
        raise InputError("no filter to compare")
    analyses, seconds, skipped = {}, {}, {}
    for name in names:
        cfg = dataclasses.replace(base, filter=name,
                                  filter_options=(filter_options or {}).get(name))
        t = time.perf_counter()
        try:
            analyses[name] = analyse(data, preprocessing=cfg, **analyse_options)
        except InputError as e:
            if name == "denoise" and "PyTorch" in str(e):
                skipped[name] = str(e)
                continue
            raise
        seconds[name] = time.perf_counter() - t
        if progress is not None:
            progress(name, analyses[name])
    done = [f for f in names if f in analyses]
    return FilterComparison(filters=done, analyses=analyses, seconds=seconds, skipped=skipped)


def write_comparison(path, comp: FilterComparison, *, input_path: str, parameters: dict) -> None:
    """Write ``compare.h5``-style results (see the README) to ``path``."""
    from .results import _json_default, write_provenance

    with h5py.File(path, "w") as f:
        write_provenance(f, input_path=input_path, parameters=parameters)
        f.attrs["filters"] = json.dumps(comp.filters)
        f.attrs["skipped"] = json.dumps(comp.skipped)
        f.create_dataset("chosen_k", data=np.asarray([comp.analyses[n].k for n in comp.filters],
                                                     np.int32))
        f.create_dataset("nsd_matrix", data=comp.nsd_matrix())
        for n in comp.filters:
            a = comp.analyses[n]
            g = f.create_group(f"filters/{n}")
            g.attrs["k"] = int(a.k)
            g.attrs["seconds"] = float(comp.seconds[n])
            g.attrs["preprocessing"] = json.dumps(a.preprocessing, default=_json_default)
            if a.sweep is not None:
                g.create_dataset("sweep/k", data=a.sweep.k.astype(np.int32))
                g.create_dataset("sweep/loss", data=a.sweep.loss.astype(np.float64))
                g["sweep"].attrs["knee"] = int(a.sweep.knee)
                g["sweep"].attrs["window"] = np.asarray(a.sweep.window, np.int32)
            g.create_dataset("nsd", data=np.asarray(a.clusters["nsd"], np.float64))
            g.create_dataset("immerkaer", data=np.asarray(a.clusters["immerkaer"], np.float64))
            g.create_dataset("labels", data=a.labels.astype(np.int32))
            g.create_dataset("components", data=a.components.astype(np.float32))
