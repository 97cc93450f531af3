"""The training loop end to end on tiny shards: resume equivalence, NaN stop, torchrun, logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from fdsgan_train.checkpoint import load_checkpoint, load_generators
from fdsgan_train.cli import train_main
from fdsgan_train.toy_data import write_toy_shards
from fdsgan_train.train import predict
from occlusion_synth.errors import UserError

MICRO = {  # the tiny preset, smaller still: seconds per run on a CPU
    "base": "tiny",
    "model": {
        "base_channels": 4,
        "max_channels": 16,
        "middle_dilations": [2],
        "se_reduction": 2,
        "disc_base_channels": 4,
    },
    "loss": {
        "perceptual": {"layers": ["relu1_1", "relu2_1"], "input_size": 32, "random_weights": True}
    },
    "data": {"batch_size": 2, "shuffle_buffer": 4},
    "train": {"log_every": 1, "sample_every": 2, "checkpoint_every": 100},
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    # 6 train samples in 3 shards: 3 steps per epoch at batch 2
    return write_toy_shards(tmp_path_factory.mktemp("toy"), {"train": 6, "val": 2}, shard_size=2)


@pytest.fixture(scope="module")
def micro(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "micro.yaml"
    path.write_text(yaml.safe_dump(MICRO))
    return path


def _train(data: Path, run: Path, micro: Path, *args: str):
    """Run fdsgan-train in-process; a resumed run takes its config from the run folder."""
    config = [] if "--resume" in args else ["--config", str(micro)]
    argv = ["--data", str(data), "--run-dir", str(run), *config, "--device", "cpu", *args]
    return CliRunner().invoke(train_main, argv)


def _tensors(ckpt: dict) -> dict[str, torch.Tensor]:
    flat = {}
    for group in ("models", "optimizers"):
        for net, state in ckpt[group].items():
            items = (
                state.items()
                if group == "models"
                else ((f"{i}.{k}", v) for i, s in state["state"].items() for k, v in s.items())
            )
            flat |= {f"{group}.{net}.{k}": v for k, v in items if torch.is_tensor(v)}
    return flat


def test_resume_continues_exactly(data, micro, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    r = _train(data, straight, micro, "--max-steps", "4")
    assert r.exit_code == 0, r.output
    r = _train(data, resumed, micro, "--max-steps", "2")  # interrupted mid-epoch
    assert r.exit_code == 0, r.output
    half = load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert half["step"] == 2
    r = _train(data, resumed, micro, "--max-steps", "4", "--resume")
    assert r.exit_code == 0, r.output

    a = load_checkpoint(straight / "checkpoints" / "last.pt")
    b = load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 4 and (a["epoch"], a["batch_in_epoch"]) == (1, 1)
    ta, tb = _tensors(a), _tensors(b)
    assert ta.keys() == tb.keys() and len(ta) > 50
    assert [k for k in ta if not torch.equal(ta[k], tb[k])] == []
    th = _tensors(half)  # and training did move every network
    for net in ("G1", "G2", "D1", "D2"):
        key = f"models.{net}.{'encoder.0.0' if net[0] == 'G' else 'net.0'}.weight"
        assert not torch.equal(th[key], ta[key])

    # logs: config, metrics lines per step, a validation line per epoch, sample grids
    assert yaml.safe_load((straight / "config.yaml").read_text())["model"]["base_channels"] == 4
    lines = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if x["kind"] == "train"] == [1, 2, 3, 4]
    val = [x for x in lines if x["kind"] == "val"]
    assert [x["step"] for x in val] == [3, 4] and val[-1]["n"] == 2  # each epoch and the end
    assert {"psnr_composite", "psnr_input", "ssim_composite", "ssim_input"} <= val[-1].keys()
    assert sorted(p.name for p in (straight / "samples").iterdir()) == [
        "step-0000002.png",
        "step-0000004.png",
    ]
    assert any((straight / "tb").iterdir())

    # the generators load for evaluation / inference
    g1, g2, cfg = load_generators(straight / "checkpoints" / "last.pt", "cpu")
    assert cfg["model"]["base_channels"] == 4 and not g1.training
    s1, s2 = predict(g1, g2, torch.zeros(1, 3, 256, 256), torch.ones(1, 1, 256, 256))
    assert s1.shape == s2.shape == (1, 3, 256, 256)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(data, micro, tmp_path):
    run = tmp_path / "run"
    assert _train(data, run, micro, "--max-steps", "1").exit_code == 0
    good = load_checkpoint(run / "checkpoints" / "last.pt")
    r = _train(data, run, micro, "--max-steps", "3", "--resume", "--set", "loss.stage2.alpha=.nan")
    assert r.exit_code == 2
    assert "not finite at step 2" in r.output and "s2/total" in r.output
    assert str(run / "checkpoints" / "last.pt") in r.output
    after = load_checkpoint(run / "checkpoints" / "last.pt")
    assert after["step"] == 1
    assert torch.equal(
        after["models"]["G1"]["encoder.0.0.weight"], good["models"]["G1"]["encoder.0.0.weight"]
    )


def test_user_errors_are_one_line(data, micro, tmp_path):
    r = _train(
        data,
        tmp_path / "r",
        micro,
        "--vgg-weights",
        str(tmp_path / "vgg.pth"),
        "--set",
        "loss.perceptual.random_weights=false",
    )
    assert r.exit_code == 2 and "VGG-19 ImageNet weights not found" in r.output
    assert "--vgg-weights" in r.output
    r = _train(tmp_path / "missing", tmp_path / "r", micro)
    assert r.exit_code == 2 and "does not exist" in r.output
    r = _train(data, tmp_path / "r", micro, "--set", "model.widht=3")
    assert r.exit_code == 2 and "unknown config key 'model.widht'" in r.output
    r = CliRunner().invoke(
        train_main,
        ["--data", str(data), "--run-dir", str(tmp_path / "r"), "--resume", "--config", "tiny"],
    )
    assert r.exit_code == 2 and "drop --config" in r.output


def test_torchrun_two_cpu_ranks_write_one_set_of_logs(data, micro, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "fdsgan_train.cli",
        "--data",
        str(data),
        "--run-dir",
        str(run),
        "--config",
        str(micro),
        "--device",
        "cpu",
        "--max-steps",
        "2",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["step"] == 2 and ckpt["epoch"] == 2  # 6 samples // (2 ranks x 2) = 1 step/epoch
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if x["kind"] == "train"] == [1, 2]  # rank 0 only
    assert [x["n"] for x in lines if x["kind"] == "val"] == [2.0, 2.0]  # summed over ranks
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt"]
    assert len(list((run / "tb").iterdir())) == 1


def test_unreadable_checkpoint_is_a_one_line_error(tmp_path):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError) as err:
        load_generators(bad)
    assert "cannot read checkpoint" in err.value.format_message()
    assert "\n" not in err.value.format_message()


def test_missing_val_split_is_announced_and_logged(micro, tmp_path):
    only_train = write_toy_shards(tmp_path / "toy", {"train": 2}, shard_size=2)
    run = tmp_path / "run"
    r = _train(only_train, run, micro, "--max-steps", "1")
    assert r.exit_code == 0, r.output
    assert f"no val split in {only_train}: validation skipped" in r.output
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    notes = [x for x in lines if x["kind"] == "warning"]
    assert len(notes) == 1 and "no val split" in notes[0]["message"]
    assert not [x for x in lines if x["kind"] == "val"]
