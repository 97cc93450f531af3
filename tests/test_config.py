"""Config loading: values coerced to their key's type, every problem reported in one line."""

from __future__ import annotations

import pytest
import yaml

from fdsgan_train.config import PRESETS_DIR, SCHEMA, _flatten, load_config, parse_set, validate
from occlusion_synth.errors import UserError


def test_every_preset_key_has_a_check():
    paper = yaml.safe_load((PRESETS_DIR / "paper.yaml").read_text())
    assert set(_flatten(paper)) == set(SCHEMA)
    assert validate(load_config("paper")) == load_config("paper")


def test_overrides_take_the_type_of_the_key_they_replace():
    sets = ["optim.lr_g=2e-4", "optim.betas=[0, 0.9]", "train.max_steps=1e3", "loss.gan=lsgan"]
    cfg = load_config("tiny", dict(parse_set(s) for s in sets))
    assert parse_set("optim.lr_g=2e-4")[1] == "2e-4"  # YAML 1.1: no dot, so a string
    assert cfg["optim"]["lr_g"] == 2e-4 and isinstance(cfg["optim"]["lr_g"], float)
    assert cfg["optim"]["betas"] == [0.0, 0.9] and isinstance(cfg["optim"]["betas"][0], float)
    assert cfg["train"]["max_steps"] == 1000 and isinstance(cfg["train"]["max_steps"], int)


def test_yaml_file_values_are_coerced(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("base: tiny\noptim:\n  lr_g: 1e-4\n  lr_d: 4e-4\ntrain:\n  epochs: 2\n")
    cfg = load_config(str(path))
    assert cfg["optim"]["lr_g"] == 1e-4 and isinstance(cfg["optim"]["lr_d"], float)


BAD = [
    ("data.batch_size", "abc", "data.batch_size must be an integer in [1, 4096] (got 'abc')"),
    ("data.batch_size", 0, "data.batch_size must be an integer in [1, 4096] (got 0)"),
    ("optim.betas", 5, "optim.betas must be a list of 2 numbers in [0, 1) (got 5)"),
    ("optim.betas", [0.5, 1.0], "optim.betas must be a list of 2 numbers in [0, 1)"),
    ("optim.lr_g", -1, "optim.lr_g must be a finite number > 0.0 (got -1)"),
    ("optim.lr_d", ".nan", "optim.lr_d must be a finite number > 0.0"),
    ("model.n_down", 12, "model.n_down must be an integer in [1, 7] (got 12)"),
    ("model.base_channels", 4096, "model.base_channels must be an integer in [1, 256]"),
    ("train.max_steps", "abc", "train.max_steps must be an integer >= 1 or null (got 'abc')"),
    ("train.epochs", 0, "train.epochs must be an integer >= 1 (got 0)"),
    ("train.amp", 1, "train.amp must be one of auto, true, false (got 1)"),
    ("train.compile", "yes", "train.compile must be true or false (got 'yes')"),
    ("loss.stage2.alpha", float("nan"), "loss.stage2.alpha must be a finite number >= 0.0"),
    ("loss.gan", "wgan", "loss.gan must be one of bce, lsgan (got 'wgan')"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD, ids=[f"{k}={v}" for k, v, _ in BAD])
def test_bad_values_are_refused(key, value, message):
    with pytest.raises(UserError) as err:
        load_config("tiny", {key: value})
    assert message in err.value.message and "\n" not in err.value.message


def test_all_problems_in_one_error():
    with pytest.raises(UserError) as err:
        load_config("tiny", {"data.batch_size": "abc", "optim.lr_g": -1, "model.n_down": 12})
    problems = err.value.message.removeprefix("config: ").split("; ")
    assert [p.split()[0] for p in problems] == ["model.n_down", "optim.lr_g", "data.batch_size"]


def test_a_checkpoint_config_must_be_complete_and_known():
    cfg = load_config("tiny")
    del cfg["optim"]["lr_d"]
    cfg["model"]["width"] = 3
    with pytest.raises(UserError) as err:
        validate(cfg, "checkpoint x.pt: config")
    message = err.value.message
    assert message.startswith("checkpoint x.pt: config: unknown key model.width")
    assert "missing key optim.lr_d" in message
    with pytest.raises(UserError, match="must be a mapping"):
        validate([1, 2])
