"""HyperSpy signals in and out (nmf4d.inputs, nmf4d.signals): calibration carried through."""
import json

import numpy as np
import pytest

hs = pytest.importorskip("hyperspy.api", reason="needs nmf4d[hyperspy]")

from nmf4d.config import AnalysisConfig  # noqa: E402
from nmf4d.inputs import as_input, is_signal  # noqa: E402
from nmf4d.pipeline import analyse  # noqa: E402
from nmf4d.results import read_results, write_results  # noqa: E402
from nmf4d.synthetic import make_polycrystal  # noqa: E402

CFG = AnalysisConfig.from_flat(k=4, bin=2, seed=0)


@pytest.fixture(scope="module")
def signal():
    data, truth = make_polycrystal((20, 24), (40, 40), n_grains=3, vacuum=True, dose=2000, seed=2)
    s = hs.signals.Signal2D(data)
    for ax, (name, scale, units, offset) in zip(
            list(s.axes_manager.navigation_axes) + list(s.axes_manager.signal_axes),
            [("x", 2.5, "nm", 0.0), ("y", 2.5, "nm", 0.0), ("kx", 0.02, "1/Å", -0.39),
             ("ky", 0.02, "1/Å", -0.39)]):
        ax.name, ax.scale, ax.units, ax.offset = name, scale, units, offset
    s.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 300.0)
    return s, truth


@pytest.fixture(scope="module")
def from_signal(signal):
    return analyse(signal[0], CFG)


def test_signal_is_recognised_without_importing_hyperspy_elsewhere(signal):
    s, _ = signal
    assert is_signal(s) and not is_signal(s.data)
    inp = as_input(s)
    assert inp.kind == "signal" and inp.array is s.data
    assert inp.calibration["scan_step"] == (2.5, 2.5)
    assert inp.calibration["reciprocal_scale"] == (0.02, 0.02)
    assert inp.calibration["beam_centre"] == pytest.approx((19.5, 19.5))
    assert inp.calibration["voltage"] == 300.0


def test_analyse_signal_equals_analyse_array(signal, from_signal):
    s, truth = signal
    a = from_signal
    b = analyse(s.data, CFG)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.components, b.components)
    lazy = analyse(s.as_lazy(), CFG)
    np.testing.assert_array_equal(lazy.labels, a.labels)
    assert a.calibration.scan_step == (2.5, 2.5) and a.calibration.voltage == 300.0
    assert a.calibration.sources["scan_step"] == "signal"
    assert b.calibration.scan_step is None                   # a bare array says nothing


def test_calibration_reaches_results_and_report(from_signal, tmp_path):
    write_results(tmp_path / "results.h5", from_signal, input_path="signal")
    cal = json.loads(read_results(tmp_path)["attrs"]["calibration"])
    assert cal["scan_step"] == [2.5, 2.5] and cal["reciprocal_scale"] == [0.02, 0.02]
    from nmf4d.report import build_report
    html = build_report(tmp_path).read_text()
    assert "nm" in html and "Å⁻¹" in html


def test_to_signals_axes(from_signal):
    a = from_signal
    sig = a.to_signals()
    assert set(sig) == {"weights", "labels", "ratio", "components", "cluster_means",
                        "nmf_patterns"}
    w = sig["weights"]
    assert w.axes_manager.navigation_shape == (a.k,)
    ys, xs = list(w.axes_manager.signal_axes)[::-1]
    assert (ys.scale, ys.units, ys.size, xs.size) == (2.5, "nm", 20, 24)
    np.testing.assert_array_equal(w.data, a.weights)
    c = sig["components"]
    ky, kx = list(c.axes_manager.signal_axes)[::-1]
    assert ky.scale == pytest.approx(0.04) and ky.units == "1/Å"   # binned by 2
    # the direct beam (input pixel 19.5) is at reciprocal 0 in the binned patterns
    assert ky.offset + ky.scale * 9.5 == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_array_equal(sig["labels"].data, a.labels)
    np.testing.assert_array_equal(sig["cluster_means"].data, a.clusters["raw_mean"])


def test_saved_signals_load_back(from_signal, tmp_path):
    from nmf4d.signals import save_signals

    paths = save_signals(tmp_path, from_signal)
    ref = from_signal.to_signals()
    for path in paths:
        s = hs.load(str(path))
        r = ref[path.stem]
        np.testing.assert_array_equal(s.data, r.data)
        for a1, a2 in zip(s.axes_manager._axes, r.axes_manager._axes):
            assert (a1.name, a1.size, a1.units) == (a2.name, a2.size, a2.units)
            assert a1.scale == pytest.approx(a2.scale) and a1.offset == pytest.approx(a2.offset)


def test_cli_save_signals(tmp_path):
    from nmf4d.cli import main

    data, _ = make_polycrystal((12, 12), (24, 24), n_grains=2, dose=2000, seed=1)
    src = tmp_path / "d.npy"
    np.save(src, data)
    out = tmp_path / "o"
    assert main(["run", str(src), "-o", str(out), "--k", "2", "--no-report", "-q",
                 "--save-signals", "--scan-step", "3nm", "--reciprocal-scale", "0.015"]) == 0
    s = hs.load(str(out / "signals" / "weights.hspy"))
    assert list(s.axes_manager.signal_axes)[0].scale == 3.0
    c = hs.load(str(out / "signals" / "components.hspy"))
    assert list(c.axes_manager.signal_axes)[0].scale == pytest.approx(0.015)
    assert main(["run", str(src), "-o", str(tmp_path / "z"), "--k", "2", "-q",
                 "--save-signals", "tiff"]) == 2
