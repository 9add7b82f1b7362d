"""Scan filters: what replaces every pattern before NMF (``--filter``).

The registry maps a filter's name to the function that applies it and to how its options
are built from the preprocessing configuration. Filters with optional or heavy
dependencies are named by ``"module:function"`` and imported on first use, so importing
this package (or :mod:`nmf4d.preprocess`, or :mod:`nmf4d.config`) loads none of them.

Built in: ``raw`` (no filter), ``mean3`` (the paper's 3x3 scan mean, :mod:`.scan`),
``pca`` (low-rank reconstruction, :mod:`.pca`) and ``denoise`` (the learned autoencoder,
:mod:`.denoise`, needs ``nmf4d[denoise]``).

A filter function takes a 4D numpy or dask array ``(scan_y, scan_x, ky, kx)`` and keyword
options and returns an array of the same kind and shape, or ``(array, info)`` with a
JSON-serialisable ``info`` recorded in the preprocessing record, or ``(array, info,
artifacts)`` with objects to save beside the results (e.g. a trained model).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import InputError


@dataclass(frozen=True)
class FilterSpec:
    """One registered filter.

    Attributes
    ----------
    name : str
    target : callable or str
        The function, or ``"module:function"`` imported on first use.
    options : callable, optional
        ``options(preprocessing_config, seed=..., device=..., progress=...) -> dict`` of
        keyword arguments for the function; default: the config's ``filter_options``.
    """

    name: str
    target: Callable | str
    options: Callable[..., dict] | None = None

    def function(self) -> Callable:
        """The filter function (imported now if it was named by a string)."""
        if callable(self.target):
            return self.target
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def kwargs(self, config: Any, *, seed: int, device: str, progress: Any) -> dict:
        """Keyword arguments of the function for this configuration."""
        if self.options is None:
            return dict(getattr(config, "filter_options", None) or {})
        return self.options(config, seed=seed, device=device, progress=progress)


def _no_options(config, **_):
    return {}


def _pca_options(config, *, seed, **_):
    return {"rank": config.pca_rank, "seed": seed}


def _denoise_options(config, *, seed, device, progress):
    d = config.denoise
    return {"epochs": d.epochs, "latent": d.latent, "batch_size": d.batch_size,
            "model": d.model, "seed": seed, "device": device,
            "progress": bool(getattr(progress, "bars", False))}


def _identity(data):
    return data


FILTERS: dict[str, FilterSpec] = {
    "raw": FilterSpec("raw", _identity, _no_options),
    "mean3": FilterSpec("mean3", "nmf4d.filters.scan:mean3_filter", _no_options),
    "pca": FilterSpec("pca", "nmf4d.filters.pca:pca_filter", _pca_options),
    "denoise": FilterSpec("denoise", "nmf4d.filters.denoise:pipeline_filter", _denoise_options),
}


def register_filter(name: str, func: Callable | str, *,
                    options: Callable[..., dict] | None = None) -> None:
    """Add (or replace) a filter usable as ``PreprocessConfig(filter=name)``.

    Parameters
    ----------
    name : str
    func : callable or "module:function"
    options : callable, optional
        Builds the function's keyword arguments from the preprocessing configuration
        (default: its ``filter_options`` dict).
    """
    if not (isinstance(name, str) and name and (callable(func) or isinstance(func, str))):
        raise InputError(f"filter name must be a non-empty str and func a callable, got "
                         f"{name!r}, {func!r}")
    FILTERS[name] = FilterSpec(name, func, options)


def get_filter(name: str) -> FilterSpec:
    """The registered filter ``name`` (InputError listing the names if unknown)."""
    if name not in FILTERS:
        raise InputError(f"filter must be one of {sorted(FILTERS)}, got {name!r}")
    return FILTERS[name]


def filter_names() -> list[str]:
    """Names of the registered filters, sorted."""
    return sorted(FILTERS)


__all__ = ["FILTERS", "FilterSpec", "register_filter", "get_filter", "filter_names"]
