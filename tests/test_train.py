"""The training loop end to end on tiny shards: resume equivalence, NaN stop, torchrun, logs."""

from __future__ import annotations

import json
import os
import shutil
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
from fdsgan_train.train import LOSS_KEYS, LossWatch, Trainer, TrainingDiverged, predict
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


@pytest.fixture(scope="module")
def one_step(data, micro, tmp_path_factory) -> Path:
    """A run folder after one step (copy it before resuming)."""
    run = tmp_path_factory.mktemp("one") / "run"
    assert _train(data, run, micro, "--max-steps", "1").exit_code == 0
    return run


@pytest.fixture
def run(one_step, tmp_path) -> Path:
    """A private copy of the one-step run."""
    return Path(shutil.copytree(one_step, tmp_path / "run"))


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
    assert f"saved {straight / 'checkpoints' / 'last.pt'} (step 4)" in r.output.splitlines()
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


def test_nan_loss_stops_with_its_own_exit_code(data, micro, tmp_path):
    # G's first update makes its weights huge: step 2's losses overflow. Nothing is due at
    # step 2, so the loss check runs at step 3, on the device-side record of step 2.
    run = tmp_path / "run"
    r = _train(data, run, micro, "--max-steps", "3", "--set", "optim.lr_g=1e30",
               "--set", "train.log_every=5", "--set", "train.sample_every=5")  # fmt: skip
    assert r.exit_code == 3, r.output
    assert "s2/total is not finite at step 2; stopped at step 3" in r.output
    assert "No checkpoint was saved." in r.output
    assert not (run / "checkpoints" / "last.pt").exists()
    assert isinstance(r.exception, SystemExit) and "Traceback" not in r.output
    assert not issubclass(TrainingDiverged, UserError)


def test_nan_weights_never_replace_the_last_good_checkpoint(data, micro, run, monkeypatch):
    good = load_checkpoint(run / "checkpoints" / "last.pt")
    step = Trainer.step

    def poisoned(self, batch, index=None):  # an update that leaves finite losses, NaN weights
        out = step(self, batch, index)
        with torch.no_grad():
            self.nets["G2"].encoder[0][0].weight.fill_(float("nan"))
        return out

    monkeypatch.setattr(Trainer, "step", poisoned)
    r = _train(data, run, micro, "--max-steps", "2", "--resume")
    assert r.exit_code == 3, r.output
    last = run / "checkpoints" / "last.pt"
    assert "are not finite after step 2; stopped without saving" in r.output
    assert f"The last good checkpoint is {last} (step 1)." in r.output
    after = load_checkpoint(last)
    assert after["step"] == 1
    assert torch.equal(
        after["models"]["G2"]["encoder.0.0.weight"], good["models"]["G2"]["encoder.0.0.weight"]
    )


def test_resume_applies_optimiser_overrides(data, micro, run):
    r = _train(data, run, micro, "--max-steps", "2", "--resume",
               "--set", "optim.lr_g=3e-4", "--set", "optim.betas=[0.0, 0.99]")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "resume: optim.lr_g 0.0001 -> 0.0003" in r.output
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    groups = {k: o["param_groups"][0] for k, o in ckpt["optimizers"].items()}
    assert groups["G1"]["lr"] == groups["G2"]["lr"] == 3e-4
    assert groups["D1"]["lr"] == 4e-4 and groups["D1"]["betas"] == (0.0, 0.99)
    assert ckpt["config"]["optim"]["lr_g"] == 3e-4


def test_resume_with_another_model_names_what_differs(data, micro, run):
    r = _train(data, run, micro, "--max-steps", "2", "--resume", "--set", "model.n_down=4")
    assert r.exit_code == 2
    error = r.output.splitlines()[-1]
    assert error.startswith("Error: --resume: ") and "does not fit the config" in error
    assert "model.n_down 5 in the checkpoint, 4 here" in error
    assert "; G1: " in error and "keys only in the checkpoint (e.g. encoder.4.0.weight)" in error


def test_bad_counts_are_refused_on_the_command_line(data, micro, tmp_path):
    for flag, value in (("--max-steps", "-5"), ("--epochs", "0"), ("--batch-size", "0")):
        r = _train(data, tmp_path / "r", micro, flag, value)
        assert r.exit_code == 2 and f"Invalid value for '{flag}'" in r.output
    assert not (tmp_path / "r").exists()
    r = CliRunner().invoke(train_main, ["--help"])
    assert "3 training diverged" in r.output


def test_a_killed_checkpoint_write_is_cleaned_up(data, micro, tmp_path):
    stale = tmp_path / "run" / "checkpoints" / ".last.pt.tmp-999999999"  # no such process
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a checkpoint")
    assert _train(data, tmp_path / "run", micro, "--max-steps", "1").exit_code == 0
    assert sorted(p.name for p in stale.parent.iterdir()) == ["last.pt"]


def test_losses_reach_the_host_only_when_an_action_is_due(data, micro, tmp_path, monkeypatch):
    reads = []
    first_bad = LossWatch.first_bad
    monkeypatch.setattr(
        LossWatch, "first_bad", lambda self, d: reads.append(1) or first_bad(self, d)
    )
    fetched = []
    tolist = torch.Tensor.tolist

    def spy(self):
        if self.shape == (len(LOSS_KEYS),) and self.dtype == torch.float32:
            fetched.append(1)
        return tolist(self)

    monkeypatch.setattr(torch.Tensor, "tolist", spy)
    run = tmp_path / "run"
    r = _train(data, run, micro, "--max-steps", "3",
               "--set", "train.log_every=3", "--set", "train.sample_every=5")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert len(reads) == 1 and len(fetched) == 1  # step 3 only: log, checkpoint, validation
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if x["kind"] == "train"] == [3]


def test_a_corrupt_val_shard_stops_the_run_before_step_1(data, micro, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    val = copy / "shards" / "val-000000.tar"
    val.write_bytes(val.read_bytes()[:1500])  # cut inside the first member
    r = _train(copy, tmp_path / "run", micro)
    assert r.exit_code == 2
    assert r.output.startswith(f"Error: --data: {val}: ") and "truncated" in r.output
    assert not (tmp_path / "run").exists()


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
    assert "cannot read checkpoint" in err.value.message
    assert "\n" not in err.value.message


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
