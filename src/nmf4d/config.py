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
``report``              :class:`ReportConfig`: whether the command line writes the report
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
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .filters import FILTERS
from .options import (
    DEFAULT_K_RANGE,
    DEFAULT_THRESHOLDS,
    INITS,
    NORMALISE_METHODS,
    SCALE_METHODS,
    SWEEP_METHODS,
    WEIGHTINGS,
)


# ---------------------------------------------------------------------------- checks
def _int(path: str, v: Any, *, lo: int | None = None, none: bool = False) -> int | None:
    import numpy as np

    if v is None and none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ConfigError(path, v, "must be an integer" + (f" >= {lo}" if lo is not None else ""))
    if lo is not None and v < lo:
        raise ConfigError(path, v, f"must be an integer >= {lo}")
    return int(v)


def _number(path: str, v: Any, *, lo: float | None = None, strict: bool = False,
            none: bool = False) -> float | None:
    import numpy as np

    if v is None and none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(v)):
        raise ConfigError(path, v, "must be a finite number")
    if lo is not None and (float(v) <= lo if strict else float(v) < lo):
        raise ConfigError(path, v, f"must be {'>' if strict else '>='} {lo:g}")
    return float(v)


def _choice(path: str, v: Any, allowed, *, none_as: str | None = None) -> Any:
    if v is None and none_as is not None:
        v = none_as
    if v not in allowed:
        raise ConfigError(path, v, "is not allowed: choose one of " + ", ".join(map(str, allowed)))
    return v


def _set(obj, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def parse_k_range(text: Any, *, field: str = "sweep.k_range") -> tuple[int, int]:
    """A k range as (MIN, MAX), from "MIN:MAX" or a pair of integers.

    Requires ``1 <= MIN`` and ``MAX >= MIN + 2`` (the knee needs three points).
    """
    import numpy as np

    if isinstance(text, (tuple, list)):
        if len(text) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                     for v in text):
            raise ConfigError(field, text, "must be two integers (MIN, MAX)")
        lo, hi = (int(v) for v in text)
    else:
        try:
            lo, hi = (int(v) for v in str(text).split(":"))
        except ValueError:
            raise ConfigError(field, text, "must be MIN:MAX with integers") from None
    if lo < 1 or hi < lo + 2:
        raise ConfigError(field, text, "must satisfy 1 <= MIN and MAX >= MIN + 2")
    return lo, hi


# --------------------------------------------------------------------------- stages
@dataclass(frozen=True)
class DenoiseConfig:
    """The learned denoiser of ``filter="denoise"`` (:mod:`nmf4d.filters.denoise`).

    Attributes
    ----------
    epochs, latent, batch_size : int
        Training epochs, size of the latent code, patterns per optimisation step.
    model : str, optional
        A saved model (.pt) to reuse instead of training.
    """

    epochs: int = 30
    latent: int = 32
    batch_size: int = 64
    model: str | None = None

    def __post_init__(self):
        for name in ("epochs", "latent", "batch_size"):
            _set(self, name, _int(f"preprocessing.denoise.{name}", getattr(self, name), lo=1))
        if self.model is not None:
            _set(self, "model", str(self.model))


