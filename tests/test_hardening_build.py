"""Builder-side hardening (issue 10): each test failed before its fix.

Items: 2 (resume over changed sources), 12 (one writer per --out), 13 (full disk), 3 (corrupt
CelebA annotations), 4 (damaged JPEG data), 5 (non-UTF-8 file names), 10 (bad option values),
11 (huge --n), 19 (unreadable entries, empty --categories, bad partition values).

Most builds here run on a small synthetic CelebA root (``--landmarks celeba``: no detection)
with a fast stand-in sample maker, so the whole module stays quick.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from occlusion_synth import build, faces, shards
from occlusion_synth.build import BuildOptions, run_build
from occlusion_synth.canonical import CANONICAL_POINTS, CELEBA_ALIGNED_SIZE
from occlusion_synth.cli import main
from occlusion_synth.errors import UserError
from occlusion_synth.imageio import Reject, read_rgb
from occlusion_synth.landmarks import apply_affine, invert_affine
from occlusion_synth.splits import assign_shards, hash_unit, parse_split, shard_numbers
from occlusion_synth.verify import verify_dataset

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- fixtures


def _fast_make(face, library, rng, options=None, key=None, stratum=None):
    """A stand-in for ``sample.make_sample``: a square mask at a random place."""
    target = face.image
    mask = np.zeros(target.shape[:2], np.uint8)
    x, y = (int(v) for v in rng.integers(0, 200, 2))
    mask[y : y + 40, x : x + 40] = 255
    inp = target.copy()
    inp[mask > 0] = 0
    marks = dict(face.landmarks.flat(), provider=face.landmarks.provider)
    meta = {"landmarks": marks, "categories": "square"}
    return shards.Sample(key=key or "x", input=inp, mask=mask, target=target, meta=meta)


@pytest.fixture(scope="module")
def astronaut_face(tmp_path_factory) -> np.ndarray:
    """The demo astronaut aligned to the 256x256 frame (detected once)."""
    cache = tmp_path_factory.mktemp("lm") / "cache.parquet"
    src = next(s for s in faces.discover_faces("demo") if s.id == "demo:astronaut")
    from occlusion_synth.landmark_cache import LandmarkCache

    return faces.load_aligned(src, cache=LandmarkCache(cache)).image


def _celeba_root(root: Path, face: np.ndarray, n: int, rows: dict[str, str] | None = None):
    """A CelebA root of ``n`` 178x218 images made from ``face`` (slightly different
    colours each), with exact annotations and a partition file; ``rows`` replaces the
    annotation text of some files (corrupt rows)."""
    w, h = CELEBA_ALIGNED_SIZE
    to_src = invert_affine(faces.celeba_matrix(w, h))
    five = apply_affine(to_src, CANONICAL_POINTS)
    images = root / faces.CELEBA_IMAGES
    images.mkdir(parents=True, exist_ok=True)
    lines, parts = [], []
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        tinted = np.clip(face.astype(np.int16) + [i * 3, -i * 2, i], 0, 255).astype(np.uint8)
        img = cv2.warpAffine(tinted, to_src, (w, h), flags=cv2.INTER_AREA)
        Image.fromarray(img).save(images / name, quality=95)
        values = " ".join(f"{v:.1f}" for v in five.ravel())
        lines.append(f"{name} {(rows or {}).get(name, values)}")
        parts.append(f"{name} {i % 3}")
    header = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y "
    header += "rightmouth_x rightmouth_y"
    text = f"{n}\n{header}\n" + "\n".join(lines) + "\n"
    (root / "list_landmarks_align_celeba.txt").write_text(text)
    (root / "list_eval_partition.txt").write_text("\n".join(parts) + "\n")
    return root


@pytest.fixture(scope="module")
def celeba(tmp_path_factory, astronaut_face) -> Path:
    """A clean 9-image CelebA root (do not modify: copy it)."""
    return _celeba_root(tmp_path_factory.mktemp("celeba") / "root", astronaut_face, 9)


def _options(faces_path: Path | str, out: Path, **kw) -> BuildOptions:
    base: dict = dict(
        faces=str(faces_path),
        out=out,
        n=12,
        workers=1,
        shard_size=2,
        landmarks="celeba",
        landmark_cache=None,
    )
    base.update(kw)
    return BuildOptions(**base)


def _hashes(root: Path) -> dict[str, str]:
    files = sorted((root / "shards").glob("*.tar")) + [root / "manifest.parquet"]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _interrupted(options: BuildOptions, after: int) -> None:
    """Run a build that is interrupted (Ctrl-C) after ``after`` samples."""
    made = []

    def make(*args, **kw):
        if len(made) == after:
            raise KeyboardInterrupt
        made.append(1)
        return _fast_make(*args, **kw)

    with pytest.raises(build.BuildInterrupted):
        run_build(options, make=make, progress=False)


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


# --------------------------------------------------------------------------- item 2


def test_resume_refuses_a_changed_faces_folder(tmp_path, celeba):
    root = _copy(celeba, tmp_path / "faces")
    out = tmp_path / "out"
    _interrupted(_options(root, out), after=5)
    plan = json.loads((out / ".partial" / "plan.json").read_text())
    assert plan["sources"]["count"] == 9 and len(plan["sources"]["sha256"]) == 64

    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("000002.jpg", "000005.jpg"):
        (root / "img_align_celeba" / name).rename(moved / name)
    result = CliRunner().invoke(
        main,
        ["build", "--faces", str(root), "--n", "12", "--out", str(out), "--workers", "1"]
        + ["--shard-size", "2", "--landmarks", "celeba", "--no-landmark-cache", "--resume"],
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert "changed since the build" in result.output
    assert "2 sources gone, 0 new, 0 changed" in result.output

    for name in ("000002.jpg", "000005.jpg"):  # put back: the resume goes through
        (moved / name).rename(root / "img_align_celeba" / name)
    os.utime(root / "img_align_celeba" / "000002.jpg")  # touched: still a change
    with pytest.raises(UserError, match="1 changed"):
        run_build(_options(root, out, resume=True), make=_fast_make, progress=False)


def test_resume_refuses_a_changed_annotation_file(tmp_path, celeba):
    root = _copy(celeba, tmp_path / "faces")
    out = tmp_path / "out"
    _interrupted(_options(root, out), after=3)
    path = root / "list_landmarks_align_celeba.txt"
    path.write_text(path.read_text().replace("000003.jpg", "000003.jpg ", 1))
    with pytest.raises(UserError, match="list_landmarks_align_celeba.txt changed"):
        run_build(_options(root, out, resume=True), make=_fast_make, progress=False)


def test_resume_over_unchanged_sources_is_byte_identical(tmp_path, celeba):
    ref = tmp_path / "ref"
    run_build(_options(celeba, ref), make=_fast_make, progress=False)
    out = tmp_path / "out"
    _interrupted(_options(celeba, out), after=7)
    run_build(_options(celeba, out, resume=True), make=_fast_make, progress=False)
    assert _hashes(out) == _hashes(ref)
    card = shards.read_dataset_card(out)
    assert card["sources"] == shards.read_dataset_card(ref)["sources"]
    assert card["sources"]["count"] == 9


# --------------------------------------------------------------------------- item 12


def _lock(out: Path, pid: int, host: str | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / build.LOCK_FILE
    path.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(), "token": "t"}))
    return path


def test_a_second_writer_is_refused(tmp_path, celeba):
    out = tmp_path / "out"
    lock = _lock(out, os.getppid())  # a live process on this host
    with pytest.raises(UserError, match=r"in use by another build \(pid \d+ on "):
        run_build(_options(celeba, out), make=_fast_make, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [build.LOCK_FILE]  # nothing written
    assert lock.is_file()


def test_a_lock_of_another_host_is_respected(tmp_path, celeba):
    out = tmp_path / "out"
    _lock(out, 1, host="elsewhere.example")
    with pytest.raises(UserError, match="elsewhere.example"):
        run_build(_options(celeba, out), make=_fast_make, progress=False)


def test_a_stale_lock_is_taken_over_and_released(tmp_path, celeba):
    out = tmp_path / "out"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _lock(out, dead.pid)
    seen = []

    def make(*args, **kw):
        holder = json.loads((out / build.LOCK_FILE).read_text())
        seen.append((holder["pid"], holder["host"]))
        return _fast_make(*args, **kw)

    run_build(_options(celeba, out), make=make, progress=False)
    assert set(seen) == {(os.getpid(), socket.gethostname())}
    assert not (out / build.LOCK_FILE).exists() and verify_dataset(out).ok


def test_a_resume_during_a_build_is_refused(tmp_path, celeba):
    out = tmp_path / "out"
    _interrupted(_options(celeba, out), after=3)
    second = []
    args = ["build", "--faces", str(celeba), "--n", "12", "--out", str(out), "--workers", "1"]
    args += ["--shard-size", "2", "--landmarks", "celeba", "--no-landmark-cache", "--resume"]
    code = "import sys; from occlusion_synth.cli import main; sys.exit(main())"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *sys.path]))

    def make(*args_, **kw):  # while the first build writes, a second process resumes
        if not second:
            second.append(
                subprocess.run(
                    [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True
                )
            )
        return _fast_make(*args_, **kw)

    run_build(_options(celeba, out, resume=True), make=make, progress=False)
    assert second[0].returncode == 2, second[0].stderr
    assert "in use by another build (pid" in second[0].stderr
    assert second[0].stderr.strip().splitlines() == [second[0].stderr.strip()]  # refused early
    assert verify_dataset(out).ok


def test_a_build_that_cannot_start_leaves_no_lock(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UserError):
        run_build(_options(tmp_path / "missing", out), make=_fast_make, progress=False)
    assert not out.exists()


# --------------------------------------------------------------------------- item 13


@pytest.mark.parametrize("where", ["shard", "manifest"])
def test_full_disk_is_one_line_and_resumable(tmp_path, celeba, monkeypatch, where):
    ref = tmp_path / "ref"
    run_build(_options(celeba, ref), make=_fast_make, progress=False)
    out = tmp_path / "out"
    if where == "shard":
        real_add, calls = shards.ShardWriter.add, []

        def add(self, members):
            calls.append(1)
            if len(calls) == 5:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_add(self, members)

        monkeypatch.setattr(shards.ShardWriter, "add", add)
        expected = "/shards/"
    else:
        real_write = shards.write_bytes_atomic

        def write(path, data):
            if Path(path).name == shards.MANIFEST:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            return real_write(path, data)

        monkeypatch.setattr(shards, "write_bytes_atomic", write)
        expected = shards.MANIFEST
    monkeypatch.setattr(build, "run_build", functools.partial(run_build, make=_fast_make))
    result = CliRunner().invoke(
        main,
        ["build", "--faces", str(celeba), "--n", "12", "--out", str(out), "--workers", "1"]
        + ["--shard-size", "2", "--landmarks", "celeba", "--no-landmark-cache"],
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is not None
    (line,) = [x for x in result.output.splitlines() if x.startswith("Error")]
    assert line.startswith("Error: no space left on /") and line == result.output.splitlines()[-1]
    assert expected in line and line.endswith("free space and rerun with --resume")
    assert not (out / build.LOCK_FILE).exists()
    monkeypatch.undo()
    run_build(_options(celeba, out, resume=True), make=_fast_make, progress=False)
    assert _hashes(out) == _hashes(ref)


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            capture_output=True,
        )
    except OSError:
        return False
    return done.returncode == 0


def test_a_real_full_tmpfs(tmp_path, celeba):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "1m"):
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        out = disk / "out"
        with pytest.raises(UserError, match=f"^no space left on {disk} while writing "):
            run_build(_options(celeba, out, n=60), make=_fast_make, progress=False)
        assert not (out / build.LOCK_FILE).exists()
        assert not list((out / "shards").glob("*.tmp"))
    finally:
        subprocess.run(["umount", str(disk)], check=False)


# --------------------------------------------------------------------------- item 3


CORRUPT_ROWS = {
    "000001.jpg": ("1e9 1e9 54.0 55.5 44.0 68.0 36.0 76.0 52.5 76.0", "outside the image"),
    "000002.jpg": ("50 50 50 50 50 50 50 50 50 50", "degenerate"),
    "000003.jpg": ("nan 55.5 54.0 55.5 44.0 68.0 36.0 76.0 52.5 76.0", "NaN"),
    "000004.jpg": ("34.5 55.5 54.0", "3 numbers, expected 10"),
    "000005.jpg": ("a b c d e f g h i j", "not a number"),
    "000006.jpg": ("80 100 81 100 89 120 80 140 100 140", "inter-ocular distance"),
    "000007.jpg": ("110 100 70 100 89 120 80 140 100 140", "out of order"),
}


def test_corrupt_celeba_annotations_are_rejected_with_reasons(tmp_path, astronaut_face):
    rows = {name: text for name, (text, _) in CORRUPT_ROWS.items()}
    root = _celeba_root(tmp_path / "faces", astronaut_face, 10, rows=rows)
    out = tmp_path / "out"
    result = run_build(_options(root, out, n=6), make=_fast_make, progress=False)
    assert result.rejects == len(CORRUPT_ROWS)
    rejects = dict(
        line.split(",", 1) for line in (out / "rejects.csv").read_text().splitlines()[1:]
    )
    for name, (_, reason) in CORRUPT_ROWS.items():
        assert reason in rejects[f"img_align_celeba/{name}"], rejects
    used = set(shards.read_manifest(out)["source_id"])
    assert used == {f"img_align_celeba/{i:06d}.jpg" for i in (8, 9, 10)}
    assert verify_dataset(out).ok


def test_corrupt_annotations_are_rejected_by_occsynth_landmarks(tmp_path, astronaut_face):
    rows = {name: text for name, (text, _) in CORRUPT_ROWS.items()}
    root = _celeba_root(tmp_path / "faces", astronaut_face, 8, rows=rows)
    out = tmp_path / "lm" / "landmarks.parquet"
    result = CliRunner().invoke(
        main,
        ["landmarks", "--faces", str(root), "--out", str(out), "--landmarks", "celeba"]
        + ["--no-landmark-cache"],
    )
    assert result.exit_code == 0, result.output
    assert "1 with landmarks, 7 rejected" in result.output


def test_partition_values_other_than_0_1_2_are_rejected(tmp_path, celeba):
    root = _copy(celeba, tmp_path / "faces")
    path = root / "list_eval_partition.txt"
    path.write_text(path.read_text().replace("000004.jpg 0", "000004.jpg 7"))
    out = tmp_path / "out"
    run_build(_options(root, out), make=_fast_make, progress=False)
    assert "000004.jpg,\"CelebA partition value '7' is not 0, 1 or 2\"" in (
        (out / "rejects.csv").read_text()
    )
    # an explicit --split does not use the partition: the row is fine then
    out2 = tmp_path / "split"
    run_build(_options(root, out2, split=(0.8, 0.1, 0.1)), make=_fast_make, progress=False)
    assert "000004.jpg" not in (out2 / "rejects.csv").read_text()


# --------------------------------------------------------------------------- item 4


def _jpeg(tmp_path: Path, face: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(face).save(buf, "JPEG", quality=92)
    return buf.getvalue()


@pytest.mark.parametrize("damage", ["random", "zeros", "cut"])
def test_jpeg_with_corrupt_data_in_the_middle_is_rejected(tmp_path, astronaut_face, damage):
    good = _jpeg(tmp_path, astronaut_face)
    (tmp_path / "good.jpg").write_bytes(good)
    read_rgb(tmp_path / "good.jpg")  # the intact file is fine
    data, mid = bytearray(good), len(good) // 2
    if damage == "random":
        data[mid : mid + 200] = np.random.default_rng(0).integers(0, 256, 200, np.uint8).tobytes()
    elif damage == "zeros":
        data[mid : mid + 2000] = bytes(2000)
    else:
        del data[mid : mid + 3000]
    (tmp_path / "bad.jpg").write_bytes(bytes(data))
    Image.open(tmp_path / "bad.jpg").load()  # Pillow itself says nothing
    with pytest.raises(Reject, match="damaged JPEG data \\(Corrupt JPEG data"):
        read_rgb(tmp_path / "bad.jpg")


# --------------------------------------------------------------------------- item 5


def test_non_utf8_file_names_build_and_cache(tmp_path, astronaut_face):
    folder = tmp_path / "faces"
    folder.mkdir()
    Image.fromarray(astronaut_face).save(folder / "plain.png")
    odd = folder / os.fsdecode(b"caf\xff.png")
    Image.fromarray(astronaut_face[:, ::-1].copy()).save(odd)
    cache = tmp_path / "cache.parquet"
    out = tmp_path / "out"
    run_build(
        _options(folder, out, n=4, landmarks="auto", landmark_cache=str(cache)),
        make=_fast_make,
        progress=False,
    )
    ids = set(shards.read_manifest(out)["source_id"])
    assert ids == {"plain.png", "caf\\xff.png"}
    assert verify_dataset(out).ok
    from occlusion_synth.landmark_cache import LandmarkCache

    assert LandmarkCache(cache).get(odd, "mediapipe") is not None  # saved, found again
    lm = tmp_path / "lm.parquet"
    result = CliRunner().invoke(
        main,
        ["landmarks", "--faces", str(folder), "--out", str(lm), "--landmark-cache", str(cache)],
    )
    assert result.exit_code == 0, result.output
    assert "2 with landmarks" in result.output


def test_split_hash_of_undecodable_names_uses_the_bytes():
    name = os.fsdecode(b"caf\xff.png")
    expected = int.from_bytes(hashlib.sha1(b"caf\xff.png").digest()[:8], "big") / 2.0**64
    assert hash_unit(name) == expected
    assert hash_unit("plain.png") == (
        int.from_bytes(hashlib.sha1(b"plain.png").digest()[:8], "big") / 2.0**64
    )


# --------------------------------------------------------------------------- items 10, 11, 19


BAD_VALUES = [
    (["--seed", "-1"], "--seed must be between 0 and 2**63-1"),
    (["--seed", str(10**23)], "--seed must be between 0 and 2**63-1"),
    (["--split", "nan,0,0"], "three finite numbers"),
    (["--split", "inf,1,1"], "three finite numbers"),
    (["--split", "0,0,0"], "positive sum"),
    (["--split", "-1,1,1"], "non-negative"),
    (["--split", "1,1"], "three numbers"),
    (["--n", "10000000000"], "over the limit of 10,000,000 samples"),
    (["--categories", ""], "--categories is empty"),
    (["--categories", " , "], "--categories is empty"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_VALUES)
def test_bad_values_are_refused_up_front(tmp_path, extra, message):
    out = tmp_path / "out"
    args = ["build", "--faces", "demo", "--n", "4", "--out", str(out), "--no-landmark-cache"]
    result = CliRunner().invoke(main, args + extra)
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert message in line and line.startswith("Error: ")
    assert not out.exists()


def test_split_weights_are_normalised_and_said(tmp_path, celeba, monkeypatch):
    out = tmp_path / "out"
    args = ["build", "--faces", str(celeba), "--n", "4", "--out", str(out), "--workers", "1"]
    args += ["--landmarks", "celeba", "--no-landmark-cache", "--split", "0.5,0.6,0.1"]
    monkeypatch.setattr(build, "run_build", functools.partial(run_build, make=_fast_make))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "note: --split 0.5,0.6,0.1 sums to 1.2; normalised to 0.417,0.5,0.0833" in (
        result.stderr
    )
    split = shards.read_dataset_card(out)["options"]["split"]
    assert np.allclose(split, [0.5 / 1.2, 0.6 / 1.2, 0.1 / 1.2])
    parts = [0.7, 0.2, 0.1]  # the former normalisation, kept: builds keep their bytes
    assert parse_split("0.7,0.2,0.1") == tuple(p / sum(parts) for p in parts)


def test_workers_are_capped(tmp_path, celeba):
    out = tmp_path / "out"
    lines = []
    options = _options(celeba, out, n=2, workers=1000)
    build._validate(options, lines.append)
    cap = build.WORKERS_PER_CORE * (os.cpu_count() or 1)
    assert options.workers == cap
    assert lines == [f"note: --workers 1000 capped at {cap} ({build.WORKERS_PER_CORE} per core)"]


def test_planning_holds_arrays_not_lists():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, 5000).astype(np.int8)
    names = [shards.SPLITS[c] for c in codes]
    old_shard_of, old_counts = [], dict.fromkeys(shards.SPLITS, 0)
    for split in names:  # the former list-based assignment
        old_shard_of.append(old_counts[split] // 7)
        old_counts[split] += 1
    shard_of, counts = shard_numbers(codes, 7)
    assert shard_of.tolist() == old_shard_of and counts == old_counts
    assert assign_shards(names, 7) == (old_shard_of, old_counts)

    class Face:
        def __init__(self, split):
            self.split = split

    pool = [Face("train"), Face("val"), Face("train"), Face("test")]
    n = 2_000_000
    import tracemalloc

    tracemalloc.start()
    splits, shard_of, counts, sizes, todo = build.plan_shards(n, pool, 1000, {"train-000003.tar"})
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert isinstance(todo, np.ndarray) and splits.dtype == np.int8
    assert peak < 60 * n  # bytes per sample: numpy arrays, never Python objects
    assert len(todo) == n - 1000 and counts == {"train": 1_000_000, "val": 500_000, "test": 500_000}
    assert sizes["train-000999.tar"] == 1000 and len(sizes) == 2000


def test_unreadable_entries_get_a_rejects_row(tmp_path, astronaut_face):
    folder = tmp_path / "faces"
    folder.mkdir()
    Image.fromarray(astronaut_face).save(folder / "face.png")
    Image.fromarray(astronaut_face).save(folder / "anim.gif")
    (folder / "gone.jpg").symlink_to(folder / "nowhere.jpg")
    os.mkfifo(folder / "pipe.png")
    (folder / "notes.txt").write_text("not an image, not reported")
    found = faces.discover(folder)
    assert [s.id for s in found.sources] == ["face.png"]
    reasons = dict(found.skipped)
    assert set(reasons) == {"anim.gif", "gone.jpg", "pipe.png"}
    assert "unsupported image format .gif" in reasons["anim.gif"]
    assert "broken link" in reasons["gone.jpg"]
    assert "not a regular file" in reasons["pipe.png"]
    out = tmp_path / "out"
    run_build(
        _options(folder, out, n=2, landmarks="auto", landmark_cache=None),
        make=_fast_make,
        progress=False,
    )
    rejects = (out / "rejects.csv").read_text()
    assert "anim.gif," in rejects and "gone.jpg," in rejects and "pipe.png," in rejects


# --------------------------------------------------------------------------- items 15, 19: readers


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, celeba) -> Path:
    """A small verified dataset (do not modify: copy it)."""
    out = tmp_path_factory.mktemp("data") / "data"
    run_build(_options(celeba, out, n=6, shard_size=3), make=_fast_make, progress=False)
    assert verify_dataset(out).ok
    return out


def _occsynth(*args: str) -> subprocess.CompletedProcess:
    """The CLI in a child process, so that a hang fails the test instead of blocking it."""
    code = "import sys; from occlusion_synth.cli import main; sys.exit(main())"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *sys.path]))
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120
    )


def _one_error(done: subprocess.CompletedProcess, code: int = 2) -> str:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("Error")]
    return line


def _rewrite_manifest(root: Path, edit) -> None:
    table = shards.read_manifest(root)
    shards.write_table(pa_table(edit(table)), root / shards.MANIFEST)


def pa_table(frame):
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("bytes", "cannot be read"),
        ("no coverage", "lacks column(s) coverage"),
        ("text coverage", "coverage holds non-numbers"),
        ("fifo", "is not a regular file"),
    ],
)
def test_stats_on_a_damaged_manifest_is_one_line(tmp_path, dataset, damage, message):
    root = _copy(dataset, tmp_path / "data")
    manifest = root / shards.MANIFEST
    if damage == "bytes":
        manifest.write_bytes(b"PAR1" + os.urandom(500))
    elif damage == "no coverage":
        _rewrite_manifest(root, lambda t: t.drop(columns=["coverage"]))
    elif damage == "text coverage":
        _rewrite_manifest(root, lambda t: t.assign(coverage="lots"))
    else:
        manifest.unlink()
        os.mkfifo(manifest)
    line = _one_error(_occsynth("stats", str(root), "--out", str(tmp_path / "s.png")))
    assert message in line


@pytest.mark.parametrize(
    ("card", "finding"),
    [
        ({"counts": [1, 2]}, "'counts' is list"),
        ({"counts": {"samples": "6", "splits": {}}}, "counts.samples is '6'"),
        ({"counts": {"samples": 6, "splits": [6]}}, "counts.splits is list"),
        ({"counts": {"samples": 6, "splits": {"train": None}}}, "counts.splits.train is None"),
        ({"counts": {"samples": 6, "splits": {}}, "seed": "0"}, "seed is str"),
        ([1, 2, 3], "is not a JSON object"),
        ("fifo", "is not a regular file"),
    ],
)
def test_verify_reports_a_card_of_wrong_types(tmp_path, dataset, card, finding):
    root = _copy(dataset, tmp_path / "data")
    path = root / shards.DATASET_CARD
    if card == "fifo":
        path.unlink()
        os.mkfifo(path)
    else:
        path.write_text(json.dumps(card))
    done = _occsynth("verify", str(root), "--workers", "1")
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout
    assert any(finding in line for line in done.stdout.splitlines()), done.stdout


def _edit_json(root: Path, edit) -> None:
    shard = shards.list_shards(root)[0]
    samples = list(shards.read_shard(shard))
    with shards.ShardWriter(shard) as writer:
        for n, (key, members) in enumerate(samples):
            if n == 0:
                meta = json.loads(members["json"])
                edit(meta)
                members = dict(members, json=json.dumps(meta).encode())
            writer.add((f"{key}.{ext}", data) for ext, data in members.items())


@pytest.mark.parametrize(
    ("edit", "finding"),
    [
        (
            lambda m: m["landmarks"].update(left_eye_x=m["landmarks"]["left_eye_x"] + 1),
            "left_eye_x",
        ),
        (lambda m: m["landmarks"].update(chin_y=None), "chin_y"),
        (lambda m: m["landmarks"].update(provider="mediapipe"), "landmark_provider"),
        (lambda m: m.update(seed=4), "manifest seed"),
        (lambda m: m.update(index=5), "manifest index"),
        (lambda m: m.update(categories="hand"), "manifest categories"),
    ],
)
def test_verify_cross_checks_sample_json_against_the_manifest(tmp_path, dataset, edit, finding):
    root = _copy(dataset, tmp_path / "data")
    _edit_json(root, edit)
    problems = verify_dataset(root).problems
    assert any(finding in p for p in problems), problems


def _png_header(width: int, height: int, colour: int) -> bytes:
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


@pytest.mark.parametrize("damage", ["bomb", "fifo"])
def test_every_reader_refuses_bombs_and_fifos_in_one_line(tmp_path, dataset, damage):
    root = _copy(dataset, tmp_path / "data")
    if damage == "bomb":
        shard = shards.list_shards(root)[0]
        samples = list(shards.read_shard(shard))
        with shards.ShardWriter(shard) as writer:
            for key, members in samples:
                members = dict(members, **{"mask.png": _png_header(30000, 30000, 0)})
                writer.add((f"{key}.{ext}", data) for ext, data in members.items())
        expect = "is 30000x30000, expected 256x256"
    else:
        os.mkfifo(root / "shards" / "train-000009.tar")
        expect = "not a regular file"
    stats = _one_error(_occsynth("stats", str(root), "--out", str(tmp_path / "s.png")))
    preview = _one_error(
        _occsynth("preview", "--from", str(root), "--out", str(tmp_path / "p.png"))
    )
    assert expect in stats and expect in preview
    done = _occsynth("verify", str(root), "--workers", "1")
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout
    assert expect in done.stdout
