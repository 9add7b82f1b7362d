"""The configuration of each stage: frozen dataclasses that check their fields when built."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..filters import FILTERS
from ..options import (
    DEFAULT_THRESHOLDS,
    INITS,
    NORMALISE_METHODS,
    SCALE_METHODS,
    SWEEP_METHODS,
    WEIGHTINGS,
)
from .checks import _choice, _int, _number, _set, parse_k_range

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
    dark : "auto", "off", float or str
        Detector offset subtracted first: estimated from the data ("auto"), a value, a
        .npy dark frame of the raw detector, or none (see :mod:`nmf4d.preprocess.dark`).
    centre : {"auto", "on", "off"}
        Descan correction: every pattern shifted to put its direct beam at one centre;
        "auto" when the beam drifts by more than half a pixel (see
        :mod:`nmf4d.preprocess.descan`).
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

    dark: float | str = "auto"
    centre: str = "auto"
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
        from ..preprocess.dark import check_dark

        p = "preprocessing."
        _set(self, "dark", check_dark(self.dark, p + "dark"))
        _choice(p + "centre", self.centre, ("auto", "on", "off"))
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
    """The number of components: ``k`` given, or ``"auto"``, and the decision's settings.

    ``rule="clusters"`` (default, :mod:`nmf4d.decision`) counts the distinct patterns
    (crystal clusters, backgrounds, "nothing significant") of every fit of level one and
    takes their median from the knee up; ``rule="paper-iqa"`` is nmf4d 0.1's level two
    (:mod:`nmf4d.select_k`), whose IQA evidence is recorded in both cases.

    Attributes
    ----------
    k : "auto" or int
    rule : {"clusters", "paper-iqa"}
    z_min : float
        A weight is significant at this many standard errors (noise model of the data).
    shared_min : float
        Components sharing at least this share of their reflection intensity are one
        orientation.
    ubiquity : float
        A component significant at this share of the positions is a background ...
    contrast : float
        ... unless its reflections are its own and its share of the intensity where it is
        the largest is at least this many times its share elsewhere
        (:func:`nmf4d.clustering.share_contrast`).
    min_cluster : int, optional
        Fewest positions a cluster must own; default max(3, 0.2 % of them).
    heldout : bool
        Merge the decision's clusters that do not differ on held-out counts
        (:mod:`nmf4d.heldout`; counts only).
    heldout_z : float
        ... when their held-out z is below this (standard deviations above noise).
    ssim_max, corr_max, min_gain : float
        Thresholds of the paper-iqa rule (see :mod:`nmf4d.select_k`).
    """

    k: int | str = "auto"
    rule: str = "clusters"
    z_min: float = 5.0
    shared_min: float = 0.5
    ubiquity: float = 0.9
    contrast: float = 2.0
    min_cluster: int | None = None
    heldout: bool = True
    heldout_z: float = 1.0
    ssim_max: float = 0.75
    corr_max: float = 0.5
    min_gain: float = 1e-3

    def __post_init__(self):
        if self.k != "auto":
            if isinstance(self.k, str):
                raise ConfigError("selection.k", self.k, "must be 'auto' or an integer")
            _set(self, "k", _int("selection.k", self.k, lo=1))
        _choice("selection.rule", self.rule, ("clusters", "paper-iqa"))
        _set(self, "z_min", _number("selection.z_min", self.z_min, lo=0, strict=True))
        _set(self, "shared_min", _number("selection.shared_min", self.shared_min, lo=0))
        if self.shared_min > 1:
            raise ConfigError("selection.shared_min", self.shared_min, "must be in [0, 1]")
        _set(self, "ubiquity", _number("selection.ubiquity", self.ubiquity, lo=0, strict=True))
        if self.ubiquity > 1:
            raise ConfigError("selection.ubiquity", self.ubiquity, "must be in (0, 1]")
        _set(self, "contrast", _number("selection.contrast", self.contrast, lo=1))
        _set(self, "min_cluster", _int("selection.min_cluster", self.min_cluster, lo=1, none=True))
        if not isinstance(self.heldout, bool):
            raise ConfigError("selection.heldout", self.heldout, "must be true or false")
        _set(self, "heldout_z", _number("selection.heldout_z", self.heldout_z))
        _set(self, "ssim_max", _number("selection.ssim_max", self.ssim_max))
        _set(self, "corr_max", _number("selection.corr_max", self.corr_max))
        _set(self, "min_gain", _number("selection.min_gain", self.min_gain, lo=0))

    def min_size(self, n_positions: int) -> int:
        """Fewest positions a cluster must own among ``n_positions``."""
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
    ortho : float or "auto"
        Orthogonality penalty of the final fit (the weights are refitted without it).
        "auto" (default): 0 after nmf4d's decision (``k="auto"``, ``rule="clusters"``),
        whose grouping already sorts out shared beams and backgrounds, and where on
        scans from other simulators and real patterns the penalty held fits in a wrong
        partition; :data:`ORTHO_GIVEN` for a given k and the paper-iqa rule, where it
        keeps the direct beam in the grain components (see :func:`final_ortho`).
    """

    weighting: str = "poisson"
    init: str = "spa"
    max_iter: int = 500
    tol: float = 1e-5
    l1_weights: float = 0.0
    l1_components: float = 0.0
    ortho: "float | str" = "auto"

    def __post_init__(self):
        _choice("fit.weighting", self.weighting, WEIGHTINGS)
        _choice("fit.init", self.init, INITS)
        _set(self, "max_iter", _int("fit.max_iter", self.max_iter, lo=1))
        _set(self, "tol", _number("fit.tol", self.tol, lo=0))
        _set(self, "l1_weights", _number("fit.l1_weights", self.l1_weights, lo=0))
        _set(self, "l1_components", _number("fit.l1_components", self.l1_components, lo=0))
        if self.ortho != "auto":
            if isinstance(self.ortho, str):
                raise ConfigError("fit.ortho", self.ortho, "must be 'auto' or a number >= 0")
            _set(self, "ortho", _number("fit.ortho", self.ortho, lo=0))


