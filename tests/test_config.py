"""Tests of nmf4d.config: one frozen, validated configuration per analysis."""
import dataclasses
import json

import pytest

from nmf4d.config import (
    FLAT,
    AnalysisConfig,
    DenoiseConfig,
    ExecutionConfig,
    FitConfig,
    MapsConfig,
    PreprocessConfig,
    SelectionConfig,
    SweepConfig,
    config_from_record,
    parse_k_range,
    resolve_k,
)
from nmf4d.errors import ConfigError, InputError


@pytest.mark.parametrize("text,expected", [("2:20", (2, 20)), ("1:3", (1, 3)),
                                           (" 3 : 9 ", (3, 9)), ((2, 6), (2, 6)),
                                           ([4, 10], (4, 10))])
def test_parse_k_range(text, expected):
    assert parse_k_range(text) == expected


@pytest.mark.parametrize("text", ["5:3", "3:4", "0:5", "-1:4", "a:b", "5", "", "2:5:7",
                                  "2-5", "2.5:6", (5, 3), (0, 4)])
def test_parse_k_range_errors(text):
    with pytest.raises(ConfigError, match="sweep.k_range"):
        parse_k_range(text)


@pytest.mark.parametrize("value", [(5,), (2, 5, 7), ("a", "b"), (2.5, 6), (True, 5)])
def test_parse_k_range_bad_sequences(value):
    with pytest.raises(InputError):
        parse_k_range(value)


@pytest.mark.parametrize("make, field, value", [
    (lambda: SweepConfig(k_range="5:6"), "sweep.k_range", "5:6"),
    (lambda: SweepConfig(method="dense"), "sweep.method", "dense"),
    (lambda: SweepConfig(max_iter=0), "sweep.max_iter", 0),
    (lambda: SelectionConfig(k=0), "selection.k", 0),
    (lambda: SelectionConfig(k="many"), "selection.k", "many"),
    (lambda: SelectionConfig(contrast=0.5), "selection.contrast", 0.5),
    (lambda: FitConfig(init="svd"), "fit.init", "svd"),
    (lambda: FitConfig(weighting="gauss"), "fit.weighting", "gauss"),
    (lambda: FitConfig(tol=-1.0), "fit.tol", -1.0),
    (lambda: FitConfig(ortho=float("nan")), "fit.ortho", float("nan")),
    (lambda: FitConfig(ortho="strong"), "fit.ortho", "strong"),
    (lambda: FitConfig(ortho=-0.1), "fit.ortho", -0.1),
    (lambda: FitConfig(l1_weights=-0.1), "fit.l1_weights", -0.1),
    (lambda: PreprocessConfig(bin=0), "preprocessing.bin", 0),
    (lambda: PreprocessConfig(crop=(1, 2, 3)), "preprocessing.crop", (1, 2, 3)),
    (lambda: PreprocessConfig(mask_radius=0), "preprocessing.mask_radius", 0),
    (lambda: PreprocessConfig(filter="median"), "preprocessing.filter", "median"),
    (lambda: PreprocessConfig(pca_rank=0), "preprocessing.pca_rank", 0),
    (lambda: DenoiseConfig(epochs=0), "preprocessing.denoise.epochs", 0),
    (lambda: ExecutionConfig(memory="lots"), "execution.memory", "lots"),
    (lambda: ExecutionConfig(memory="1MB"), "execution.memory", "1MB"),
    (lambda: ExecutionConfig(device="tpu"), "execution.device", "tpu"),
    (lambda: ExecutionConfig(workers=0), "execution.workers", 0),
    (lambda: ExecutionConfig(workers=2, scheduler="tcp://x:1"), "execution.scheduler",
     "tcp://x:1"),
    (lambda: MapsConfig(thresholds=(0.5, 1.5)), "maps.thresholds", (0.5, 1.5)),
    (lambda: AnalysisConfig(seed=-1), "seed", -1),
])
def test_every_field_is_checked_when_built(make, field, value):
    with pytest.raises(ConfigError) as err:
        make()
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}=")
    assert isinstance(err.value, ValueError)            # library users can catch ValueError
    if value == value:                                  # (not NaN)
        assert err.value.value == value


def test_frozen_and_normalised():
    c = AnalysisConfig.from_flat(k_range="3:9", crop=[0, 10, 0, 10], scale="none",
                                 thresholds=[0.8, 0.9], bin=2)
    assert c.sweep.k_range == (3, 9) and c.preprocessing.crop == (0, 10, 0, 10)
    assert c.preprocessing.scale is None and c.maps.thresholds == (0.8, 0.9)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.seed = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.sweep.method = "full"


