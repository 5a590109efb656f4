"""params.yaml: the shipped file is valid, and every wrong value is refused with the key named."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from lablib.experiments.config import load_experiments, preset_run, series_rows
from lablib.params import ParamsError, load_params, parse_params
from lablib.report.series_inputs import with_overrides

REPO = Path(__file__).resolve().parents[1]
RAW = yaml.safe_load((REPO / "params.yaml").read_text())


def with_change(dotted: str, value) -> dict:
    return with_overrides(RAW, {dotted: value})


def test_shipped_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert params.train.model in ("lab2025_cnn", "lab2023_cnn")
    assert params.train_for("numpy") == params.train


def test_torch_overrides_apply_to_torch_only():
    raw = with_change("torch.lr", 0.001)
    raw["torch"]["batch_size"] = 500
    params = parse_params(raw)
    assert params.train_for("torch").lr == 0.001
    assert params.train_for("torch").batch_size == 500
    assert params.train_for("numpy").lr == RAW["lr"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("optimizer", "adamm", "optimizer must be one of sgd, adam, adamw; got 'adamm'"),
        ("lr", -0.1, "lr must be a number > 0; got -0.1"),
        ("lr", "fast", "lr must be a number > 0"),
        ("epochs", 0, "epochs must be an integer >= 1"),
        ("batch_size", 2.5, "batch_size must be an integer"),
        ("data.kfold", 1, "data.kfold must be an integer in 2..6000"),
        ("data.subset", 5, "data.subset must be an integer in 10..60000 or null"),
        ("model", "resnet", "model must be one of lab2025_cnn, lab2023_cnn"),
        ("init", "xavier", "init must be one of pytorch, normal_fan_in"),
        ("schedule.name", "exp", "schedule.name must be one of constant, step, multistep, cosine, onecycle"),
        ("schedule.milestones", [20, 10], "schedule.milestones must be increasing"),
        ("validation", "loo", "validation must be one of holdout, kfold, rotating"),
        ("sampling", "random", "sampling must be one of balanced, shuffle, sequential"),
        ("betas", [0.9], "betas must be two numbers"),
        ("center_loss.alpha", 2, "center_loss.alpha must be a number in 0.0..1.0"),
        ("torch.device", "tpu", "torch.device must be one of auto, cpu, cuda"),
        ("augment.shift", -1, "augment.shift"),
    ],
)
def test_bad_value_names_key_and_allowed_values(key, value, message):
    with pytest.raises(ParamsError, match=r"params\.yaml") as error:
        parse_params(with_change(key, value))
    assert message in str(error.value)


def test_balanced_sampling_needs_one_image_per_class():
    raw = with_change("batch_size", 5)
    with pytest.raises(ParamsError, match="batch_size must be at least 10 with sampling: balanced"):
        parse_params(raw)


def test_unknown_and_missing_keys_are_named():
    raw = copy.deepcopy(RAW)
    raw["schedule"]["stepsize"] = 3
    with pytest.raises(ParamsError, match=r"unknown key schedule\.stepsize"):
        parse_params(raw)
    raw = copy.deepcopy(RAW)
    del raw["lr"]
    with pytest.raises(ParamsError, match="lr is missing"):
        parse_params(raw)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("lr: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")


def test_a_misspelt_key_is_named_before_the_key_it_replaced():
    raw = copy.deepcopy(RAW)
    raw["lerning_rate"] = raw.pop("lr")
    with pytest.raises(ParamsError, match=r"unknown key lerning_rate; known keys here: .*\blr\b"):
        parse_params(raw)
    raw = copy.deepcopy(RAW)
    raw["schedule"]["gama"] = raw["schedule"].pop("gamma")
    with pytest.raises(ParamsError, match=r"unknown key schedule\.gama"):
        parse_params(raw)


@pytest.mark.parametrize("seed", [-1, 2**32, True])
def test_seed_fits_the_random_streams(seed):
    with pytest.raises(ParamsError, match=r"seed must be an integer in 0\.\.4294967295"):
        parse_params(with_change("seed", seed))


def test_every_preset_and_series_row_of_experiments_yaml_is_valid():
    config = load_experiments(REPO / "experiments.yaml")
    for preset in config["presets"]:
        for quick in (False, True):
            overrides, _ = preset_run(config, preset, quick)
            parse_params(with_overrides(RAW, overrides))
    for series in config["series"]:
        for row in series_rows(config, series, quick=False):
            parse_params(with_overrides(RAW, row.settings))
