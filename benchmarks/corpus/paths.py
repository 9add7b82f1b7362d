"""Where the shared inputs of the generators are (CIF files, real detector files).

The project keeps them beside the repository, in ``shared/`` (``cif/``, ``formats/``).
Looked up in order: ``$NMF4D_SHARED_DIR``, ``<repository>/../shared``, the parent of a
git worktree's main checkout (``/work/shared`` here).
"""
from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path | None:
    """The shared folder, or None when none of the candidates exists."""
    cands = []
    if os.environ.get("NMF4D_SHARED_DIR"):
        cands.append(Path(os.environ["NMF4D_SHARED_DIR"]))
    cands += [_REPO.parent / "shared", _REPO.parent.parent / "shared"]
    for c in cands:
        if (c / "cif").is_dir() or (c / "formats").is_dir():
            return c
    return None


def cif_dir() -> Path:
    """Folder of the CIF files (``shared/cif``)."""
    d = shared_dir()
    if d is None or not (d / "cif").is_dir():
        raise FileNotFoundError("shared/cif not found: set NMF4D_SHARED_DIR")
    return d / "cif"


def formats_dir() -> Path:
    """Folder of the real detector files (``shared/formats``)."""
    d = shared_dir()
    if d is None or not (d / "formats").is_dir():
        raise FileNotFoundError("shared/formats not found: set NMF4D_SHARED_DIR")
    return d / "formats"