def test_dict_round_trip_is_the_parameters_record():
    c = AnalysisConfig.from_flat(k=7, seed=4, bin=(2, 3), filter="pca", pca_rank=5,
                                 denoise_epochs=3, memory="2GB", ortho=0.0, sweep="full",
                                 thresholds=(0.6,), report=False, mask_radius=2.5,
                                 mask_centre=(10.0, 11.5))
    record = json.loads(json.dumps(c.to_dict()))       # as written to results.h5
    assert AnalysisConfig.from_dict(record) == c
    assert config_from_record(record) == c
    assert record["selection"]["k"] == 7 and record["preprocessing"]["denoise"]["epochs"] == 3


def test_flat_names_cover_every_leaf_field():
    def leaves(obj, prefix=""):
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if dataclasses.is_dataclass(v):
                yield from leaves(v, prefix + f.name + ".")
            else:
                yield prefix + f.name
    assert sorted(FLAT.values()) == sorted(leaves(AnalysisConfig()))
    c = AnalysisConfig()
    assert c.get("k_range") is c.sweep.k_range and c.get("fit.tol") == 1e-5
    assert c.replace(k=3).to_flat() == dict(c.to_flat(), k=3)
    with pytest.raises(ConfigError, match="not a setting"):
        c.replace(colour="red")


def test_legacy_flat_record():
    """Results files written before the configuration existed still give their settings."""
    old = {"k": "auto", "k_range": [2, 12], "k_range_requested": None, "seed": 3,
           "max_iter": 400, "tol": 1e-5, "sweep_tol": 1e-4, "sweep_max_iter": 200,
           "l1_weights": 0.0, "l1_components": 0.0, "ortho": 0.1, "sweep_ortho": 0.0,
           "init": "spa", "sweep": "full", "weighting": "none",
           "thresholds": [0.75, 0.8, 0.85, 0.9, 0.95],
           "criteria": {"min_cluster": None, "ssim_max": 0.75, "corr_max": 0.5,
                        "min_gain": 0.001}, "memory": None, "device": "cpu",
           "preprocessing": {"bin": 2, "crop": None, "centre_crop": None,
                             "mask_radius": None, "mask_centre": None, "filter": "pca",
                             "filter_options": {"rank": 4, "seed": 3}, "scale": None,
                             "normalise": None}}
    c = config_from_record(old)
    assert (c.seed, c.fit.max_iter, c.sweep.method, c.fit.weighting) == (3, 400, "full", "none")
    assert c.sweep.k_range == (2, 12) and c.preprocessing.bin == 2
    assert c.preprocessing.filter == "pca" and c.preprocessing.pca_rank == 4
    assert c.execution.device == "cpu"


def test_resolve_k():
    assert resolve_k(AnalysisConfig(), 400, 64) == ("auto", (2, 20))
    assert resolve_k(AnalysisConfig(), 10, 64) == ("auto", (2, 10))       # capped at the data
    assert resolve_k(AnalysisConfig.from_flat(k=5), 400) == (5, None)
    with pytest.raises(ConfigError, match=r"sweep.k_range=\(2, 30\): maximum 30 exceeds"):
        resolve_k(AnalysisConfig.from_flat(k_range=(2, 30)), 25, 64)
    with pytest.raises(ConfigError, match="selection.k=30: is out of range: allowed 1..25"):
        resolve_k(AnalysisConfig.from_flat(k=30), 25)
    with pytest.raises(ConfigError, match="too few to choose k automatically"):
        resolve_k(AnalysisConfig(), 3, 64)
    with pytest.raises(InputError):
        resolve_k(AnalysisConfig.from_flat(k=9), 100, 8)                   # 8 pixels


@pytest.mark.parametrize("flat, expected", [
    ({}, 0.0),                                   # nmf4d's decision: plain NMF
    ({"k": 5}, 0.1),                             # a given k: the penalty (ORTHO_GIVEN)
    ({"rule": "paper-iqa"}, 0.1),                # nmf4d 0.1's rule: as in 0.1
    ({"ortho": 0.25}, 0.25),                     # a number is used as given
    ({"ortho": 0.0, "k": 5}, 0.0),
])
def test_final_ortho_auto(flat, expected):
    from nmf4d.config import final_ortho
    from nmf4d.config.stages import ORTHO_GIVEN

    c = AnalysisConfig.from_flat(**flat)
    assert AnalysisConfig().fit.ortho == "auto"
    assert final_ortho(c.fit, c.selection) == expected
    assert ORTHO_GIVEN == 0.1


def test_ortho_auto_round_trips_through_the_record():
    from nmf4d.config import config_from_record

    c = AnalysisConfig.from_flat(ortho="auto", k=4)
    assert config_from_record(c.to_dict()) == c
