"""The paper's filter comparison (Figure 2): level one and NSD for several filters.

For each filter (raw, mean3, pca, denoise, ...) the same analysis runs on the filtered
data; the K-component loss curves are drawn together and the noise standard deviation
(NSD) of each cluster's representative pattern forms a filters x clusters matrix.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np

from .config import AnalysisConfig
from .errors import InputError, MissingDependencyError
from .filters import FILTERS
from .pipeline import analyse

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


def compare_filters(data, config: AnalysisConfig | None = None, *, filters=DEFAULT_FILTERS,
                    progress=None, on_filter=None, client=None) -> FilterComparison:
    """Run :func:`nmf4d.pipeline.analyse` once per filter on the same data.

    Parameters
    ----------
    data : array-like of shape (scan_y, scan_x, ky, kx)
    config : AnalysisConfig, optional
        Every setting; its ``preprocessing.filter`` is replaced by each filter in turn
        (the filters' own options, ``pca_rank`` and ``denoise``, are taken from it).
    filters : sequence of str
        Names registered in :data:`nmf4d.filters.FILTERS`.
    progress : nmf4d.execution.Progress, optional
    on_filter : callable, optional
        ``on_filter(name, analysis)`` after each filter.
    client : dask.distributed.Client, optional

    Returns
    -------
    FilterComparison
        Filters whose optional dependency is not installed (the learned denoiser without
        torch) are listed in ``skipped`` with the reason instead of failing the comparison.
    """
    import dataclasses

    base = config or AnalysisConfig()
    names = list(filters)
    unknown = [f for f in names if f not in FILTERS]
    if unknown:
        raise InputError(f"unknown filter(s) {', '.join(unknown)}: choose from "
                         + ", ".join(sorted(FILTERS)))
    if not names:
        raise InputError("no filter to compare")
    analyses, seconds, skipped = {}, {}, {}
    for name in names:
        cfg = dataclasses.replace(base, preprocessing=dataclasses.replace(
            base.preprocessing, filter=name))
        t = time.perf_counter()
        try:
            analyses[name] = analyse(data, cfg, progress=progress, client=client)
        except MissingDependencyError as e:
            skipped[name] = str(e)
            continue
        seconds[name] = time.perf_counter() - t
        if on_filter is not None:
            on_filter(name, analyses[name])
    done = [f for f in names if f in analyses]
    return FilterComparison(filters=done, analyses=analyses, seconds=seconds, skipped=skipped)


def write_comparison(path, comp: FilterComparison, *, input_path: str, parameters: dict) -> None:
    """Write ``compare.h5``-style results (see the README) to ``path``."""
    from .results import json_default, write_provenance

    from .outputs import h5_file

    with h5_file(path) as f:                # in memory, one write: safe on a full disk
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
            g.attrs["preprocessing"] = json.dumps(a.preprocessing, default=json_default)
            if a.sweep is not None:
                g.create_dataset("sweep/k", data=a.sweep.k.astype(np.int32))
                g.create_dataset("sweep/loss", data=a.sweep.loss.astype(np.float64))
                g["sweep"].attrs["knee"] = int(a.sweep.knee)
                g["sweep"].attrs["window"] = np.asarray(a.sweep.window, np.int32)
            g.create_dataset("nsd", data=np.asarray(a.clusters["nsd"], np.float64))
            g.create_dataset("immerkaer", data=np.asarray(a.clusters["immerkaer"], np.float64))
            g.create_dataset("labels", data=a.labels.astype(np.int32))
            g.create_dataset("components", data=a.components.astype(np.float32))
