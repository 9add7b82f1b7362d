"""Tests of nmf4d.calibration: parsing, file metadata, precedence, the results attribute."""
import pytest

from nmf4d.calibration import (
    DEFAULT_VOLTAGE,
    Calibration,
    from_axes,
    parse_length,
    reciprocal_factor,
    resolve,
)
from nmf4d.config import CalibrationConfig
from nmf4d.errors import ConfigError
from nmf4d.report.calibration import parse_calibration


@pytest.mark.parametrize("text, expected", [("2.5nm", (2.5, "nm")), ("2.5 nm", (2.5, "nm")),
                                            ("25A", (25.0, "Å")), ("0.1um", (0.1, "µm")),
                                            (3, (3.0, "nm")), ("1e2pm", (100.0, "pm"))])
def test_parse_length(text, expected):
    assert parse_length(text) == expected


@pytest.mark.parametrize("bad", ["", "nm", "2.5 parsecs", "-1nm", "0nm"])
def test_parse_length_errors(bad):
    with pytest.raises(ConfigError, match="calibration.scan_step"):
        parse_length(bad)


def test_reciprocal_units():
    assert reciprocal_factor("$A^{-1}$") == reciprocal_factor("1/Å") == 1.0
    assert reciprocal_factor("1/nm") == 0.1
    assert reciprocal_factor("cm") is None and reciprocal_factor("") is None


def test_from_axes_of_a_calibrated_file():
    """The axes of the real nbed_2x2.hspy: 2 nm steps; 0.01261 1/Å per pixel, zero at 128."""
    axes = [{"scale": 2.0, "offset": 200.0, "units": "nm"}] * 2 + \
        [{"scale": 0.01261, "offset": -1.61408, "units": "$A^{-1}$"}] * 2
    meta = {"Acquisition_instrument": {"TEM": {"beam_energy": 300, "rocking_angle": 0.7}}}
    f = from_axes(axes, meta)
    assert f["scan_step"] == (2.0, 2.0) and f["scan_units"] == "nm"
    assert f["reciprocal_scale"] == (0.01261, 0.01261)
    assert f["beam_centre"] == pytest.approx((128.0, 128.0))
    assert f["voltage"] == 300.0 and f["precession"] == 0.7
    assert set(f["sources"].values()) == {"file"}


def test_uncalibrated_or_foreign_units_give_nothing():
    assert from_axes([{"scale": 1.0, "units": ""}] * 4) == {"sources": {}}
    blo = [{"scale": 12.8, "units": "nm"}] * 2 + [{"scale": 0.016, "units": "cm"}] * 2
    f = from_axes(blo)                            # ASTAR's detector cm is not reciprocal space
    assert "reciprocal_scale" not in f and f["scan_step"] == (12.8, 12.8)


def test_options_win_over_the_file_and_defaults_are_marked():
    found = {"scan_step": (2.0, 2.0), "scan_units": "nm", "reciprocal_scale": (0.01, 0.01),
             "sources": {"scan_step": "file", "reciprocal_scale": "file"}}
    c = resolve(CalibrationConfig(reciprocal_scale=0.02, voltage=120), found)
    assert c.scan_step == (2.0, 2.0) and c.reciprocal_scale == (0.02, 0.02)
    assert c.voltage == 120 and c.precession == 0.0
    assert c.sources == {"scan_step": "file", "reciprocal_scale": "option", "voltage": "option",
                         "precession": "default"}
    empty = resolve(CalibrationConfig())
    assert empty.scan_step is None and empty.voltage == DEFAULT_VOLTAGE


def test_json_round_trip_and_the_report_reads_it():
    c = Calibration(scan_step=(2.5, 2.5), scan_units="nm", reciprocal_scale=(0.02, 0.02),
                    voltage=300.0, precession=0.5, beam_centre=(63.5, 64.0),
                    sources={"scan_step": "option"})
    assert Calibration.from_json(c.to_json()) == c
    shown = parse_calibration(c.to_json(), preprocessing_bin=2)
    assert shown.scan_step == (2.5, 2.5) and shown.reciprocal == (0.04, 0.04)
    assert c.factorised(2).reciprocal_scale == (0.04, 0.04)
    assert Calibration.from_json("not json") == Calibration()


@pytest.mark.parametrize("kw, field", [(dict(reciprocal_scale=0), "calibration.reciprocal_scale"),
                                       (dict(reciprocal_scale=-0.02), "calibration.reciprocal_scale"),
                                       (dict(voltage=0), "calibration.voltage"),
                                       (dict(precession=45), "calibration.precession"),
                                       (dict(scan_step="5 furlongs"), "calibration.scan_step"),
                                       (dict(beam_centre=(1,)), "calibration.beam_centre")])
def test_config_checks(kw, field):
    with pytest.raises(ConfigError) as err:
        CalibrationConfig(**kw)
    assert err.value.field == field
