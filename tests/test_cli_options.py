"""Tests of nmf4d.cli_options: one table of flags, mapped to the configuration and back."""
import argparse

import pytest

from nmf4d.cli import build_parser, main
from nmf4d.cli_options import (
    OPTIONS,
    add_options,
    config_from_args,
    config_to_args,
    describe_error,
    flag_for,
    not_expressible,
)
from nmf4d.config import FLAT, AnalysisConfig
from nmf4d.errors import ConfigError

#: A value different from the default for every option (so the round trip proves each one).
CHANGED = {"dark": 12.5, "centre": "on", "k": 7, "rule": "paper-iqa", "k_range": (3, 12), "bin": 2, "crop": (1, 30, 2, 31), "centre_crop": 20,
           "mask_radius": 3.5, "mask_centre": (10.5, 11.0), "filter": "denoise",
           "pca_rank": 6, "denoise_epochs": 3, "denoise_latent": 8, "denoise_batch": 16,
           "denoise_model": "/tmp/m.pt", "scale": "sqrt", "normalise": "sum",
           "device": "cpu", "seed": 11, "max_iter": 77, "tol": 3e-6, "l1_weights": 0.25,
           "l1_components": 0.5, "init": "nndsvda", "ortho": 0.0, "weighting": "none",
           "sweep": "full", "sweep_tol": 2e-4, "sweep_max_iter": 50, "sweep_ortho": 0.05,
           "thresholds": (0.6, 0.7), "memory": "2GB", "workers": 2, "scheduler": None,
           "scan_step": "25Å", "reciprocal_scale": 0.0125, "voltage": 300.0,
           "precession": 0.5, "beam_centre": (64.5, 63.0), "explorer": False,
           "phases": ("/c/al.cif", "/c/ti.cif"), "phase_names": ("Al", "Ti"),
           "resolution": 0.5, "refine_positions": True, "merge_tolerance": 1.0,
           "report": False, "heldout": False}


def _parse(argv):
    p = argparse.ArgumentParser()
    add_options(p)
    return p.parse_args(argv)


def test_every_option_is_in_the_table_once():
    flags = [o.flag for o in OPTIONS]
    assert len(flags) == len(set(flags))
    assert {o.name for o in OPTIONS} <= set(FLAT)
    assert set(CHANGED) == {o.name for o in OPTIONS}
    assert not_expressible(AnalysisConfig.from_flat(scan_step="3um")) == []   # units: suffix


def test_round_trip_of_every_option():
    config = AnalysisConfig.from_flat(**CHANGED)
    for name, value in CHANGED.items():
        if value is not None and name != "scan_step":
            assert config.get(name) != AnalysisConfig().get(name), name
    argv = config_to_args(config)
    assert config_from_args(_parse(argv)) == config
    assert config.calibration.scan_step == 25.0 and config.calibration.scan_units == "Å"
    assert "--scan-step 25.0Å" in " ".join(argv)
    # and the scheduler (exclusive with --workers) on its own
    c2 = AnalysisConfig.from_flat(scheduler="tcp://head:8786")
    assert config_from_args(_parse(config_to_args(c2))) == c2


def test_defaults_give_the_default_config():
    assert config_from_args(_parse([])) == AnalysisConfig()
    assert config_to_args(AnalysisConfig(), only_changed=True) == []
    assert config_to_args(AnalysisConfig.from_flat(seed=3), only_changed=True) == ["--seed", "3"]


def test_run_parser_has_every_option():
    run = build_parser()._subparsers._group_actions[0].choices["run"]
    have = {s for a in run._actions for s in a.option_strings}
    assert {o.flag for o in OPTIONS} <= have


def test_not_expressible_names_library_only_fields():
    assert not_expressible(AnalysisConfig()) == []
    c = AnalysisConfig.from_flat(ssim_max=0.9, filter_options={"a": 1})
    assert sorted(not_expressible(c)) == ["preprocessing.filter_options", "selection.ssim_max"]


@pytest.mark.parametrize("argv, message", [
    (["--bin", "0"], "--bin 0: must be an integer >= 1"),
    (["--bin", "x"], "--bin x: must be an integer"),
    (["--k", "many"], "--k many: must be 'auto' or an integer"),
    (["--k-range", "5:6"], "--k-range 5:6: must satisfy 1 <= MIN and MAX >= MIN + 2"),
    (["--memory", "lots"], "--memory lots: must be a size like 2GB"),
    (["--device", "tpu"], "--device tpu: is not allowed"),
    (["--sweep", "dense"], "--sweep dense: is not allowed: choose one of sketch, full"),
    (["--scale", "cube"], "--scale cube: is not allowed: choose one of none, sqrt, log"),
    (["--crop", "1,2"], "--crop 1,2: must be 4 integers"),
])
def test_errors_name_the_flag(argv, message):
    with pytest.raises(ConfigError) as err:
        config_from_args(_parse(argv))
    assert describe_error(err.value).startswith(message)


def test_cli_prints_the_flag(tmp_path, capsys):
    rc = main(["demo", "-o", str(tmp_path / "o"), "--bin", "0", "-q"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["nmf4d: error: --bin 0: must be an integer >= 1"]
    assert flag_for("sweep.k_range").flag == "--k-range" and flag_for("nope") is None


@pytest.mark.parametrize("text, value", [("auto", "auto"), ("0", 0.0), ("0.3", 0.3)])
def test_ortho_flag_takes_auto_or_a_number(text, value):
    assert config_from_args(_parse(["--ortho", text])).fit.ortho == value


def test_ortho_flag_rejects_a_word():
    with pytest.raises(ConfigError, match="fit.ortho"):
        config_from_args(_parse(["--ortho", "strong"]))
