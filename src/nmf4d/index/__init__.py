"""Orientation indexing of cluster patterns (optional extra: ``pip install "nmf4d[index]"``).

NMF reduces a scan to k clean component patterns; this subpackage gives each a phase
and a crystal orientation by kinematic template matching (diffsims templates over orix's
sampling of orientation space, polar correlation, local refinement), with a reliability,
the Friedel ambiguity, misorientations between clusters, an optional per-position
refinement and orix ``CrystalMap`` output.

Entry point: :func:`index_clusters`. diffsims and orix are imported only inside this
subpackage; without them every function raises an ``InputError`` naming the extra.
"""
from __future__ import annotations

from .calibration import Calibration, find_beam_centre
from .core import IndexResult, index_clusters
from .crystalmap import crystal_map, save_crystal_map
from .figures import (cluster_patterns_figure, misorientation_table, orientation_map_figure,
                      phase_map_figure)
from .phases import load_phase, load_phases
from .positions import PositionOrientations, refine_positions
from .prepare import Preparation, prepare_pattern, prepare_patterns
from .store import read_orientation_group, write_orientation_group
from .symmetry import friedel_partner, merge_clusters, misorientation_matrix
from .templates import TemplateBank, build_templates

__all__ = ["Calibration", "find_beam_centre", "IndexResult", "index_clusters", "load_phase", "load_phases",
           "Preparation", "prepare_pattern", "prepare_patterns", "friedel_partner",
           "merge_clusters", "misorientation_matrix", "TemplateBank", "build_templates",
           "PositionOrientations", "refine_positions", "crystal_map", "save_crystal_map",
           "write_orientation_group", "read_orientation_group", "orientation_map_figure",
           "phase_map_figure", "cluster_patterns_figure", "misorientation_table"]
