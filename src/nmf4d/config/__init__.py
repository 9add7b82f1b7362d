"""One configuration of an analysis: frozen dataclasses nested per stage, validated once.

:class:`AnalysisConfig` holds every setting of :func:`nmf4d.pipeline.analyse`, one nested
dataclass per stage:

======================  =================================================================
``preprocessing``       :class:`PreprocessConfig`: crop, bin, mask, filter, scale, normalise
``sweep``               :class:`SweepConfig`: decision level one (k range, sketch, fits)
``selection``           :class:`SelectionConfig`: the k (``"auto"`` or a number) and the
                        thresholds of decision level two
``fit``                 :class:`FitConfig`: weighting, start and penalties of every NMF fit,
                        and the final fit's stopping rule
``execution``           :class:`ExecutionConfig`: memory budget, device, dask cluster
``maps``                :class:`MapsConfig`: overlap thresholds
``calibration``         :class:`CalibrationConfig`: scan step, reciprocal scale, voltage,
                        precession, beam centre given by the user (else from the input)
``index``               :class:`IndexConfig`: phases (CIF files) and options of the
                        orientation indexing of the clusters
``report``              :class:`ReportConfig`: whether the command line writes the report
                        and the explorer's data
======================  =================================================================

plus the ``seed`` of every random choice. Each dataclass checks its own fields when it is
built (``__post_init__``) and raises :class:`~nmf4d.errors.ConfigError` naming the field
(``"sweep.k_range"``) and the value; the command line names the flag instead
(:mod:`nmf4d.cli_options`). Checks that need the data (k against the number of patterns)
are :func:`resolve_k`, made once the data's shape is known.

The configuration *is* the ``parameters`` record of ``results.h5``: :meth:`to_dict` is
written as JSON and :meth:`from_dict` reads it back. Every leaf field also has a flat
name (:data:`FLAT`, e.g. ``k_range`` for ``sweep.k_range``), so a notebook can write
``AnalysisConfig.from_flat(k=8, bin=2)``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..options import DEFAULT_K_RANGE
from .checks import _int, _set, parse_k_range
from .stages import (
    CalibrationConfig,
    DenoiseConfig,
    ExecutionConfig,
    FitConfig,
    IndexConfig,
    MapsConfig,
    PreprocessConfig,
    ReportConfig,
    SelectionConfig,
    SweepConfig,
    final_ortho,
)

__all__ = ["AnalysisConfig", "FLAT", "resolve_k", "config_from_record", "parse_k_range",
           "final_ortho",
           "CalibrationConfig", "DenoiseConfig", "ExecutionConfig", "FitConfig", "IndexConfig",
           "MapsConfig",
           "PreprocessConfig", "ReportConfig", "SelectionConfig", "SweepConfig"]


_STAGES = {"preprocessing": PreprocessConfig, "sweep": SweepConfig,
           "selection": SelectionConfig, "fit": FitConfig, "execution": ExecutionConfig,
           "maps": MapsConfig, "calibration": CalibrationConfig, "index": IndexConfig,
           "report": ReportConfig}

#: Flat name of every leaf field -> its dotted path.
FLAT = {
    "seed": "seed",
    "dark": "preprocessing.dark", "centre": "preprocessing.centre",
    "crop": "preprocessing.crop", "centre_crop": "preprocessing.centre_crop",
    "bin": "preprocessing.bin", "mask_radius": "preprocessing.mask_radius",
    "mask_centre": "preprocessing.mask_centre", "filter": "preprocessing.filter",
    "pca_rank": "preprocessing.pca_rank", "denoise_epochs": "preprocessing.denoise.epochs",
    "denoise_latent": "preprocessing.denoise.latent",
    "denoise_batch": "preprocessing.denoise.batch_size",
    "denoise_model": "preprocessing.denoise.model",
    "filter_options": "preprocessing.filter_options", "scale": "preprocessing.scale",
    "normalise": "preprocessing.normalise",
    "k_range": "sweep.k_range", "sweep": "sweep.method", "sweep_tol": "sweep.tol",
    "sweep_max_iter": "sweep.max_iter", "sweep_ortho": "sweep.ortho",
    "k": "selection.k", "rule": "selection.rule", "z_min": "selection.z_min",
    "shared_min": "selection.shared_min", "ubiquity": "selection.ubiquity",
    "contrast": "selection.contrast",
    "min_cluster": "selection.min_cluster", "heldout": "selection.heldout",
    "heldout_z": "selection.heldout_z",
    "ssim_max": "selection.ssim_max", "corr_max": "selection.corr_max",
    "min_gain": "selection.min_gain",
    "weighting": "fit.weighting", "init": "fit.init", "max_iter": "fit.max_iter",
    "tol": "fit.tol", "l1_weights": "fit.l1_weights", "l1_components": "fit.l1_components",
    "ortho": "fit.ortho",
    "memory": "execution.memory", "device": "execution.device",
    "workers": "execution.workers", "scheduler": "execution.scheduler",
    "thresholds": "maps.thresholds",
    "scan_step": "calibration.scan_step", "scan_units": "calibration.scan_units",
    "reciprocal_scale": "calibration.reciprocal_scale", "voltage": "calibration.voltage",
    "precession": "calibration.precession", "beam_centre": "calibration.beam_centre",
    "phases": "index.phases", "phase_names": "index.phase_names",
    "resolution": "index.resolution", "refine_positions": "index.refine_positions",
    "merge_tolerance": "index.merge_tolerance",
    "report": "report.enabled", "explorer": "report.explorer",
}


@dataclass(frozen=True)
class AnalysisConfig:
    """Every setting of an analysis (see the module docstring)."""

    seed: int = 0
    preprocessing: PreprocessConfig = field(default_factory=PreprocessConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    maps: MapsConfig = field(default_factory=MapsConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    def __post_init__(self):
        _set(self, "seed", _int("seed", self.seed, lo=0))
        for name, cls in _STAGES.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                _set(self, name, cls(**value))
            elif not isinstance(value, cls):
                raise ConfigError(name, value, f"must be a {cls.__name__}")

    # -- serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict:
        """The nested settings as plain Python (the ``parameters`` record)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AnalysisConfig":
        """Inverse of :meth:`to_dict` (unknown keys are a ConfigError)."""
        try:
            return cls(**d)
        except TypeError as e:
            raise ConfigError("config", sorted(d), f"has an unknown field ({e})") from None

    # -- flat names --------------------------------------------------------------------
    def get(self, path: str) -> Any:
        """The value at a dotted path (``"sweep.k_range"``) or flat name (``"k_range"``)."""
        obj: Any = self
        for part in FLAT.get(path, path).split("."):
            obj = getattr(obj, part)
        return obj

    def replace(self, **flat: Any) -> "AnalysisConfig":
        """A copy with fields replaced by flat name (``cfg.replace(k=8, bin=2)``)."""
        d = self.to_dict()
        for name, value in flat.items():
            if name not in FLAT:
                raise ConfigError(name, value, "is not a setting; known: " + ", ".join(sorted(FLAT)))
            *parents, leaf = FLAT[name].split(".")
            node = d
            for part in parents:
                node = node[part]
            node[leaf] = value
        return type(self).from_dict(d)

    @classmethod
    def from_flat(cls, **flat: Any) -> "AnalysisConfig":
        """A configuration from flat names, the rest default (``from_flat(k=8)``)."""
        return cls().replace(**flat)

    def to_flat(self) -> dict:
        """Every leaf field by its flat name."""
        return {name: self.get(path) for name, path in FLAT.items()}


