"""Validation corpus for nmf4d: scans from simulators nmf4d was not designed on.

Generators (one module each, each with ``make_case(spec, seed) -> Case``):
``diffsims_gen`` (kinematic simulations of CIF phases), ``pyxem_gen`` (pyxem's dummy
data, needs pyxem), ``synthetic_gen`` (nmf4d's own generator, varied), ``real_gen``
(scans tiled from real detector patterns). ``specs.CORPUS`` lists every case of the
design and holdout halves; ``build.py`` writes them to a cache folder.
"""
from __future__ import annotations

import importlib

from .case import Case, Truth, load_case, save_case

MODULES = {"diffsims": "diffsims_gen", "pyxem": "pyxem_gen", "synthetic": "synthetic_gen",
           "real": "real_gen"}


def make_case(generator: str, spec: dict, seed: int) -> Case:
    """Run generator ``generator``'s ``make_case(spec, seed)``."""
    if generator not in MODULES:
        raise ValueError(f"unknown generator {generator!r}: choose one of {sorted(MODULES)}")
    mod = importlib.import_module(f"{__name__}.{MODULES[generator]}")
    return mod.make_case(spec, seed)


__all__ = ["Case", "Truth", "load_case", "save_case", "make_case", "MODULES"]
