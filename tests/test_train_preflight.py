"""Every shard a run reads is checked from its headers before step 1; errors name the part."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from fdsgan_train.preflight import check_shard, check_shards
from fdsgan_train.toy_data import write_toy_shards
from occlusion_synth import shards
from occlusion_synth.errors import UserError


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    root = write_toy_shards(tmp_path_factory.mktemp("toy"), {"val": 2}, shard_size=2)
    return shards.list_shards(root, "val")[0]


def _members(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar]


def _rewrite(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _replace(ext: str, data: bytes):
    return lambda members: [(n, data if n.endswith(ext) else d) for n, d in members]


CASES = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:3000]), "is truncated"),
    "fifo": (lambda p: (p.unlink(), os.mkfifo(p)), "not a regular file"),
    "random bytes": (lambda p: p.write_bytes(os.urandom(4096)), "unreadable tar"),
    "missing member": (lambda p: _rewrite(p, _members(p)[1:]), "lacks input.png"),
    "repeated key": (lambda p: _rewrite(p, _members(p) + _members(p)[:4]), "appears twice"),
    "repeated member": (lambda p: _rewrite(p, _members(p)[:1] * 2), "appears twice"),
    "bad json": (
        lambda p: _rewrite(p, _replace(".json", b"{not json")(_members(p))),
        "its JSON does not decode",
    ),
    "wrong size": (
        lambda p: _rewrite(
            p, _replace(".mask.png", shards.encode_png(np.zeros((300, 256), np.uint8)))(_members(p))
        ),
        "is 256x300, expected 256x256",
    ),
    "rgb mask": (
        lambda p: _rewrite(
            p,
            _replace(".mask.png", shards.encode_png(np.zeros((256, 256, 3), np.uint8)))(
                _members(p)
            ),
        ),
        "expected 8-bit greyscale",
    ),
    "not a png": (
        lambda p: _rewrite(p, _replace(".input.png", b"GIF89a" * 10)(_members(p))),
        "is not a PNG",
    ),
}


def test_a_good_shard_counts_its_samples(good):
    assert check_shard(good) == 2 == shards.count_shard_samples(good)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_shards_are_refused_naming_shard_and_part(good, tmp_path, case):
    damage, message = CASES[case]
    path = tmp_path / good.name
    path.write_bytes(good.read_bytes())
    damage(path)
    with pytest.raises(UserError) as err:
        check_shards([path])
    assert err.value.message.startswith(f"--data: {path}: ") and message in err.value.message
