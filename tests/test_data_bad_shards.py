"""Malicious or damaged shards and shard files: refused before decoding, in one line that
names the shard and the key, by the trainer's loader and by ``fdsgan-eval``."""

from __future__ import annotations

import io
import os
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from fdsgan_train.data import ShardStream, shard_paths, train_loader
from fdsgan_train.toy_data import write_toy_shards
from occlusion_synth.errors import UserError
from occlusion_synth.shards import ShardError, encode_png


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A toy dataset with one train shard of two samples."""
    out = write_toy_shards(tmp_path_factory.mktemp("toy"), {"train": 2, "test": 2}, shard_size=2)
    return shard_paths(out, "train")[0]


def png_header(width: int, height: int, colour: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and whose data is a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _with_member(src: Path, dst: Path, suffix: str, data: bytes) -> str:
    """Copy shard ``src`` to ``dst`` with the first sample's ``<key>.<suffix>`` replaced;
    returns that key."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        members = tin.getmembers()
        key = members[0].name.split(".", 1)[0]
        for m in members:
            payload = tin.extractfile(m).read()
            if m.name == f"{key}.{suffix}":
                payload = data
            info = tarfile.TarInfo(m.name)
            info.size = len(payload)
            tout.addfile(info, io.BytesIO(payload))
    return key


BAD_MEMBERS = {
    "bomb-30000": ("input.png", png_header(30000, 30000, 2), "input.png is 30000x30000"),
    "bomb-12000": ("mask.png", png_header(12000, 12000, 0), "mask.png is 12000x12000"),
    "mask-128": ("mask.png", encode_png(np.zeros((128, 128), np.uint8)), "mask.png is 128x128"),
    "mask-rgb": (
        "mask.png",
        encode_png(np.zeros((256, 256, 3), np.uint8)),
        "mask.png has bit depth 8 and colour type 2, expected 8-bit greyscale",
    ),
    "jpeg": ("target.png", b"\xff\xd8\xff\xe0" + b"\0" * 40, "target.png is not a PNG"),
    "json": ("json", b"\xff{not json", "cannot decode"),
}


@pytest.mark.parametrize("case", list(BAD_MEMBERS), ids=list(BAD_MEMBERS))
def test_bad_members_are_refused_naming_shard_and_key(good, tmp_path, case):
    suffix, data, problem = BAD_MEMBERS[case]
    bad = tmp_path / "shards" / "train-000000.tar"
    key = _with_member(good, bad, suffix, data)
    with pytest.raises(ShardError) as err:
        list(ShardStream([bad], endless=False))
    message = str(err.value)
    assert f"{bad}: sample {key!r}: " in message and problem in message
    assert len(message.splitlines()) == 1


def test_a_worker_process_error_ends_as_one_line(good, tmp_path):
    bad = tmp_path / "shards" / "train-000000.tar"
    key = _with_member(good, bad, "mask.png", BAD_MEMBERS["bomb-30000"][1])
    cfg = {"seed": 0, "data": {"batch_size": 1, "num_workers": 1, "shuffle_buffer": 0}}
    with pytest.raises(UserError) as err:
        next(train_loader([bad], cfg, epoch=0, rank=0, world_size=1, pin_memory=False))
    assert err.value.message == (
        f"--data: {bad}: sample {key!r}: mask.png is 30000x30000, expected 256x256"
    )


@pytest.mark.parametrize("kind", ["fifo", "folder", "broken-link"])
def test_files_named_like_shards_must_be_regular_files(good, tmp_path, kind):
    folder = tmp_path / "shards"
    folder.mkdir()
    (folder / "train-000000.tar").write_bytes(good.read_bytes())
    odd = folder / "train-000001.tar"
    if kind == "fifo":
        os.mkfifo(odd)
    elif kind == "folder":
        odd.mkdir()
    else:
        odd.symlink_to(tmp_path / "missing.tar")
    with pytest.raises(UserError, match="train-000001.tar is not a regular file"):
        shard_paths(tmp_path, "train")


def test_eval_refuses_a_bomb_in_one_line(good, tmp_path, tiny_checkpoint, run_cli):
    from fdsgan_train.cli_eval import eval_main

    test_shard = good.with_name("test-000000.tar")
    bad = tmp_path / "data" / "shards" / "test-000000.tar"
    key = _with_member(test_shard, bad, "target.png", BAD_MEMBERS["bomb-30000"][1])
    res = run_cli(eval_main, checkpoint=tiny_checkpoint, data=bad.parents[1], out=tmp_path / "o")
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and f"sample {key!r}: target.png is 30000x30000" in lines[0]