def resolve_k(config: AnalysisConfig, n_patterns: int, n_pixels: int | None = None):
    """The k of a run and its level-one range, checked against the data's size.

    Parameters
    ----------
    config : AnalysisConfig
    n_patterns : int
        Scan positions.
    n_pixels : int, optional
        Pixels per pattern (after preprocessing); k is at most ``min(n_patterns, n_pixels)``.

    Returns
    -------
    k : "auto" or int
    k_range : (int, int) or None
        The level-one range for ``k == "auto"`` (default 2..20 capped at the data).
    """
    n_max = n_patterns if n_pixels is None else min(n_patterns, n_pixels)
    what = "patterns" if n_pixels is None else "patterns/pixels"
    k = config.selection.k
    if k != "auto":
        if k > n_max:
            raise ConfigError("selection.k", k, f"is out of range: allowed 1..{n_max} "
                              f"(at most the number of {what})")
        return k, None
    if config.sweep.k_range is None:
        hi = min(DEFAULT_K_RANGE[1], n_max)
        if hi < DEFAULT_K_RANGE[0] + 2:
            raise ConfigError("selection.k", "auto", f"only {n_max} {what}: too few to choose "
                              "k automatically (need at least 4); give a number")
        return k, (DEFAULT_K_RANGE[0], hi)
    lo, hi = config.sweep.k_range
    if hi > n_max:
        extra = f" or pixels ({n_pixels})" if n_pixels is not None else ""
        raise ConfigError("sweep.k_range", (lo, hi), f"maximum {hi} exceeds the number of "
                          f"patterns ({n_patterns}){extra}")
    return k, (lo, hi)


def config_from_record(params: dict) -> AnalysisConfig:
    """The configuration of a results file's ``parameters`` record.

    Reads the nested records of :meth:`AnalysisConfig.to_dict` and the flat records that
    nmf4d wrote before the configuration existed (their keys mapped to today's fields).
    """
    if not isinstance(params, dict):
        raise ConfigError("parameters", params, "must be a dict")
    if isinstance(params.get("selection"), dict):
        return AnalysisConfig.from_dict(params)
    # nmf4d 0.1: its level-two rule, and no detector corrections
    flat: dict[str, Any] = {"rule": "paper-iqa", "dark": "off", "centre": "off"}
    for key in ("k", "seed", "max_iter", "tol", "sweep_tol", "sweep_max_iter", "l1_weights",
                "l1_components", "ortho", "sweep_ortho", "init", "weighting", "thresholds",
                "memory", "device"):
        if params.get(key) is not None:
            flat[key] = params[key]
    if isinstance(params.get("sweep"), str):
        flat["sweep"] = params["sweep"]
    if params.get("k", "auto") == "auto" and params.get("k_range"):
        flat["k_range"] = tuple(params["k_range"])
    for key, val in (params.get("criteria") or {}).items():
        if key in FLAT and val is not None:
            flat[key] = val
    pre = params.get("preprocessing") or {}
    for key in ("bin", "crop", "centre_crop", "mask_radius", "mask_centre", "filter",
                "scale", "normalise"):
        if isinstance(pre, dict) and pre.get(key) is not None:
            flat[key] = pre[key]
    opts = pre.get("filter_options") if isinstance(pre, dict) else None
    if isinstance(opts, dict):
        if pre.get("filter") == "pca" and "rank" in opts:
            flat["pca_rank"] = opts["rank"]
        if pre.get("filter") == "denoise":
            for key, name in (("epochs", "denoise_epochs"), ("latent", "denoise_latent"),
                              ("batch_size", "denoise_batch"), ("model", "denoise_model")):
                if opts.get(key) is not None:
                    flat[name] = opts[key]
    return AnalysisConfig.from_flat(**flat)
