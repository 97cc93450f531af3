"""The landmark cache reads and writes Parquet through pyarrow (no pandas at start-up) and
stays compatible with files written through pandas by earlier versions."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from occlusion_synth.landmark_cache import DENSE_POINTS, LandmarkCache, _row, file_key
from occlusion_synth.landmarks import SourcePoints


def _points(dense: bool) -> SourcePoints:
    pts = {"left_eye": (10.5, 20.25), "right_eye": (30.0, 20.0), "nose_tip": (20.0, 30.0)}
    mesh = np.arange(DENSE_POINTS * 2, dtype=np.float32).reshape(DENSE_POINTS, 2) if dense else None
    return SourcePoints(provider="mediapipe", points=pts, dense=mesh)


@pytest.fixture
def photos(tmp_path):
    paths = []
    for i in range(2):
        p = tmp_path / f"face{i}.jpg"
        p.write_bytes(b"x" * (i + 1))
        paths.append(p)
    return paths


def test_round_trip_keeps_points_missing_points_and_the_mesh(tmp_path, photos):
    path = tmp_path / "cache.parquet"
    cache = LandmarkCache(path)
    cache.put(photos[0], "det", _points(dense=True))
    cache.put(photos[1], "det", _points(dense=False))
    cache.save()
    again = LandmarkCache(path)
    assert len(again) == 2
    a, b = again.get(photos[0], "det"), again.get(photos[1], "det")
    assert a.points == _points(True).points and set(a.points) == {
        "left_eye",
        "right_eye",
        "nose_tip",
    }
    assert np.array_equal(a.dense, _points(True).dense)
    assert b.dense is None and b.points == _points(False).points
    assert again.get(photos[0], "other detector") is None


def test_files_written_through_pandas_are_read_and_ours_read_in_pandas(tmp_path, photos):
    pd = pytest.importorskip("pandas")
    old = tmp_path / "old.parquet"
    df = pd.DataFrame([_row(file_key(photos[0], "det"), _points(True))])
    df.attrs["occsynth_cache_version"] = "1"
    df.to_parquet(old, index=False)
    cache = LandmarkCache(old)
    assert cache.get(photos[0], "det").points == _points(True).points
    cache.put(photos[1], "det", _points(False))
    cache.save()
    back = pd.read_parquet(old)
    assert back.attrs.get("occsynth_cache_version") == "1"
    assert len(back) == 2


def test_a_cache_of_another_version_is_ignored(tmp_path, photos):
    pd = pytest.importorskip("pandas")
    path = tmp_path / "v9.parquet"
    df = pd.DataFrame([{"path": "p", "size": 1, "mtime_ns": 1, "detector": "det"}])
    df.attrs["occsynth_cache_version"] = "9"
    df.to_parquet(path, index=False)
    assert len(LandmarkCache(path)) == 0


def test_importing_the_cache_does_not_import_pandas():
    code = (
        "import sys, occlusion_synth.build, occlusion_synth.landmark_cache; "
        "print('pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