#: The final fit's orthogonality penalty for a given k and the paper-iqa rule
#: (``fit.ortho="auto"``).
ORTHO_GIVEN = 0.1


def final_ortho(fit: FitConfig, selection: "SelectionConfig") -> float:
    """The orthogonality penalty the final fit uses.

    ``fit.ortho`` when it is a number. "auto": 0 (plain NMF) after nmf4d's decision
    (``selection.k == "auto"`` and ``selection.rule == "clusters"``), :data:`ORTHO_GIVEN`
    otherwise. Measured on the design half of the validation corpus
    (``benchmarks/validate.py --set ortho=0``): with the penalty, fits of scans whose
    patterns differ by a few percent of their counts (real ASTAR patterns on a bright
    beam) stayed in a partition where one component held most grains (ARI 0.1-0.3 at the
    true k), and it added a cluster on 4 diffsims scans; without it the decision's
    grouping (merges, backgrounds) handles the shared direct beam. For a given k there is
    no grouping, and on nmf4d.synthetic scans plain NMF gives part of each grain's beam
    to the vacuum component (cosines 0.57-0.78), which the penalty prevents.
    """
    if fit.ortho != "auto":
        return float(fit.ortho)
    decided = selection.k == "auto" and selection.rule == "clusters"
    return 0.0 if decided else ORTHO_GIVEN


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
        from ..execution import check_cluster_options, check_device_name, parse_memory

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
class CalibrationConfig:
    """Calibration given by the user; None fields are taken from the input's metadata
    (see :mod:`nmf4d.calibration`).

    Attributes
    ----------
    scan_step : float or (float, float), optional
        Distance between scan positions, in ``scan_units``; text like "2.5nm" is accepted.
    scan_units : str
        Length units of ``scan_step`` (nm, Å, µm, pm, mm, m).
    reciprocal_scale : float or (float, float), optional
        Å⁻¹ per pixel of the input detector (before binning), > 0.
    voltage : float, optional
        Accelerating voltage in kV (default from the input, else 200).
    precession : float, optional
        Precession angle in degrees (default from the input, else 0).
    beam_centre : (float, float), optional
        (cy, cx) of the direct beam in input detector pixels.
    """

    scan_step: float | tuple[float, float] | None = None
    scan_units: str = "nm"
    reciprocal_scale: float | tuple[float, float] | None = None
    voltage: float | None = None
    precession: float | None = None
    beam_centre: tuple[float, float] | None = None

    def __post_init__(self):
        from ..calibration import LENGTH_UNITS, parse_length

        p = "calibration."
        if isinstance(self.scan_step, str):
            value, units = parse_length(self.scan_step, field=p + "scan_step")
            _set(self, "scan_step", value)
            _set(self, "scan_units", units)
        for name in ("scan_step", "reciprocal_scale"):
            v = getattr(self, name)
            if isinstance(v, (tuple, list)):
                if len(v) != 2:
                    raise ConfigError(p + name, v, "must be a number or a pair (y, x)")
                _set(self, name, tuple(_number(p + name, t, lo=0, strict=True) for t in v))
            else:
                _set(self, name, _number(p + name, v, lo=0, strict=True, none=True))
        if str(self.scan_units).lower() not in LENGTH_UNITS and self.scan_units not in ("Å", "µm"):
            raise ConfigError(p + "scan_units", self.scan_units,
                              "is not allowed: choose nm, Å, µm, pm, mm or m")
        _set(self, "voltage", _number(p + "voltage", self.voltage, lo=0, strict=True, none=True))
        _set(self, "precession", _number(p + "precession", self.precession, lo=0, none=True))
        if self.precession is not None and self.precession >= 10:
            raise ConfigError(p + "precession", self.precession,
                              "must be in degrees below 10 (precession angles are ~0.3-3°)")
        if self.beam_centre is not None:
            bc = tuple(self.beam_centre) if isinstance(self.beam_centre, (tuple, list)) else ()
            if len(bc) != 2:
                raise ConfigError(p + "beam_centre", self.beam_centre, "must be (cy, cx)")
            _set(self, "beam_centre", tuple(_number(p + "beam_centre", v) for v in bc))


