"""Shard reading: tensor format, disjoint reader splits, deterministic order, safe tar members."""

from __future__ import annotations

import io
import itertools
import tarfile

import pytest
import torch

from fdsgan_train.data import ShardStream, count_samples, shard_paths, train_loader
from fdsgan_train.toy_data import write_toy_shards


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = write_toy_shards(tmp_path_factory.mktemp("toy"), {"train": 12, "val": 3}, shard_size=3)
    return shard_paths(out, "train")


def _keys(ds: ShardStream, n: int | None = None) -> list[str]:
    return [s["key"] for s in itertools.islice(iter(ds), n)]


def test_samples_have_the_documented_tensors(shards):
    assert len(shards) == 4 and count_samples(shards) == 12
    sample = next(iter(ShardStream(shards, endless=False)))
    assert sample["input"].shape == (3, 256, 256) and sample["target"].shape == (3, 256, 256)
    assert sample["mask"].shape == (1, 256, 256)
    assert set(sample["mask"].unique().tolist()) == {0.0, 1.0}
    for k in ("input", "target"):
        assert sample[k].dtype == torch.float32
        assert -1.0 <= sample[k].min() and sample[k].max() <= 1.0
    outside = sample["mask"][0] == 0
    assert torch.equal(sample["input"][:, outside], sample["target"][:, outside])
    assert not torch.equal(sample["input"], sample["target"])


@pytest.mark.parametrize("world", [2, 3, 6])  # 4 shards: shard-level split (2, 3), samples (6)
def test_readers_get_disjoint_parts_that_cover_the_split(shards, world):
    parts = [
        set(_keys(ShardStream(shards, rank=r, world_size=world, endless=False)))
        for r in range(world)
    ]
    assert all(parts)
    assert sum(len(p) for p in parts) == 12
    assert set().union(*parts) == set(_keys(ShardStream(shards, endless=False)))


def test_order_is_a_function_of_seed_and_epoch(shards):
    def first(seed, epoch):
        return _keys(ShardStream(shards, seed, epoch, shuffle_buffer=4), 13)

    assert first(0, 0) == first(0, 0)
    assert first(0, 0) != first(0, 1) and first(0, 0) != first(1, 0)
    one_pass = first(0, 0)[:12]
    assert sorted(one_pass) == sorted(_keys(ShardStream(shards, endless=False)))


def test_skipping_batches_resumes_the_same_order(shards):
    cfg = {"seed": 3, "data": {"batch_size": 2, "num_workers": 0, "shuffle_buffer": 4}}
    full = train_loader(shards, cfg, epoch=1, rank=0, world_size=1, pin_memory=False)
    expected = [next(full)["key"] for _ in range(5)][2:]
    resumed = train_loader(shards, cfg, epoch=1, rank=0, world_size=1, pin_memory=False, skip=2)
    assert [next(resumed)["key"] for _ in range(3)] == expected


def test_worker_processes_split_the_data(shards):
    cfg = {"seed": 0, "data": {"batch_size": 1, "num_workers": 2, "shuffle_buffer": 0}}
    it = train_loader(shards, cfg, epoch=0, rank=0, world_size=1, pin_memory=False)
    keys = [next(it)["key"][0] for _ in range(12)]
    assert sorted(keys) == sorted(_keys(ShardStream(shards, endless=False)))


def test_unsafe_and_incomplete_members_are_ignored(tmp_path, shards):
    bad = tmp_path / "shards" / "train-000000.tar"
    bad.parent.mkdir()
    with tarfile.open(shards[0]) as src, tarfile.open(bad, "w") as dst:
        for m in src:
            data = src.extractfile(m).read()
            for name in (m.name, f"../{m.name}", f"sub/{m.name}"):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                dst.addfile(info, io.BytesIO(data))
        lonely = tarfile.TarInfo("zzz.input.png")  # no mask/target: not a sample
        lonely.size = 1
        dst.addfile(lonely, io.BytesIO(b"x"))
    assert _keys(ShardStream([bad], endless=False)) == _keys(ShardStream(shards[:1], endless=False))
    assert count_samples([bad]) == 4  # counts the safe .input.png headers only
