"""What a new user hit (issue 9): failed builds, progress in logs, splits, one option
vocabulary, grid sheets, the README's reading snippet, and preview == build."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from occlusion_synth import shards
from occlusion_synth.build import BuildOptions, run_build
from occlusion_synth.cli import main
from occlusion_synth.errors import UserError
from occlusion_synth.preview import CELL, GAP, HEADER_H, LABEL_H, grid_shape, row_height, tile_width
from occlusion_synth.progress import Progress, log_line

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache") / "landmarks.parquet"


def _occsynth(*args: str) -> object:
    return CliRunner().invoke(main, list(args))


# --------------------------------------------------------------------------- failed builds


def test_typo_in_faces_leaves_the_folder_as_it_was(tmp_path, cache):
    out = tmp_path / "out"
    bad = _occsynth("build", "--faces", str(tmp_path / "nope"), "--n", "4", "--out", str(out))
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert not out.exists()
    out.mkdir()
    bad = _occsynth("build", "--faces", str(tmp_path / "nope"), "--n", "4", "--out", str(out))
    assert bad.exit_code == 2 and list(out.iterdir()) == []
    good = _occsynth(
        "build", "--faces", "demo", "--n", "4", "--out", str(out), "--landmark-cache", str(cache)
    )
    assert good.exit_code == 0, good.output
    assert (out / "manifest.parquet").is_file()


def test_no_usable_face_names_the_file_and_writes_rejects(tmp_path, cache):
    faces = tmp_path / "faces"
    faces.mkdir()
    (faces / "holiday.jpg").write_bytes(b"this is not a jpeg")
    out = tmp_path / "out"
    bad = _occsynth("build", "--faces", str(faces), "--n", "4", "--out", str(out))
    assert bad.exit_code == 2
    line = bad.output.strip().splitlines()[-1]
    assert "no usable face (1 rejected: holiday.jpg: not an image" in line
    assert "rejects.csv" in line
    assert sorted(p.name for p in out.iterdir()) == ["rejects.csv"]
    assert "holiday.jpg,not an image" in (out / "rejects.csv").read_text()
    # the corrected command is not refused because of the failed one
    good = _occsynth(
        "build", "--faces", "demo", "--n", "3", "--out", str(out), "--landmark-cache", str(cache)
    )
    assert good.exit_code == 0, good.output


def test_overwrite_keeps_the_old_build_when_the_new_one_cannot_start(tmp_path, cache):
    out = tmp_path / "out"
    args = ["--n", "3", "--out", str(out), "--landmark-cache", str(cache)]
    assert _occsynth("build", "--faces", "demo", *args).exit_code == 0
    before = (out / "manifest.parquet").read_bytes()
    bad = _occsynth("build", "--faces", str(tmp_path / "typo"), *args, "--overwrite")
    assert bad.exit_code == 2
    assert (out / "manifest.parquet").read_bytes() == before


# --------------------------------------------------------------------------- progress


def test_progress_prints_lines_when_not_a_terminal():
    stream = io.StringIO()
    bar = Progress(10, "samples", "sample", stream=stream, interval=0.0)
    for _ in range(10):
        bar.update()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11  # one per update, one at the end
    assert lines[-1].startswith("samples 10/10 (100.0%), ")
    assert re.fullmatch(r"samples 4/10 \(40\.0%\), [\d.]+ sample/s, ETA \d+s", lines[3])


def test_log_line_eta():
    assert log_line("samples", 100, 1000, "sample", 10.0) == (
        "samples 100/1000 (10.0%), 10.0 sample/s, ETA 1m30s"
    )


def test_build_with_redirected_stderr_reports_progress(tmp_path, cache):
    code = "import sys; from occlusion_synth.cli import main; sys.exit(main())"
    env = dict(os.environ, OCCSYNTH_PROGRESS_INTERVAL="0")
    args = ["build", "--faces", "demo", "--n", "5", "--out", str(tmp_path / "o")]
    args += ["--workers", "1", "--landmark-cache", str(cache)]
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "samples 5/5 (100.0%)" in done.stderr
    assert "samples 3/5 (60.0%)" in done.stderr


# --------------------------------------------------------------------------- splits


def test_demo_build_has_every_split(tmp_path, cache):
    out = tmp_path / "demo"
    opts = BuildOptions(faces="demo", n=9, out=out, workers=1, landmark_cache=str(cache))
    result = run_build(opts, progress=False)
    assert result.counts == {"train": 3, "val": 3, "test": 3}
    assert [p.name.split("-")[0] for p in shards.list_shards(out)] == ["test", "train", "val"]


def test_explicit_split_overrides_a_partition(tmp_path, cache):
    out = tmp_path / "all_test"
    opts = BuildOptions(
        faces="demo", n=6, out=out, workers=1, landmark_cache=str(cache), split=(0, 0, 1)
    )
    assert run_build(opts, progress=False).counts == {"train": 0, "val": 0, "test": 6}


def test_celeba_split_override(shared_data, tmp_path):
    args = ["--faces", str(shared_data / "celeba_small"), "--n", "12", "--landmarks", "celeba"]
    official = tmp_path / "official"
    assert _occsynth("build", *args, "--out", str(official), "--no-landmark-cache").exit_code == 0
    assert set(shards.read_manifest(official)["split"]) == {"train"}  # celeba_small: all train
    forced = tmp_path / "forced"
    r = _occsynth("build", *args, "--out", str(forced), "--split", "0,1,0", "--no-landmark-cache")
    assert r.exit_code == 0, r.output
    assert set(shards.read_manifest(forced)["split"]) == {"val"}


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("command", ["build", "preview", "landmarks"])
def test_one_landmark_vocabulary(command):
    text = _occsynth(command, "--help").output
    for option in (
        "--landmarks",
        "--face-landmarker-task",
        "--landmark-cache",
        "--no-landmark-cache",
    ):
        assert option in text
    for old in ("--provider", "--cache-file", "--no-cache "):
        assert old not in text  # hidden aliases


def test_old_landmarks_spellings_still_work(tmp_path):
    out = tmp_path / "lm.parquet"
    r = _occsynth(
        "landmarks", "--faces", "demo", "--out", str(out), "--provider", "mediapipe",
        "--cache-file", str(tmp_path / "c.parquet"),
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (tmp_path / "c.parquet").is_file()


def test_missing_task_file_is_one_line_on_build(tmp_path):
    r = _occsynth(
        "build", "--faces", "demo", "--n", "2", "--out", str(tmp_path / "o"),
        "--landmarks", "mediapipe", "--face-landmarker-task", str(tmp_path / "none.task"),
        "--no-landmark-cache",
    )  # fmt: skip
    assert r.exit_code == 2 and "face landmarker model not found" in r.output
    assert not (tmp_path / "o").exists()


def test_user_error_is_free_of_click():
    assert not issubclass(UserError, __import__("click").ClickException)
    assert UserError("bad thing").message == "bad thing"


# --------------------------------------------------------------------------- sheets


def test_sixteen_samples_make_a_grid_not_a_column():
    across, down = grid_shape(16)
    assert (across, down) == (3, 6)
    width = GAP + across * tile_width()
    height = HEADER_H + down * row_height() + GAP
    assert (width, height) == (2344, 1768)  # was one 784x4628 column
    assert grid_shape(8) == (2, 4) and grid_shape(1) == (1, 1)


def _cells(sheet: Path, n: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The (input, mask, target) pixels of the first ``n`` tiles of a contact sheet."""
    img = np.asarray(Image.open(sheet).convert("RGB"))
    across, _ = grid_shape(n)
    out = []
    for r in range(n):
        x0 = GAP + (r % across) * tile_width()
        y0 = HEADER_H + (r // across) * row_height() + LABEL_H
        cells = [
            img[y0 : y0 + CELL, x0 + c * (CELL + GAP) : x0 + c * (CELL + GAP) + CELL]
            for c in range(3)
        ]
        out.append((cells[0], cells[1][..., 0], cells[2]))
    return out


# --------------------------------------------------------------------------- preview == build


def _preview_equals_build(faces: str, n: int, seed: int, tmp_path: Path, *extra: str) -> None:
    built = tmp_path / "built"
    sheet = tmp_path / "sheet.png"
    common = ["--faces", faces, "--n", str(n), "--seed", str(seed), *extra]
    r = _occsynth("build", *common, "--out", str(built), "--workers", "1")
    assert r.exit_code == 0, r.output
    r = _occsynth("preview", *common, "--out", str(sheet))
    assert r.exit_code == 0, r.output
    by_index = {s.meta["index"]: s for s in shards.iter_samples(built)}
    assert sorted(by_index) == list(range(n))
    for i, (inp, mask, target) in enumerate(_cells(sheet, n)):
        s = by_index[i]
        assert np.array_equal(inp, s.input), f"sample {i}: input differs"
        assert np.array_equal(mask, s.mask), f"sample {i}: mask differs"
        assert np.array_equal(target, s.target), f"sample {i}: target differs"


def test_preview_shows_exactly_the_samples_of_the_build(tmp_path, cache):
    extra = ("--max-occluders", "2", "--landmark-cache", str(cache))
    _preview_equals_build("demo", 6, 3, tmp_path, *extra)


def test_preview_equals_build_on_celeba_small(shared_data, tmp_path):
    cache = ("--landmark-cache", str(tmp_path / "lm.parquet"))
    _preview_equals_build(str(shared_data / "celeba_small"), 8, 3, tmp_path, *cache)


# --------------------------------------------------------------------------- README


def test_readme_webdataset_snippet_runs(tmp_path, cache):
    pytest.importorskip("webdataset")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("**Reading the shards.**") :]
    snippet = section[section.index("```python") + len("```python") : section.index("```\n", 10)]
    out = tmp_path / "demo_out"
    opts = BuildOptions(faces="demo", n=3, out=out, workers=1, landmark_cache=str(cache))
    run_build(opts, progress=False)
    done = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_a_detecting_pool_after_detection_in_the_parent_does_not_hang(tmp_path):
    """MediaPipe hangs in a forked child of a process that ran it: such pools spawn instead."""
    code = f"""
from occlusion_synth.build import BuildOptions, run_build
from occlusion_synth.faces import demo_faces, load_aligned
if __name__ == "__main__":
    load_aligned(demo_faces()[0], provider="mediapipe")  # a graph now runs in this process
    opts = BuildOptions(faces="demo", n=3, out={str(tmp_path / "o")!r}, workers=2,
                        landmark_cache=None)
    print(run_build(opts, progress=False).counts)
"""
    script = tmp_path / "parent_detects.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr
    assert "'train': 1, 'val': 1, 'test': 1" in done.stdout