@dataclass(frozen=True)
class PreprocessConfig:
    """Steps of :func:`nmf4d.preprocess.preprocess` (applied in this order).

    Attributes
    ----------
    crop : (y0, y1, x0, x1), optional
        Crop box in raw detector pixels.
    centre_crop : int, optional
        Square crop of this size around the pattern centre, after ``crop``.
    bin : int or (int, int)
        Detector binning factor (sum); 1: none.
    mask_radius : float, optional
        Radius of the direct-beam disc set to 0, in pixels of the cropped, binned patterns,
        centred on ``mask_centre``: (cy, cx), None (pattern centre) or "auto" (found on the
        mean pattern).
    filter : str
        A name in :data:`nmf4d.filters.FILTERS`: "raw", "mean3", "pca", "denoise", or one
        registered by the user (its keyword options in ``filter_options``).
    pca_rank : int or "auto"
        Rank of the PCA filter.
    denoise : DenoiseConfig
        Options of the learned denoiser.
    scale : {None, "sqrt", "log"}
    normalise : {None, "sum", "max", "mean_total"}
    """

    crop: tuple[int, int, int, int] | None = None
    centre_crop: int | None = None
    bin: int | tuple[int, int] = 1
    mask_radius: float | None = None
    mask_centre: tuple[float, float] | str | None = None
    filter: str = "raw"
    pca_rank: int | str = "auto"
    denoise: DenoiseConfig = field(default_factory=DenoiseConfig)
    filter_options: dict | None = None
    scale: str | None = None
    normalise: str | None = None

    def __post_init__(self):
        p = "preprocessing."
        if self.crop is not None:
            box = tuple(self.crop) if isinstance(self.crop, (tuple, list)) else ()
            if len(box) != 4:
                raise ConfigError(p + "crop", self.crop, "must be 4 integers (y0, y1, x0, x1)")
            _set(self, "crop", tuple(_int(p + "crop", v) for v in box))
        _set(self, "centre_crop", _int(p + "centre_crop", self.centre_crop, lo=1, none=True))
        b = self.bin
        if isinstance(b, (tuple, list)):
            if len(b) != 2:
                raise ConfigError(p + "bin", b, "must be an integer >= 1 or a pair of them")
            _set(self, "bin", tuple(_int(p + "bin", v, lo=1) for v in b))
        else:
            _set(self, "bin", _int(p + "bin", b, lo=1))
        _set(self, "mask_radius", _number(p + "mask_radius", self.mask_radius, lo=0,
                                          strict=True, none=True))
        mc = self.mask_centre
        if isinstance(mc, (tuple, list)):
            if len(mc) != 2:
                raise ConfigError(p + "mask_centre", mc, "must be (cy, cx), 'auto' or None")
            _set(self, "mask_centre", tuple(_number(p + "mask_centre", v) for v in mc))
        elif mc not in (None, "auto"):
            raise ConfigError(p + "mask_centre", mc, "must be (cy, cx), 'auto' or None")
        _choice(p + "filter", self.filter, sorted(FILTERS))
        if self.pca_rank != "auto":
            _set(self, "pca_rank", _int(p + "pca_rank", self.pca_rank, lo=1))
        if isinstance(self.denoise, dict):
            _set(self, "denoise", DenoiseConfig(**self.denoise))
        elif not isinstance(self.denoise, DenoiseConfig):
            raise ConfigError(p + "denoise", self.denoise, "must be a DenoiseConfig")
        if self.filter_options is not None:
            if not isinstance(self.filter_options, dict):
                raise ConfigError(p + "filter_options", self.filter_options, "must be a dict")
            _set(self, "filter_options", dict(self.filter_options))
        scale = _choice(p + "scale", self.scale, SCALE_METHODS, none_as="none")
        _set(self, "scale", None if scale == "none" else scale)
        norm = _choice(p + "normalise", self.normalise, NORMALISE_METHODS, none_as="none")
        _set(self, "normalise", None if norm == "none" else norm)


@dataclass(frozen=True)
class SweepConfig:
    """Decision level one: the K-component loss over a range of k (:mod:`nmf4d.sweep`).

    Attributes
    ----------
    k_range : (int, int), optional
        Inclusive range of k; default 2..20 capped at the number of patterns (an explicit
        range beyond it is an error). "MIN:MAX" text is accepted.
    method : {"sketch", "full"}
        Fits on one shared randomized sketch of the data (default) or on the full data.
    tol, max_iter : float, int
        Stopping rule of every fit of the sweep.
    ortho : float
        Orthogonality penalty of the sweep's fits (default 0: the k decision was
        validated without it).
    """

    k_range: tuple[int, int] | None = None
    method: str = "sketch"
    tol: float = 1e-4
    max_iter: int = 200
    ortho: float = 0.0

    def __post_init__(self):
        if self.k_range is not None:
            _set(self, "k_range", parse_k_range(self.k_range))
        _choice("sweep.method", self.method, SWEEP_METHODS)
        _set(self, "tol", _number("sweep.tol", self.tol, lo=0))
        _set(self, "max_iter", _int("sweep.max_iter", self.max_iter, lo=1))
        _set(self, "ortho", _number("sweep.ortho", self.ortho, lo=0))


@dataclass(frozen=True)
class SelectionConfig:
    """The number of components: ``k`` given, or ``"auto"`` (decision levels one and two),
    and the thresholds of the level-two rule (:mod:`nmf4d.select_k`).

    Attributes
    ----------
    k : "auto" or int
    min_cluster : int, optional
        Fewest positions a component must dominate; default max(3, 0.2 % of them).
    ssim_max : float
        Two component patterns with SSIM at least this are near-identical.
    corr_max : float
        Two weight maps correlating at least this much are duplicates.
    min_gain : float
        Smallest relative fall of the loss an extra component must bring.
    """

    k: int | str = "auto"
    min_cluster: int | None = None
    ssim_max: float = 0.75
    corr_max: float = 0.5
    min_gain: float = 1e-3

    def __post_init__(self):
        if self.k != "auto":
            if isinstance(self.k, str):
                raise ConfigError("selection.k", self.k, "must be 'auto' or an integer")
            _set(self, "k", _int("selection.k", self.k, lo=1))
        _set(self, "min_cluster", _int("selection.min_cluster", self.min_cluster, lo=1, none=True))
        _set(self, "ssim_max", _number("selection.ssim_max", self.ssim_max))
        _set(self, "corr_max", _number("selection.corr_max", self.corr_max))
        _set(self, "min_gain", _number("selection.min_gain", self.min_gain, lo=0))

    def min_size(self, n_positions: int) -> int:
        """Fewest positions a component must dominate among ``n_positions``."""
        if self.min_cluster is not None:
            return int(self.min_cluster)
        return max(3, int(round(0.002 * n_positions)))


