"""Crystal phases for indexing, read from CIF files.

A phase is an :class:`orix.crystal_map.Phase` (space group, point group, structure with
its lattice in orix's frame: a along x, c* along z). Its name is the file stem unless one
is given.
"""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from ._deps import require


def load_phase(path: str | os.PathLike, *, name: str | None = None):
    """Read one phase from a CIF file.

    Parameters
    ----------
    path : str or path-like
        A CIF file with a space group and an asymmetric unit.
    name : str, optional
        Phase name (default: the file stem, e.g. ``ti_hcp`` for ``ti_hcp.cif``).

    Returns
    -------
    orix.crystal_map.Phase

    Raises
    ------
    InputError
        The file does not exist, cannot be parsed as a CIF, has no space group or no atoms.
    """
    require()
    from orix.crystal_map import Phase

    p = Path(path)
    if not p.is_file():
        raise InputError(f"phase file {str(p)!r} does not exist (give a CIF file)")
    from diffpy.structure.parsers import p_cif

    parser = p_cif.P_cif()
    sink = io.StringIO()
    try:
        # the CIF parser prints its syntax errors; the one-line InputError replaces them
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            structure = parser.parseFile(str(p))
    except Exception as exc:  # diffpy raises StructureFormatError, PyCifRW others
        text = str(exc).strip().splitlines()
        reason = text[0] if text else type(exc).__name__
        if "space group" in reason.lower():
            raise InputError(f"phase file {str(p)!r} has no space group "
                             "(_symmetry_space_group_name_H-M or "
                             "_space_group_IT_number is needed)") from None
        raise InputError(f"phase file {str(p)!r} is not a readable CIF: {reason}") from None
    sg = getattr(getattr(parser, "spacegroup", None), "number", None)
    if sg is None:
        raise InputError(f"phase file {str(p)!r} has no space group "
                         "(_symmetry_space_group_name_H-M or _space_group_IT_number is needed)")
    if len(structure) == 0:
        raise InputError(f"phase file {str(p)!r} has no atoms (_atom_site_* loop is needed)")
    return Phase(name or p.stem, sg, structure=structure)


def load_phases(paths: Sequence[str | os.PathLike] | str, *,
                names: Sequence[str] | None = None) -> list:
    """Read several phases; ``paths`` may be a comma-separated string (as on the CLI).

    Parameters
    ----------
    paths : sequence of path-like, or str ``"a.cif,b.cif"``
    names : sequence of str, optional
        One name per file (default: the file stems).

    Returns
    -------
    list of orix.crystal_map.Phase

    Raises
    ------
    InputError
        No file, a bad file (see :func:`load_phase`), names of the wrong length or two
        phases with the same name.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [s.strip() for s in str(paths).split(",") if s.strip()]
    paths = list(paths)
    if not paths:
        raise InputError("phases: no CIF file given (e.g. phases='al_fcc.cif,ti_hcp.cif')")
    if names is not None and len(names) != len(paths):
        raise InputError(f"names: {len(names)} names for {len(paths)} phase files")
    out = [load_phase(p, name=None if names is None else names[i])
           for i, p in enumerate(paths)]
    seen = [ph.name for ph in out]
    dup = sorted({n for n in seen if seen.count(n) > 1})
    if dup:
        raise InputError(f"phases: the name {dup[0]!r} is used twice (give names=...)")
    return out
