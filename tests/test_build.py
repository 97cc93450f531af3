"""``occsynth build`` end to end on the demo faces: determinism, splits, folder rules, resume."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from occlusion_synth import shards
from occlusion_synth.build import BuildOptions, run_build
from occlusion_synth.cli import main
from occlusion_synth.errors import UserError
from occlusion_synth.splits import face_order, split_of
from occlusion_synth.verify import verify_dataset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One landmark cache for the module, so the demo faces are detected once."""
    return tmp_path_factory.mktemp("cache") / "landmarks.parquet"


@pytest.fixture(scope="module")
def options(demo_build_options) -> Callable[..., BuildOptions]:
    """``options(out, cache, **kw)``: this module's build, 10 samples, seed 3, <= 2 occluders."""
    return partial(demo_build_options, n=10, seed=3, max_occluders=2)


def _hashes(root: Path) -> dict[str, str]:
    files = sorted((root / "shards").glob("*.tar")) + [root / "manifest.parquet"]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def built(tmp_path_factory, cache, options) -> Path:
    out = tmp_path_factory.mktemp("build") / "one"
    run_build(options(out, cache), progress=False)
    return out


def test_build_layout_and_card(built):
    assert sorted(p.name for p in built.iterdir()) == [
        "dataset.json",
        "manifest.parquet",
        "preview.png",
        "rejects.csv",
        "shards",
    ]
    card = shards.read_dataset_card(built)
    manifest = shards.read_manifest(built)
    assert card["counts"]["samples"] == len(manifest) == 10
    assert card["seed"] == 3 and card["options"]["shard_size"] == 4
    assert set(card["versions"]) >= {"numpy", "pillow", "mediapipe", "occlusion-synth"}
    assert list(manifest["index"]) == list(range(10))
    for col in (
        "key",
        "split",
        "shard",
        "source_id",
        "categories",
        "coverage",
        "seed",
        "left_eye_x",
        "forehead_y",
    ):
        assert col in manifest.columns
    assert (manifest["coverage"] > 0).all()
    sizes = manifest.groupby("shard").size()
    assert sizes.max() <= 4
    assert verify_dataset(built).ok


def test_workers_do_not_change_bytes(built, tmp_path, cache, options):
    run_build(options(tmp_path / "two", cache, workers=2), progress=False)
    assert _hashes(tmp_path / "two") == _hashes(built)


def test_seed_changes_samples(built, tmp_path, cache, options):
    run_build(options(tmp_path / "other", cache, seed=4), progress=False)
    a = next(shards.iter_samples(built))
    b = next(shards.iter_samples(tmp_path / "other"))
    assert not np.array_equal(a.mask, b.mask) or not np.array_equal(a.input, b.input)


def test_sample_json_matches_manifest(built):
    manifest = shards.read_manifest(built).set_index("key")
    for s in shards.iter_samples(built):
        row = manifest.loc[s.key]
        assert s.meta["split"] == row["split"] and s.shard == row["shard"]
        assert s.meta["index"] == row["index"] and s.meta["source_id"] == row["source_id"]
        assert row["coverage"] == pytest.approx(np.count_nonzero(s.mask) / s.mask.size)


def test_webdataset_reads_the_build(built):
    webdataset = pytest.importorskip("webdataset")
    urls = [str(p) for p in shards.list_shards(built)]
    got = list(webdataset.WebDataset(urls, shardshuffle=False).decode("rgb8"))
    assert len(got) == 10
    assert got[0]["input.png"].shape == (256, 256, 3)
    assert got[0]["json"]["key"] == got[0]["__key__"]


def test_refuses_a_non_empty_folder(built, tmp_path, cache, options):
    with pytest.raises(UserError, match="not empty"):
        run_build(options(built, cache), progress=False)
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="refusing"):
        run_build(options(stranger, cache, overwrite=True), progress=False)
    with pytest.raises(UserError, match="options differ"):
        run_build(options(built, cache, seed=9, resume=True), progress=False)
    result = CliRunner().invoke(
        main,
        [
            "build",
            "--faces",
            "demo",
            "--n",
            "2",
            "--out",
            str(built),
            "--landmark-cache",
            str(cache),
        ],
    )
    assert result.exit_code == 2 and "--resume" in result.output


def test_overwrite_replaces(tmp_path, cache, built, options):
    out = tmp_path / "ow"
    shutil.copytree(built, out)
    run_build(options(out, cache, n=5, overwrite=True), progress=False)
    assert len(shards.read_manifest(out)) == 5 and verify_dataset(out).ok