@dataclass(frozen=True)
class FitConfig:
    """Every NMF fit: noise weighting, start, penalties; the final fit's stopping rule.

    Attributes
    ----------
    weighting : {"poisson", "none"}
        Factorise the Poisson-weighted data (default; results in input units) or V as is.
    init : {"spa", "nndsvda", "nndsvd", "random"}
    max_iter, tol : int, float
        Final fit's iteration cap and relative tolerance.
    l1_weights, l1_components : float
        L1 penalties.
    ortho : float
        Orthogonality penalty of the final fit (the weights are refitted without it).
    """

    weighting: str = "poisson"
    init: str = "spa"
    max_iter: int = 500
    tol: float = 1e-5
    l1_weights: float = 0.0
    l1_components: float = 0.0
    ortho: float = 0.1

    def __post_init__(self):
        _choice("fit.weighting", self.weighting, WEIGHTINGS)
        _choice("fit.init", self.init, INITS)
        _set(self, "max_iter", _int("fit.max_iter", self.max_iter, lo=1))
        _set(self, "tol", _number("fit.tol", self.tol, lo=0))
        _set(self, "l1_weights", _number("fit.l1_weights", self.l1_weights, lo=0))
        _set(self, "l1_components", _number("fit.l1_components", self.l1_components, lo=0))
        _set(self, "ortho", _number("fit.ortho", self.ortho, lo=0))


@dataclass(frozen=True)
class ExecutionConfig:
    """Where and how the passes over the data run (:mod:`nmf4d.execution`).

    Attributes
    ----------
    memory : int or str, optional
        Budget in bytes or text ("2GB"); default half the physical memory. Data larger
        than half of it is streamed from its file block by block.
    device : {"auto", "cpu", "cuda", "cuda:N"}
        Where the denoiser trains and the final fit runs.
    workers : int, optional
        Start a local dask.distributed cluster of this many processes.
    scheduler : str, optional
        Address of a running dask.distributed scheduler.
    """

    memory: int | str | None = None
    device: str = "auto"
    workers: int | None = None
    scheduler: str | None = None

    def __post_init__(self):
        from .execution import check_cluster_options, check_device_name, parse_memory

        parse_memory(self.memory, field="execution.memory")
        _set(self, "device", check_device_name(self.device, field="execution.device"))
        check_cluster_options(scheduler=self.scheduler, workers=self.workers)


@dataclass(frozen=True)
class MapsConfig:
    """Cluster and overlap maps (:mod:`nmf4d.maps`).

    Attributes
    ----------
    thresholds : tuple of float
        Overlap thresholds on the second/largest weight ratio, each in [0, 1].
    """

    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS

    def __post_init__(self):
        t = tuple(_number("maps.thresholds", v) for v in self.thresholds)
        if not t or any(v < 0 or v > 1 for v in t):
            raise ConfigError("maps.thresholds", self.thresholds, "must be values in [0, 1]")
        _set(self, "thresholds", t)


@dataclass(frozen=True)
class ReportConfig:
    """The HTML report the command line writes beside results.h5.

    Attributes
    ----------
    enabled : bool
    """

    enabled: bool = True

    def __post_init__(self):
        if not isinstance(self.enabled, bool):
            raise ConfigError("report.enabled", self.enabled, "must be True or False")


_STAGES = {"preprocessing": PreprocessConfig, "sweep": SweepConfig,
           "selection": SelectionConfig, "fit": FitConfig, "execution": ExecutionConfig,
           "maps": MapsConfig, "report": ReportConfig}

#: Flat name of every leaf field -> its dotted path.
FLAT = {
    "seed": "seed",
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
    "k": "selection.k", "min_cluster": "selection.min_cluster",
    "ssim_max": "selection.ssim_max", "corr_max": "selection.corr_max",
    "min_gain": "selection.min_gain",
    "weighting": "fit.weighting", "init": "fit.init", "max_iter": "fit.max_iter",
    "tol": "fit.tol", "l1_weights": "fit.l1_weights", "l1_components": "fit.l1_components",
    "ortho": "fit.ortho",
    "memory": "execution.memory", "device": "execution.device",
    "workers": "execution.workers", "scheduler": "execution.scheduler",
    "thresholds": "maps.thresholds", "report": "report.enabled",
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
    flat: dict[str, Any] = {}
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
