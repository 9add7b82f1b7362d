"""The command-line options of an analysis, and their mapping to the configuration.

:data:`OPTIONS` lists every flag once, with the configuration field it sets (by flat
name, :data:`nmf4d.config.FLAT`), how its text is parsed and how a value is written back.
From that one table come the parser's options (:func:`add_options`), the configuration
of a command line (:func:`config_from_args`), the command line of a configuration
(:func:`config_to_args`: the report's repeat command) and the flag that names a field in
an error message (:func:`flag_for`). Defaults live in the configuration only.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable

from .config import FLAT, AnalysisConfig
from .errors import ConfigError


def _typed(path: str, kind: type, what: str) -> Callable[[str], Any]:
    """A parser of one ``kind`` (int, float) whose errors name the field ``path``."""
    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            raise ConfigError(path, text, f"must be {what}") from None
    return parse


def _int(path: str) -> Callable[[str], int]:
    return _typed(path, int, "an integer")


def _float(path: str) -> Callable[[str], float]:
    return _typed(path, float, "a number")


def _int_or_auto(path: str, kind=int, what: str = "an integer") -> Callable[[str], Any]:
    def parse(text: str):
        if text == "auto":
            return "auto"
        try:
            return kind(text)
        except ValueError:
            raise ConfigError(path, text, f"must be 'auto' or {what}") from None
    return parse


def _float_or_auto(path: str) -> Callable[[str], Any]:
    return _int_or_auto(path, float, "a number")


def _numbers(path: str, n: int, kind=int) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        try:
            vals = tuple(kind(v) for v in str(text).split(","))
        except ValueError:
            vals = ()
        if len(vals) != n and n > 0 or not vals:
            what = "integers" if kind is int else "numbers"
            raise ConfigError(path, text, f"must be {n or 'some'} {what} separated by ','")
        return vals
    return parse


def _mask_centre(text: str):
    return "auto" if text == "auto" else _numbers("preprocessing.mask_centre", 2, float)(text)


def _scan_step(text: str):
    from .calibration import parse_length

    value, units = parse_length(text, field="calibration.scan_step")
    return f"{value!r}{units}"       # checked here; the config splits value and units


def _show_step(v) -> str:
    return _csv(v) if isinstance(v, tuple) else _num(v)


def _num_or_pair(v) -> str:
    return _csv(v) if isinstance(v, tuple) else _num(v)


def _csv_paths(text: str) -> tuple:
    return tuple(v.strip() for v in str(text).split(",") if v.strip())


def _csv(values) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def _num(v) -> str:
    return repr(float(v)) if isinstance(v, float) else str(v)


@dataclass(frozen=True)
class Option:
    """One flag of ``run``/``demo``/``compare-filters``.

    Attributes
    ----------
    flag : str
    name : str
        Flat name of the configuration field (:data:`nmf4d.config.FLAT`).
    help : str
    parse : callable
        Text -> configuration value.
    show : callable
        Configuration value -> text.
    switch : bool
        A flag without a value (``--no-report``) that sets ``name`` to ``switch_value``.
    """

    flag: str
    name: str
    help: str
    parse: Callable[[str], Any] = str
    show: Callable[[Any], str] = str
    switch: bool = False
    switch_value: Any = None
    metavar: str | None = None
    suffix: str | None = None      # flat name of a field written after the value (units)
    aliases: tuple = ()            # other spellings of the flag

    @property
    def path(self) -> str:
        return FLAT[self.name]

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    Option("--k", "k", "'auto' (both decision levels) or a number", _int_or_auto("selection.k")),
    Option("--rule", "rule", "how --k auto decides: clusters (distinct patterns of the fits "
           "from the knee up; default) or paper-iqa (nmf4d 0.1's IQA-based level two)"),
    Option("--no-heldout", "heldout", "do not merge the decision's clusters that do not "
           "differ on held-out counts (count splitting; see the README)", switch=True,
           switch_value=False),
    Option("--k-range", "k_range", "MIN:MAX range of k for --k auto (default 2:20, capped at "
           "the number of patterns)", str, lambda r: f"{r[0]}:{r[1]}", metavar="MIN:MAX"),
    Option("--dark", "dark", "detector offset subtracted first: auto (estimated from the "
           "data; 0 for counting detectors), off, a VALUE or a .npy dark FILE of the raw "
           "detector", metavar="auto|off|VALUE|FILE"),
    Option("--centre", "centre", "descan correction: auto (when the direct beam drifts by "
           "more than half a pixel), on or off (also spelled --center)", metavar="auto|on|off",
           aliases=("--center",)),
    Option("--bin", "bin", "integer binning of the patterns", _int("preprocessing.bin")),
    Option("--crop", "crop", "Y0,Y1,X0,X1 detector-pixel box",
           _numbers("preprocessing.crop", 4), _csv, metavar="Y0,Y1,X0,X1"),
    Option("--centre-crop", "centre_crop", "square crop of N px around the centre",
           _int("preprocessing.centre_crop"), metavar="N"),
    Option("--mask-radius", "mask_radius", "mask the direct beam disc (px, after binning)",
           _float("preprocessing.mask_radius"), _num, metavar="R"),
    Option("--mask-centre", "mask_centre", "centre of the --mask-radius disc: CY,CX or auto "
           "(found on the mean pattern); default the pattern centre", _mask_centre,
           lambda v: v if v == "auto" else _csv(v), metavar="CY,CX|auto"),
    Option("--filter", "filter", "raw (none), mean3 (3x3 scan-neighbour mean), pca "
           "(low-rank reconstruction) or denoise (learned autoencoder, needs torch)"),
    Option("--pca-rank", "pca_rank", "rank of --filter pca", _int_or_auto("preprocessing.pca_rank")),
    Option("--denoise-epochs", "denoise_epochs", "training epochs of --filter denoise",
           _int("preprocessing.denoise.epochs")),
    Option("--denoise-latent", "denoise_latent", "latent size of --filter denoise",
           _int("preprocessing.denoise.latent")),
    Option("--denoise-batch", "denoise_batch", "batch size of --filter denoise",
           _int("preprocessing.denoise.batch_size")),
    Option("--denoise-model", "denoise_model", "reuse a saved denoiser model (.pt)",
           metavar="PATH"),
    Option("--scale", "scale", "intensity scaling: none, sqrt or log",
           lambda t: None if t == "none" else t),
    Option("--normalise", "normalise", "none, sum, max or mean_total",
           lambda t: None if t == "none" else t),
    Option("--device", "device", "auto (a CUDA GPU when torch sees one, else the CPU), cpu, "
           "cuda or cuda:N: where the denoiser trains and the final full-data NMF runs"),
    Option("--seed", "seed", "seed of every random choice", _int("seed")),
    Option("--max-iter", "max_iter", "iteration cap of the final fit", _int("fit.max_iter")),
    Option("--tol", "tol", "relative tolerance of the final fit", _float("fit.tol"), _num),
    Option("--l1-weights", "l1_weights", "L1 penalty on the weights", _float("fit.l1_weights"), _num),
    Option("--l1-components", "l1_components", "L1 penalty on the components",
           _float("fit.l1_components"), _num),
    Option("--init", "init", "start of every fit: spa, nndsvda, nndsvd or random"),
    Option("--ortho", "ortho", "orthogonality penalty of the final fit: auto (0 after the "
           "clusters decision, 0.1 for a given k or --rule paper-iqa), or a number (0 for "
           "plain NMF)", _float_or_auto("fit.ortho"), _num),
    Option("--weighting", "weighting", "poisson (equalise counting noise before NMF, results "
           "in input units) or none"),
    Option("--sweep", "sweep", "level-one fits on a shared randomized sketch of the data "
           "(sketch: fast; losses measured on the full data) or on the full data (full)"),
    Option("--sweep-tol", "sweep_tol", "relative tolerance of the level-one fits",
           _float("sweep.tol"), _num),
    Option("--sweep-max-iter", "sweep_max_iter", "iteration cap of the level-one fits",
           _int("sweep.max_iter")),
    Option("--sweep-ortho", "sweep_ortho", "orthogonality penalty of the level-one fits",
           _float("sweep.ortho"), _num),
    Option("--thresholds", "thresholds", "overlap thresholds T1,T2,... (second / largest weight)",
           _numbers("maps.thresholds", 0, float), _csv, metavar="T1,T2,..."),
    Option("--memory", "memory", "memory budget, e.g. 2GB (default: half the machine's RAM); "
           "larger data is streamed from its file block by block", metavar="SIZE"),
    Option("--workers", "workers", "start a local dask.distributed cluster of N worker "
           "processes and compute on it", _int("execution.workers"), metavar="N"),
    Option("--scheduler", "scheduler", "address of a running dask.distributed scheduler "
           "(e.g. tcp://host:8786) to compute on", metavar="ADDRESS"),
    Option("--scan-step", "scan_step", "distance between scan positions, e.g. 2.5nm (default: "
           "from the file's metadata, else pixels)", _scan_step, _show_step, metavar="LENGTH",
           suffix="scan_units"),
    Option("--reciprocal-scale", "reciprocal_scale", "reciprocal-space size of one input "
           "detector pixel in 1/Å (default: from the file's metadata, else pixels)",
           _float("calibration.reciprocal_scale"), _num_or_pair, metavar="A^-1"),
    Option("--voltage", "voltage", "accelerating voltage in kV (default: from the file, else "
           "200)", _float("calibration.voltage"), _num, metavar="KV"),
    Option("--precession", "precession", "precession angle in degrees (default: from the "
           "file, else 0)", _float("calibration.precession"), _num, metavar="DEG"),
    Option("--beam-centre", "beam_centre", "CY,CX of the direct beam in input detector pixels "
           "(default: from the file's metadata)", _numbers("calibration.beam_centre", 2, float),
           _csv, metavar="CY,CX"),
    Option("--phases", "phases", "CIF files A.cif[,B.cif...]: index every cluster's pattern "
           "against these phases (phase and orientation; needs nmf4d[index])", _csv_paths,
           _csv, metavar="A.cif,B.cif"),
    Option("--phase-names", "phase_names", "a name for each phase (default: the CIF file "
           "stems)", _csv_paths, _csv, metavar="NAME,..."),
    Option("--resolution", "resolution", "template sampling of orientation space, degrees",
           _float("index.resolution"), _num, metavar="DEG"),
    Option("--refine-positions", "refine_positions", "refine every position's orientation "
           "near its cluster's (orientation gradients)", switch=True, switch_value=True),
    Option("--merge-tolerance", "merge_tolerance", "clusters closer than this (degrees) form "
           "one orientation group", _float("index.merge_tolerance"), _num, metavar="DEG"),
    Option("--no-explorer", "explorer", "store no per-position patterns for the report's "
           "explorer", switch=True, switch_value=False),
    Option("--no-report", "report", "write results.h5 only (no report.html)", switch=True,
           switch_value=False),
)

_BY_PATH = {o.path: o for o in OPTIONS}


#: The options of ``nmf4d index OUT`` (the rest comes from the run's recorded settings).
INDEX_OPTIONS = ("phases", "phase_names", "resolution", "refine_positions", "merge_tolerance",
                 "reciprocal_scale", "voltage", "precession", "beam_centre", "scan_step")


def add_options(parser: argparse.ArgumentParser, names=None) -> None:
    """Add the options of :data:`OPTIONS` (those of ``names``, flat names, when given) to
    ``parser`` (values stay text; defaults None)."""
    defaults = AnalysisConfig()
    for o in OPTIONS:
        if names is not None and o.name not in names:
            continue
        if o.switch:
            parser.add_argument(o.flag, dest=o.dest, action="store_true", help=o.help)
            continue
        default = defaults.get(o.name)
        shown = "" if default is None else f" (default: {o.show(default)})"
        parser.add_argument(o.flag, *o.aliases, dest=o.dest, default=None, metavar=o.metavar,
                            help=o.help + shown)


def config_from_args(args: argparse.Namespace, base: AnalysisConfig | None = None
                     ) -> AnalysisConfig:
    """The configuration of a command line: ``base`` (default: the defaults) with every
    option that was given. Errors are ConfigErrors naming the field (see :func:`flag_for`)."""
    flat = {}
    for o in OPTIONS:
        value = getattr(args, o.dest, None)
        if o.switch:
            if value:
                flat[o.name] = o.switch_value
        elif value is not None:
            flat[o.name] = o.parse(value)
    return (base or AnalysisConfig()).replace(**flat)


def config_to_args(config: AnalysisConfig, *, only_changed: bool = False) -> list[str]:
    """The options that give ``config`` (inverse of :func:`config_from_args`).

    Every option whose value is set is written (``only_changed``: only those that differ
    from the defaults), so the command repeats the run even if defaults change.
    """
    defaults = AnalysisConfig()
    out: list[str] = []
    for o in OPTIONS:
        value = config.get(o.name)
        if o.switch:
            if value == o.switch_value:
                out.append(o.flag)
            continue
        if value is None or value == () or (only_changed and value == defaults.get(o.name)):
            continue
        out += [o.flag, o.show(value) + (str(config.get(o.suffix)) if o.suffix else "")]
    return out


def not_expressible(config: AnalysisConfig) -> list[str]:
    """Dotted fields set away from their defaults that no flag can express."""
    defaults = AnalysisConfig()
    suffixes = {FLAT[o.suffix] for o in OPTIONS if o.suffix}
    return [path for name, path in FLAT.items() if path not in _BY_PATH
            and path not in suffixes and config.get(name) != defaults.get(name)]


def flag_for(field: str) -> Option | None:
    """The option that sets a configuration field (by dotted path), if any."""
    return _BY_PATH.get(field)


def describe_error(e: ConfigError) -> str:
    """A ConfigError's message in command-line terms: the flag instead of the field."""
    o = flag_for(e.field)
    if o is None:
        return str(e)
    value = e.value
    try:
        text = value if isinstance(value, str) else o.show(value)
    except (TypeError, ValueError, IndexError):
        text = repr(value)
    return f"{o.flag} {text}: {e.reason}"
