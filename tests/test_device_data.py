"""data.on_device: the split held as uint8 on the device gives the streaming path's tensors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from test_train import MICRO, _train

from fdsgan_train.config import load_config
from fdsgan_train.data import eval_loader, shard_paths
from fdsgan_train.device_data import (
    device_batches,
    epoch_order,
    load_device_dataset,
    resolve_on_device,
)
from fdsgan_train.toy_data import write_toy_shards
from occlusion_synth.errors import UserError


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return write_toy_shards(tmp_path_factory.mktemp("toy"), {"train": 6, "val": 2}, shard_size=4)


def test_device_dataset_yields_the_streaming_tensors(toy):
    paths = shard_paths(toy, "train")
    held = load_device_dataset(paths, torch.device("cpu"))
    assert len(held) == 6 and held.input.dtype == held.target.dtype == torch.uint8
    assert held.nbytes == 6 * 256 * 256 * 7
    regular = list(eval_loader(paths, 6, 0, 1, 0, False))[0]  # shard order, unshuffled
    ours = held.batch(torch.arange(6))
    for key in ("input", "mask", "target"):
        assert ours[key].dtype == regular[key].dtype == torch.float32
        assert torch.equal(ours[key], regular[key]), key
    picked = held.batch(torch.tensor([4, 1]))
    assert torch.equal(picked["input"], regular["input"][[4, 1]])


def test_epoch_order_splits_a_seeded_permutation_across_ranks():
    parts = [epoch_order(10, 0, 3, r, 2) for r in range(2)]
    assert sorted(torch.cat(parts).tolist()) == list(range(10))
    assert torch.equal(epoch_order(10, 0, 3, 0, 2), parts[0])  # a function of (seed, epoch)
    assert not torch.equal(epoch_order(10, 0, 4, 0, 1), epoch_order(10, 0, 3, 0, 1))


def test_device_batches_skip_exactly(toy):
    held = load_device_dataset(shard_paths(toy, "train"), torch.device("cpu"))
    cfg = {"seed": 0, "data": {"batch_size": 2}}
    it = device_batches(held, cfg, 0, 0, 1)
    straight = [next(it) for _ in range(4)]  # 3 batches of epoch 0, then the next pass
    it = device_batches(held, cfg, 0, 0, 1, skip=2)
    resumed = [next(it) for _ in range(2)]
    for a, b in zip(straight[2:], resumed, strict=True):
        assert torch.equal(a["target"], b["target"])
    seen = torch.cat([b["target"] for b in straight[:3]])
    assert len({tuple(t.flatten()[::997].tolist()) for t in seen}) == 6  # every sample once


def test_resolve_on_device():
    cpu = torch.device("cpu")
    assert resolve_on_device(False, cpu, 10) is False
    assert resolve_on_device(True, cpu, 10) is True
    assert resolve_on_device("auto", cpu, 10) is False  # auto: CUDA only


def test_on_device_config_key():
    assert load_config("paper")["data"]["on_device"] is False
    assert load_config("fast")["data"]["on_device"] == "auto"
    assert load_config("paper", {"data.on_device": True})["data"]["on_device"] is True
    with pytest.raises(UserError, match="data.on_device must be one of auto, true, false"):
        load_config("paper", {"data.on_device": "gpu"})


def test_training_from_the_device_dataset(toy, tmp_path):
    cfg = tmp_path / "micro.yaml"
    cfg.write_text(yaml.safe_dump(MICRO | {"data": MICRO["data"] | {"on_device": True}}))
    result = _train(toy, tmp_path / "run", cfg, "--max-steps", "4")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "checkpoints" / "last.pt").exists()
