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
    """Import every diffsims/orix module the indexing uses and load orix's Numba kernels
    from their disk cache (about 2-3 s cold, mostly diffsims pulling in numba.cuda), e.g.
    to keep imports out of a timing."""
    require()
    import numpy as np
    from diffpy.structure.parsers import p_cif  # noqa: F401
    from diffsims.crystallography._diffracting_vector import DiffractingVector  # noqa: F401
    from diffsims.utils.shape_factor_models import lorentzian  # noqa: F401
    from diffsims.utils.sim_utils import get_kinematical_intensities  # noqa: F401
    from orix.crystal_map import CrystalMap, Phase  # noqa: F401
    from orix.quaternion import Orientation
    from orix.quaternion.symmetry import Oh
    from orix.sampling import get_sample_reduced_fundamental  # noqa: F401  (lazy module)

    o = Orientation(np.array([[1.0, 0, 0, 0]]), symmetry=Oh)
    o.angle_with_outer(o)                       # loads the cached Numba kernel
