"""Checkpoint loading refuses bad files in one line and trusts nothing inside them."""

from __future__ import annotations

import datetime
import os

import pytest
import torch

from fdsgan_train import models
from fdsgan_train.checkpoint import (
    load_checkpoint,
    load_generators,
    nonfinite,
    remove_stale_temps,
    save_checkpoint,
)
from occlusion_synth.errors import UserError


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("true",))


def _refusal(path) -> str:
    with pytest.raises(UserError) as err:
        load_checkpoint(path)
    message = err.value.message
    assert "\n" not in message and "weights_only" not in message
    return message


def test_unreadable_files_say_what_was_refused(tmp_path):
    random_bytes, empty, cut = tmp_path / "r.pt", tmp_path / "e.pt", tmp_path / "c.pt"
    random_bytes.write_bytes(bytes(range(256)) * 4)
    empty.write_bytes(b"")
    torch.save({"x": torch.zeros(3)}, cut)
    cut.write_bytes(cut.read_bytes()[:200])
    assert _refusal(random_bytes).endswith(": not a PyTorch checkpoint")
    assert _refusal(empty).endswith(": the file is empty")
    assert "damaged" in _refusal(cut)
    for name, obj, needs in (
        ("code.pt", _RunsCode(), "system"),
        ("date.pt", datetime.date(2020, 1, 1), "datetime.date"),
    ):
        torch.save({"x": obj}, tmp_path / name)
        message = _refusal(tmp_path / name)
        assert message.startswith(f"cannot read checkpoint {tmp_path / name}: refused:")
        assert needs in message


def test_a_crafted_config_is_refused_before_any_network_is_built(
    tiny_checkpoint, tmp_path, monkeypatch
):
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    ckpt["config"]["model"]["base_channels"] = 4096
    crafted = tmp_path / "crafted.pt"
    torch.save(ckpt, crafted)
    built = []
    monkeypatch.setattr(models, "build_models", lambda cfg: built.append(cfg))
    with pytest.raises(UserError) as err:
        load_generators(crafted)
    assert err.value.message == (
        f"checkpoint {crafted}: config: model.base_channels must be an integer in [1, 256] "
        "(got 4096)"
    )
    assert built == []


def test_weights_must_fit_and_be_finite(tiny_checkpoint, tmp_path):
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    ckpt["models"]["G2"]["encoder.0.0.weight"] = ckpt["models"]["G2"]["encoder.0.0.weight"][:1]
    path = tmp_path / "shapes.pt"
    torch.save(ckpt, path)
    with pytest.raises(UserError, match=r"does not fit its own config: G2: 1 shapes differ"):
        load_generators(path)
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    ckpt["models"]["G1"]["encoder.0.0.bias"][0] = float("inf")
    torch.save(ckpt, path)
    with pytest.raises(UserError, match=r"NaN or infinite weights \(1 tensors, e.g. G1.enc"):
        load_generators(path)


def test_nonfinite_names_the_tensors():
    tree = {"a": {"w": torch.ones(2), "n": torch.tensor([0.0, float("nan")])}, "i": torch.ones(2)}
    assert nonfinite(tree) == ["a.n"] and nonfinite({}) == []


def test_stale_temps_of_dead_writers_are_removed(tmp_path):
    dead = tmp_path / ".last.pt.tmp-999999999"  # above Linux's pid_max: no such process
    live = tmp_path / f".last.pt.tmp-{os.getppid()}"  # a live process: its write goes on
    for p in (dead, live):
        p.write_bytes(b"partial")
    save_checkpoint(tmp_path / "last.pt", {"step": 1})
    assert remove_stale_temps(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["last.pt", live.name])
    assert remove_stale_temps(tmp_path / "missing") == []
