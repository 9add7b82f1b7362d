"""The indexing stage end to end (nmf4d.orientation, ``nmf4d run --phases``): a scan of
grains with known orientations gives them back, and the outputs read back with orix."""
import json

import h5py
import numpy as np
import pytest

from _index_support import SCALE, angle, need_index_deps, simulate, write_cif
from nmf4d.cli import main

EULERS = np.radians([[10.0, 25.0, 40.0], [75.0, 33.0, 28.0], [130.0, 12.0, 250.0]])


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    need_index_deps()
    folder = tmp_path_factory.mktemp("orientation")
    patterns = np.stack([simulate("al_fcc", e) for e in EULERS])
    sy, sx = 12, 18
    labels = np.repeat(np.arange(3), sx // 3)[None, :].repeat(sy, axis=0)  # three stripes
    rng = np.random.default_rng(0)
    data = rng.poisson(patterns[labels] * 3000.0).astype(np.uint16)
    np.save(folder / "scan.npy", data)
    return folder, labels, write_cif(folder, "al_fcc")


def test_run_with_phases_indexes_every_cluster(scan, tmp_path):
    folder, labels, cif = scan
    out = tmp_path / "o"
    rc = main(["run", str(folder / "scan.npy"), "-o", str(out), "--k", "3", "-q",
               "--phases", str(cif), "--reciprocal-scale", str(SCALE), "--scan-step", "5nm"])
    assert rc == 0
    with h5py.File(out / "results.h5") as f:
        lab = f["labels"][()]
        g = f["orientation"]
        phase = [p.decode() if isinstance(p, bytes) else str(p) for p in g["phase"][()]]
        euler = g["euler"][()]
        assert g["misorientation"].shape == (3, 3)
        assert "index" in f["timings"].attrs
    assert phase == ["al_fcc"] * 3
    for c in range(3):
        truth = np.bincount(labels[lab == c], minlength=3).argmax()
        assert angle(euler[c], EULERS[truth], "al_fcc") < 2.0
    from orix import io
    xmap = io.load(str(out / "orientation.h5"))
    assert xmap.shape == labels.shape and xmap.dx == pytest.approx(5.0)
    ang = io.load(str(out / "orientation.ang"))
    assert ang.size == labels.size
    for name in ("orientation_map", "orientation_phases", "orientation_patterns"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="orientation"' in html and "al_fcc" in html


@pytest.mark.parametrize("args, words", [
    (["--phases", "nope.cif", "--reciprocal-scale", "0.03"], "nope.cif"),
    (["--phases", "AL"], "--reciprocal-scale"),
    (["--phases", "AL", "--reciprocal-scale", "0"], "--reciprocal-scale 0"),
])
def test_bad_indexing_input(scan, tmp_path, capsys, args, words):
    folder, _, cif = scan
    args = [str(cif) if a == "AL" else a for a in args]
    rc = main(["run", str(folder / "scan.npy"), "-o", str(tmp_path / "x"), "--k", "3", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and words in err[0], err
    assert not (tmp_path / "x").exists()


def test_cif_without_space_group(scan, tmp_path, capsys):
    folder, _, _ = scan
    bad = tmp_path / "nogroup.cif"
    bad.write_text("data_x\n_cell_length_a 4.0\n_cell_length_b 4.0\n_cell_length_c 4.0\n"
                   "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n")
    rc = main(["run", str(folder / "scan.npy"), "-o", str(tmp_path / "x"), "--k", "3",
               "--phases", str(bad), "--reciprocal-scale", "0.03"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "nogroup.cif" in err[0]


def test_index_an_existing_results_folder(scan, tmp_path):
    folder, labels, cif = scan
    out = tmp_path / "o"
    assert main(["run", str(folder / "scan.npy"), "-o", str(out), "--k", "3", "-q",
                 "--no-report"]) == 0
    before = set(p.name for p in out.iterdir())
    assert main(["index", str(out), "--phases", str(cif), "--reciprocal-scale", str(SCALE),
                 "--refine-positions", "-q"]) == 0
    with h5py.File(out / "results.h5") as f:
        assert [p.decode() if isinstance(p, bytes) else p for p in f["orientation/phase"][()]] \
            == ["al_fcc"] * 3
        assert f["orientation/positions/euler"].shape == labels.shape + (3,)
        cal = json.loads(f.attrs["calibration"])
        assert cal["reciprocal_scale"] == [SCALE, SCALE]
    after = set(p.name for p in out.iterdir())
    assert after - before >= {"orientation.h5", "orientation.ang", "report.html"}
    assert not [p for p in after if p.startswith(".")]              # no temporary file left
    assert main(["index", str(out), "-q"]) == 2                     # no --phases
