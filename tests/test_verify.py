"""``occsynth verify`` finds each kind of damage a dataset can suffer; ``occsynth stats`` draws."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from occlusion_synth import shards
from occlusion_synth.build import run_build
from occlusion_synth.cli import main
from occlusion_synth.verify import verify_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, demo_build_options) -> Path:
    root = tmp_path_factory.mktemp("verify")
    out = root / "data"
    run_build(demo_build_options(out, root / "landmarks.parquet", n=8, seed=1), progress=False)
    return out


@pytest.fixture()
def copy(dataset, tmp_path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(dataset, out)
    return out


def _rewrite(shard: Path, edit) -> None:
    """Rewrite a shard, passing each sample's members through ``edit(key, members)``."""
    samples = list(shards.read_shard(shard))
    with shards.ShardWriter(shard) as writer:
        for key, members in samples:
            members = edit(key, dict(members))
            writer.add((f"{key}.{ext}", data) for ext, data in members.items())


def _first_shard(root: Path) -> Path:
    return shards.list_shards(root)[0]


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _problems(root: Path) -> list[str]:
    report = verify_dataset(root)
    assert not report.ok
    return report.problems


def test_clean_dataset_passes(dataset):
    report = verify_dataset(dataset, workers=2)
    assert report.ok, report.problems
    assert report.samples == 8 and report.shards == len(shards.list_shards(dataset))
    result = CliRunner().invoke(main, ["verify", str(dataset)])
    assert result.exit_code == 0 and result.output.strip().splitlines()[-1].startswith("OK")


def test_truncated_shard(copy):
    shard = _first_shard(copy)
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) * 2 // 3])
    problems = _problems(copy)
    assert any(shard.name in p and "tar" in p for p in problems)
    result = CliRunner().invoke(main, ["verify", str(copy)])
    assert result.exit_code == 1 and "FAILED" in result.output


def test_grey_pixel_in_mask(copy):
    def edit(key, members):
        mask = shards.decode_png(members["mask.png"], "L").copy()
        mask[0, 0] = 128
        members["mask.png"] = _png(mask)
        return members

    _rewrite(_first_shard(copy), edit)
    problems = _problems(copy)
    assert any("neither 0 nor 255" in p for p in problems)


def _count(shard: Path) -> int:
    return sum(1 for _ in shards.read_shard(shard))


def test_input_changed_outside_mask(copy):
    def edit(key, members):
        mask = shards.decode_png(members["mask.png"], "L")
        inp = shards.decode_png(members["input.png"], "RGB").copy()
        y, x = np.argwhere(mask == 0)[0]
        inp[y, x] = 255 - inp[y, x]
        members["input.png"] = _png(inp)
        return members

    _rewrite(_first_shard(copy), edit)
    problems = _problems(copy)
    assert sum("outside the mask" in p for p in problems) == _count(_first_shard(copy))


def test_missing_member(copy):
    victim = {}

    def edit(key, members):
        if not victim:
            victim[key] = members.pop("target.png")
        return members

    _rewrite(_first_shard(copy), edit)
    problems = _problems(copy)
    (key,) = victim
    assert any(key in p and "missing member(s): target.png" in p for p in problems)


def test_metadata_against_manifest_and_card(copy):
    def edit(key, members):
        meta = json.loads(members["json"])
        meta["source_id"] = "someone-else"
        members["json"] = shards.encode_json(meta)
        return members

    _rewrite(_first_shard(copy), edit)
    card = shards.read_dataset_card(copy)
    card["counts"]["samples"] += 1
    shards.write_json_atomic(copy / shards.DATASET_CARD, card)
    problems = _problems(copy)
    assert sum("manifest source" in p for p in problems) == _count(_first_shard(copy))
    assert any("dataset.json: says 9 samples" in p for p in problems)


def test_duplicate_key_and_leftovers(copy):
    first, second = shards.list_shards(copy)[:2]
    key, members = next(shards.read_shard(first))
    samples = list(shards.read_shard(second))
    samples[0] = (key, members)  # the first sample of shard 1 again, in shard 2
    with shards.ShardWriter(second) as writer:
        for k, m in samples:
            writer.add((f"{k}.{ext}", data) for ext, data in m.items())
    (copy / "shards" / "train-000009.tar.tmp").write_bytes(b"partial")
    problems = _problems(copy)
    assert any("duplicate key" in p and key in p for p in problems)
    assert any("leftover partial file" in p for p in problems)


def test_stats_figure(dataset, tmp_path):
    out = tmp_path / "stats.png"
    result = CliRunner().invoke(main, ["stats", str(dataset), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        assert im.size[0] > 800 and im.size[1] > 700
    from occlusion_synth.stats import mean_mask

    heat, n = mean_mask(dataset)
    masks = [s.mask / 255.0 for s in shards.iter_samples(dataset)]
    assert n == 8 and np.allclose(heat, np.mean(masks, axis=0))
    heat, n = mean_mask(dataset, max_masks=3)  # every ceil(8 / 3) = 3rd sample: 0, 3, 6
    assert n == 3 and np.allclose(heat, np.mean(masks[::3], axis=0))


def test_object_mask_outside_the_mask_or_grey(copy):
    """``object.png`` (the occluders' own pixels) must be binary and lie within the mask."""

    def edit(key, members):
        assert "object.png" in members  # builds write it
        mask = shards.decode_png(members["mask.png"], "L")
        obj = shards.decode_png(members["object.png"], "L").copy()
        y, x = np.argwhere(mask == 0)[0]
        obj[y, x] = 255
        obj[np.argwhere(mask == 255)[0][0], np.argwhere(mask == 255)[0][1]] = 7
        members["object.png"] = _png(obj)
        return members

    _rewrite(_first_shard(copy), edit)
    problems = _problems(copy)
    n = _count(_first_shard(copy))
    assert sum("object mask reaches 1 pixel(s) outside the mask" in p for p in problems) == n
    assert sum("object mask has 1 pixel(s) that are neither" in p for p in problems) == n


def test_shards_without_object_masks_still_verify(copy):
    """Datasets built before ``object.png`` existed stay valid."""

    def edit(key, members):
        members.pop("object.png")
        return members

    for shard in shards.list_shards(copy):
        _rewrite(shard, edit)
    report = verify_dataset(copy)
    assert report.ok, report.problems