def test_resume_of_a_finished_build_is_a_no_op(built, tmp_path, cache, options):
    out = tmp_path / "again"
    shutil.copytree(built, out)
    result = run_build(options(out, cache, resume=True), progress=False)
    assert result.produced == 0
    assert _hashes(out) == _hashes(built)


def test_splits_keep_sources_apart(tmp_path, cache, options):
    faces = tmp_path / "faces"
    faces.mkdir()
    import skimage.data

    astronaut = Path(skimage.data.__file__).parent / "astronaut.png"
    for k in range(6):
        shutil.copy(astronaut, faces / f"person{k}.png")
    out = tmp_path / "split"
    run_build(options(out, cache, faces=str(faces), n=14, split=(0.5, 0.25, 0.25)), progress=False)
    m = shards.read_manifest(out)
    assert m.groupby("source_id")["split"].nunique().max() == 1
    for _, row in m.iterrows():
        assert row["shard"].startswith(row["split"] + "-")
        assert row["split"] == split_of(row["source_id"], None, (0.5, 0.25, 0.25))
    card = shards.read_dataset_card(out)
    assert sum(card["counts"]["splits"].values()) == 14
    assert card["counts"]["splits"] == m["split"].value_counts().to_dict() | {
        s: 0 for s in ("train", "val", "test") if s not in set(m["split"])
    }
    assert verify_dataset(out).ok


def test_split_rules():
    # no --split: the partition wins; an explicit --split overrides it
    assert split_of("img_align_celeba/000001.jpg", "val", None) == "val"
    assert split_of("x", 2, None) == "test"
    assert split_of("img_align_celeba/000001.jpg", "val", (1, 0, 0)) == "train"
    assert split_of("x", 2, (0, 1, 0)) == "val"
    assert split_of("x", None, None) == split_of("x", None, (0.8, 0.1, 0.1))
    ids = [f"photo{i}.jpg" for i in range(400)]
    got = [split_of(i, None, (0.8, 0.1, 0.1)) for i in ids]
    assert got == [split_of(i, None, (0.8, 0.1, 0.1)) for i in ids]  # stable
    assert 0.7 < got.count("train") / 400 < 0.9 and got.count("val") > 10
    assert all(split_of(i, None, (0, 0, 1)) == "test" for i in ids[:20])
    assert list(face_order(50, 1)) == list(face_order(50, 1))
    assert list(face_order(50, 1)) != list(face_order(50, 2))


def _cli(args: list[str]) -> list[str]:
    code = "import sys; from occlusion_synth.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code, *args]


def test_killed_build_resumes_to_identical_bytes(tmp_path, cache, options):
    ref = tmp_path / "ref"
    run_build(options(ref, cache, n=48), progress=False)  # 12 shards: killed after 2
    out = tmp_path / "killed"
    args = [
        "build",
        "--faces",
        "demo",
        "--n",
        "48",
        "--out",
        str(out),
        "--seed",
        "3",
        "--workers",
        "1",
        "--shard-size",
        "4",
        "--max-occluders",
        "2",
        "--landmark-cache",
        str(cache),
    ]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *sys.path]))
    log = open(tmp_path / "stderr.txt", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(_cli(args), env=env, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((out / "shards").glob("*.tar"))) >= 2:
            break
        time.sleep(0.02)
    log.close()
    errors = (tmp_path / "stderr.txt").read_text()
    assert proc.poll() is None, f"the build ended before it could be killed: {errors}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "dataset.json").exists()
    assert not verify_dataset(out).ok  # an unfinished build is reported as such

    done = subprocess.run(_cli(args + ["--resume"]), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "shard(s) kept" in done.stdout
    assert verify_dataset(out).ok
    assert _hashes(out) == _hashes(ref)


def test_tightly_cropped_faces_are_rejected(tmp_path, cache, options):
    import skimage.data
    from PIL import Image

    faces = tmp_path / "faces"
    faces.mkdir()
    photo = skimage.data.astronaut()
    Image.fromarray(photo).save(faces / "full.png")
    Image.fromarray(photo[80:190, 150:250]).save(faces / "tight.png")  # face only: 71 % outside
    out = tmp_path / "tight"
    run_build(options(out, cache, faces=str(faces), n=4), progress=False)
    rejects = (out / "rejects.csv").read_text()
    assert "tight.png" in rejects and "cropped too tightly" in rejects
    assert set(shards.read_manifest(out)["source_id"]) == {"full.png"}
    # with the limit lifted, the tight crop is used
    out2 = tmp_path / "loose"
    run_build(options(out2, cache, faces=str(faces), n=4, max_outside=1.0), progress=False)
    assert set(shards.read_manifest(out2)["source_id"]) == {"full.png", "tight.png"}
