"""Checks of configuration values: each raises a ConfigError naming the field."""
from __future__ import annotations

import math
from typing import Any

from ..errors import ConfigError

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


