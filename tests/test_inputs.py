"""Tests of nmf4d.inputs: a file's calibration reaches the run (real detector files)."""
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from nmf4d.cli import main
from nmf4d.inputs import as_input
from nmf4d.io import open_dataset

FORMATS_DIR = Path(__file__).resolve().parents[2] / "shared" / "formats"


def _real(name):
    path = FORMATS_DIR / name
    if not path.exists():
        pytest.skip(f"real detector file {path} not available (../shared/formats is absent)")
    return path


def test_arrays_carry_nothing():
    x = np.zeros((2, 2, 4, 4))
    inp = as_input(x)
    assert inp.array is x and inp.calibration == {} and inp.kind == "array"


def test_hspy_file_calibration_reaches_results(tmp_path):
    path = _real("nbed_2x2.hspy")
    inp = as_input(open_dataset(path))
    assert inp.kind == "dataset"
    assert inp.calibration["scan_step"] == (2.0, 2.0)
    assert inp.calibration["reciprocal_scale"] == (0.01261, 0.01261)
    out = tmp_path / "o"
    assert main(["run", str(path), "-o", str(out), "--k", "2", "--no-report", "-q",
                 "--voltage", "120"]) == 0
    with h5py.File(out / "results.h5") as f:
        cal = json.loads(f.attrs["calibration"])
    assert cal["scan_step"] == [2.0, 2.0] and cal["scan_units"] == "nm"
    assert cal["reciprocal_scale"] == [0.01261, 0.01261]
    assert cal["beam_centre"] == pytest.approx([128.0, 128.0])
    assert cal["voltage"] == 120.0 and cal["sources"]["voltage"] == "option"
    assert cal["sources"]["reciprocal_scale"] == "file"
