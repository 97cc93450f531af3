"""Shard reading: tensor format, disjoint reader splits, deterministic order, safe tar members,
and the two producers of shards (toy data, ``occsynth build``) read by the trainer."""

from __future__ import annotations

import io
import itertools
import tarfile

import pytest
import torch

from fdsgan_train.data import ShardStream, shard_paths, train_loader
from fdsgan_train.preflight import check_shards
from fdsgan_train.toy_data import write_toy_shards
from occlusion_synth.build import run_build
from occlusion_synth.errors import UserError
from occlusion_synth.shards import MEMBERS, ShardError
from occlusion_synth.verify import verify_dataset


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = write_toy_shards(tmp_path_factory.mktemp("toy"), {"train": 12, "val": 3}, shard_size=3)
    return shard_paths(out, "train")


def _keys(ds: ShardStream, n: int | None = None) -> list[str]:
    return [s["key"] for s in itertools.islice(iter(ds), n)]


def test_samples_have_the_documented_tensors(shards):
    assert len(shards) == 4 and check_shards(shards) == 12
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


def _copy_with(src_path, dst_path, extra):
    """Copy a shard member by member, then append ``extra`` ``(TarInfo, bytes)`` members."""
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(src_path) as src, tarfile.open(dst_path, "w") as dst:
        for m in src:
            dst.addfile(m, src.extractfile(m))
        for info, data in extra:
            dst.addfile(info, io.BytesIO(data))


def _member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


_NOT_PNG = [_member(f"zzz.{m}", b"x") for m in MEMBERS]


@pytest.mark.parametrize(
    "extra, problem",
    [
        ([_member("../evil.input.png", b"x")], r"train-000000\.tar: member '\.\./evil"),
        ([_member("zzz.input.png", b"x")], "sample 'zzz' lacks mask.png"),  # incomplete
        (_NOT_PNG, "sample 'zzz': "),  # complete, but not PNGs
    ],
)
def test_bad_shards_are_errors_not_skipped_samples(tmp_path, shards, extra, problem):
    bad = tmp_path / "shards" / "train-000000.tar"
    _copy_with(shards[0], bad, extra)
    with pytest.raises(ShardError, match=problem):
        _keys(ShardStream([bad], endless=False))


def test_preflight_refuses_unsafe_members(tmp_path, shards):
    bad = tmp_path / "shards" / "train-000000.tar"
    _copy_with(shards[0], bad, [_member("/abs.input.png", b"x")])
    with pytest.raises(UserError, match="absolute path"):
        check_shards([bad])


def test_toy_shards_pass_occsynth_verify(tmp_path):
    out = write_toy_shards(tmp_path / "toy", {"train": 3, "val": 2}, shard_size=2)
    report = verify_dataset(out)
    assert report.ok, report.problems
    assert report.splits == {"train": 3, "val": 2} and report.shards == 3


def test_loader_reads_an_occsynth_build(tmp_path, demo_build_options):
    out = tmp_path / "built"
    result = run_build(demo_build_options(out, tmp_path / "cache", n=8), progress=False)
    assert result.counts["train"] >= 2  # the demo build also makes val and test samples
    paths = shard_paths(out, "train")
    assert check_shards(paths) == result.counts["train"]
    cfg = {"seed": 0, "data": {"batch_size": 2, "num_workers": 0, "shuffle_buffer": 4}}
    batch = next(train_loader(paths, cfg, epoch=0, rank=0, world_size=1, pin_memory=False))
    assert len(batch["key"]) == 2
    inp, mask, target = batch["input"], batch["mask"], batch["target"]
    assert inp.shape == target.shape == (2, 3, 256, 256) and mask.shape == (2, 1, 256, 256)
    assert inp.dtype == target.dtype == mask.dtype == torch.float32
    for t in (inp, target):
        assert t.min() >= -1.0 and t.max() <= 1.0 and t.min() < -0.5 and t.max() > 0.5
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    outside = (mask == 0).expand_as(inp)
    assert torch.equal(inp[outside], target[outside])
    assert not torch.equal(inp, target)