@dataclass(frozen=True)
class ReportConfig:
    """The HTML report the command line writes beside results.h5.

    Attributes
    ----------
    enabled : bool
        Write OUT/report.html.
    explorer : bool
        Store the explorer's per-position patterns in results.h5 (``explorer/``).
    """

    enabled: bool = True
    explorer: bool = True

    def __post_init__(self):
        for name in ("enabled", "explorer"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"report.{name}", getattr(self, name), "must be True or False")




@dataclass(frozen=True)
class IndexConfig:
    """Orientation indexing of the clusters (:mod:`nmf4d.index`; extra ``nmf4d[index]``).

    Attributes
    ----------
    phases : tuple of str
        CIF files of the candidate phases; empty: no indexing.
    phase_names : tuple of str
        A name for each phase (default: each CIF file's stem).
    resolution : float
        Template sampling of orientation space, degrees (default 1).
    refine_positions : bool
        Also refine every position's orientation near its cluster's (orientation
        gradients inside grains).
    merge_tolerance : float
        Clusters whose orientations differ by less than this (degrees, with crystal
        symmetry) form one orientation group.
    """

    phases: tuple = ()
    phase_names: tuple = ()
    resolution: float = 1.0
    refine_positions: bool = False
    merge_tolerance: float = 2.0

    def __post_init__(self):
        p = "index."
        phases = self.phases
        if isinstance(phases, str):
            phases = tuple(v.strip() for v in phases.split(",") if v.strip())
        _set(self, "phases", tuple(str(v) for v in phases))
        names = self.phase_names
        if isinstance(names, str):
            names = tuple(v.strip() for v in names.split(",") if v.strip())
        _set(self, "phase_names", tuple(str(v) for v in names))
        if self.phase_names and len(self.phase_names) != len(self.phases):
            raise ConfigError(p + "phase_names", self.phase_names,
                              f"must name each of the {len(self.phases)} phases")
        _set(self, "resolution", _number(p + "resolution", self.resolution, lo=0, strict=True))
        if self.resolution > 10:
            raise ConfigError(p + "resolution", self.resolution, "must be at most 10 degrees")
        if not isinstance(self.refine_positions, bool):
            raise ConfigError(p + "refine_positions", self.refine_positions, "must be True or False")
        _set(self, "merge_tolerance", _number(p + "merge_tolerance", self.merge_tolerance, lo=0))
