"""The optional dependencies of :mod:`nmf4d.index` (the ``index`` extra).

diffsims and orix are imported only inside this subpackage, through :func:`require`, so
that ``import nmf4d`` and the rest of the pipeline work without them.
"""
from __future__ import annotations

from ..errors import InputError

try:  # a colleague is adding this class; use it where it exists
    from ..errors import MissingDependencyError
except ImportError:  # pragma: no cover - depends on the tree
    MissingDependencyError = None

EXTRA = "index"
INSTALL = f'pip install "nmf4d[{EXTRA}]"'


def missing(what: str = "orientation indexing") -> InputError:
    """The error raised when diffsims or orix is not installed (one line naming the extra)."""
    if MissingDependencyError is not None:
        return MissingDependencyError(what, "diffsims and orix", EXTRA)
    return InputError(f"{what} needs diffsims and orix: {INSTALL}")


def require() -> None:
    """Import diffsims and orix, or raise :func:`missing`'s error.

    Raises
    ------
    InputError
        (``MissingDependencyError`` where nmf4d has it) naming ``nmf4d[index]``.
    """
    try:
        import diffsims  # noqa: F401
        import orix  # noqa: F401
    except ImportError as exc:
        raise missing() from exc


def preload() -> None:
    """Import every diffsims/orix module the indexing uses (about 2 s cold, mostly
    diffsims pulling in numba.cuda), e.g. to keep imports out of a timing."""
    require()
    import diffpy.structure.parsers.p_cif  # noqa: F401
    import diffsims.crystallography._diffracting_vector  # noqa: F401
    import diffsims.utils.shape_factor_models  # noqa: F401
    import diffsims.utils.sim_utils  # noqa: F401
    import orix.crystal_map  # noqa: F401
    import orix.quaternion  # noqa: F401
    import orix.sampling  # noqa: F401
