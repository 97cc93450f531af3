"""Mean-shape completion, the landmark cache, the Tasks-API option and `occsynth landmarks`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from occlusion_synth import faces, landmarks
from occlusion_synth.canonical import EXTRA_POINTS, FIVE_POINTS, MEAN_SHAPE, POINT_NAMES
from occlusion_synth.cli import main
from occlusion_synth.landmark_cache import LandmarkCache, default_cache_path
from occlusion_synth.landmarks import SourcePoints, apply_affine, similarity, to_canonical


class CountingDetector:
    """Face Mesh that counts how often it is asked."""

    name = "mediapipe"

    def __init__(self) -> None:
        self.inner = landmarks.get_detector()
        self.calls = 0

    def detect(self, rgb: np.ndarray) -> np.ndarray | None:
        self.calls += 1
        return self.inner.detect(rgb)


@pytest.fixture()
def demo_copy(tmp_path: Path) -> faces.FaceSource:
    """The astronaut as a plain file we may touch."""
    src = next(s for s in faces.discover_faces("demo") if s.id == "demo:astronaut")
    path = tmp_path / "photos" / "astronaut.png"
    path.parent.mkdir()
    shutil.copy(src.path, path)
    return faces.FaceSource(id="astronaut.png", path=path)


def test_completion_follows_the_five_points() -> None:
    # a face that is the mean shape rotated, scaled and shifted: estimates follow exactly
    a = np.deg2rad(15)
    rot = 0.8 * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    move = np.hstack([rot, [[30.0], [-12.0]]])
    mean = np.array([MEAN_SHAPE[n] for n in POINT_NAMES])
    five = apply_affine(move, mean[:5])
    found = SourcePoints("celeba", {n: tuple(p) for n, p in zip(FIVE_POINTS, five, strict=True)})
    lm = to_canonical(found, np.hstack([np.eye(2), np.zeros((2, 1))]))
    assert lm.estimated == frozenset(EXTRA_POINTS) and lm.dense is None
    assert np.allclose(lm.array(), apply_affine(move, mean), atol=1e-9)


def test_similarity_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(3)
    src = rng.uniform(0, 100, (5, 2))
    true = np.array([[1.2, -0.5, 4.0], [0.5, 1.2, -7.0]])
    assert np.allclose(similarity(src, apply_affine(true, src)), true)
    assert np.allclose(similarity(src, apply_affine(true, src), [5, 1, 1, 1, 2]), true)


def test_cache_avoids_a_second_detection(tmp_path: Path, demo_copy: faces.FaceSource) -> None:
    cache_file = tmp_path / "cache" / "landmarks.parquet"
    detector = CountingDetector()
    first = faces.load_aligned(demo_copy, "mediapipe", detector, LandmarkCache(cache_file))
    assert detector.calls == 1
    assert not cache_file.exists()  # nothing written before save()
    cache = LandmarkCache(cache_file)
    cache.put(demo_copy.path, detector.name, first.found)
    cache.save()
    assert cache_file.is_file() and not list(cache_file.parent.glob(".landmarks-*"))

    again = faces.load_aligned(demo_copy, "mediapipe", detector, LandmarkCache(cache_file))
    assert detector.calls == 1
    assert again.landmarks.points == first.landmarks.points
    assert np.array_equal(again.landmarks.dense, first.landmarks.dense)
    assert np.array_equal(again.image, first.image)

    # editing the file invalidates its entry
    st = demo_copy.path.stat()
    os.utime(demo_copy.path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    faces.load_aligned(demo_copy, "mediapipe", detector, LandmarkCache(cache_file))
    assert detector.calls == 2


def test_cache_remembers_no_face_and_merges_on_save(tmp_path: Path) -> None:
    from PIL import Image
    from skimage import data

    path = tmp_path / "coffee.jpg"
    Image.fromarray(data.coffee()).save(path)
    src = faces.FaceSource(id="coffee.jpg", path=path)
    cache_file = tmp_path / "c.parquet"
    detector = CountingDetector()
    one, two = LandmarkCache(cache_file), LandmarkCache(cache_file)
    with pytest.raises(faces.Reject, match="no face"):
        faces.load_aligned(src, "mediapipe", detector, one)
    two.put(tmp_path / "coffee.jpg", "other-detector", landmarks.NO_FACE)
    one.save()
    two.save()  # must keep the row `one` wrote
    assert len(LandmarkCache(cache_file)) == 2
    with pytest.raises(faces.Reject, match="no face"):
        faces.load_aligned(src, "mediapipe", detector, LandmarkCache(cache_file))
    assert detector.calls == 1


def test_precomputed_points_skip_detection(demo_copy: faces.FaceSource) -> None:
    detector = CountingDetector()
    first = faces.load_aligned(demo_copy, "mediapipe", detector)
    again = faces.load_aligned(demo_copy, "mediapipe", detector, points=first.found)
    assert detector.calls == 1 and again.landmarks.points == first.landmarks.points


def test_unreadable_cache_is_ignored(tmp_path: Path) -> None:
    bad = tmp_path / "landmarks.parquet"
    bad.write_text("garbage")
    with pytest.warns(UserWarning, match="ignoring unreadable"):
        assert len(LandmarkCache(bad)) == 0


def test_default_cache_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OCCSYNTH_LANDMARK_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_path() == tmp_path / "occsynth" / "landmarks.parquet"
    monkeypatch.setenv("OCCSYNTH_LANDMARK_CACHE", str(tmp_path / "x.parquet"))
    assert default_cache_path() == tmp_path / "x.parquet"


def test_missing_face_landmarker_task(tmp_path: Path) -> None:
    with pytest.raises(landmarks.LandmarkError, match="face landmarker model not found"):
        landmarks.get_detector(tmp_path / "face_landmarker.task")


def test_cli_offers_exactly_the_providers() -> None:
    from occlusion_synth.commands import options

    assert options.PROVIDERS == landmarks.PROVIDERS  # kept apart only to spare numpy imports


def test_unknown_provider() -> None:
    src = faces.discover_faces("demo")[0]
    with pytest.raises(landmarks.LandmarkError, match="unknown landmark provider"):
        faces.load_aligned(src, provider="dlib")


# --------------------------------------------------------------- the command


def _run(args: list[str], tmp_path: Path) -> object:
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg"), "OCCSYNTH_LANDMARK_CACHE": ""}
    return CliRunner().invoke(main, ["landmarks", *args], env=env)


def test_landmarks_command_on_demo(tmp_path: Path) -> None:
    out = tmp_path / "out" / "lm.parquet"
    result = _run(["--faces", "demo", "--out", str(out)], tmp_path)
    assert result.exit_code == 0, result.output
    assert "3 faces found, 3 with landmarks, 0 rejected" in result.output
    table = pd.read_parquet(out)
    assert list(table["source"]) == ["demo:astronaut", "demo:camera", "demo:grace_hopper"]
    assert set(table["provider"]) == {"mediapipe"} and set(table["estimated"]) == {""}
    for n in POINT_NAMES:
        assert table[f"{n}_x"].between(0, 256).all() and table[f"{n}_y"].between(0, 256).all()
    assert (tmp_path / "xdg" / "occsynth" / "landmarks.parquet").is_file()
    assert list(pd.read_csv(out.parent / "rejects.csv").columns) == ["source", "reason"]


def test_landmarks_command_records_rejects(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(faces.discover_faces("demo")[0].path, photos / "face.png")
    (photos / "broken.jpg").write_bytes(b"")
    out = tmp_path / "lm.parquet"
    result = _run(["--faces", str(photos), "--out", str(out), "--no-cache"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "2 faces found, 1 with landmarks, 1 rejected" in result.output
    rejects = pd.read_csv(tmp_path / "rejects.csv")
    assert list(rejects["source"]) == ["broken.jpg"]
    assert "empty" in rejects["reason"][0]
    assert not (tmp_path / "xdg").exists()  # --no-cache wrote no cache


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_landmarks_command_bad_faces_folder(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / ("nope" if kind == "missing" else "empty")
    if kind == "empty":
        folder.mkdir()
    result = _run(["--faces", str(folder), "--out", str(tmp_path / "x.parquet")], tmp_path)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and str(folder) in lines[0]


def test_landmarks_command_missing_task_file(tmp_path: Path) -> None:
    task = tmp_path / "face_landmarker.task"
    args = ["--faces", "demo", "--out", str(tmp_path / "x.parquet")]
    result = _run([*args, "--face-landmarker-task", str(task)], tmp_path)
    assert result.exit_code == 2
    assert "face landmarker model not found" in result.output
    assert len(result.output.strip().splitlines()) == 1
