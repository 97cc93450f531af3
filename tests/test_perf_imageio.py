"""``imageio.jpeg_damage`` reuses one capture file per process: results never leak from one
call to the next, and a forked child gets a file of its own."""

from __future__ import annotations

import io
import multiprocessing as mp

import numpy as np
import pytest
from PIL import Image

from occlusion_synth import imageio


def _jpeg() -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _damaged() -> bytes:
    data = _jpeg()
    return data[: len(data) // 2] + b"\xff\xd9"


def test_clean_and_damaged_alternate_without_leaking():
    good, bad = _jpeg(), _damaged()
    results = [imageio.jpeg_damage(d) for d in (good, bad, good, bad, good)]
    assert results[0] is None and results[2] is None and results[4] is None
    assert results[1] is not None and "corrupt jpeg data" in results[1].lower()
    assert results[3] == results[1]


def _child(_: int) -> tuple[str | None, str | None]:
    return imageio.jpeg_damage(_damaged()), imageio.jpeg_damage(_jpeg())


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs fork")
def test_forked_children_capture_their_own_messages():
    imageio.jpeg_damage(_damaged())  # the parent has its capture file before the fork
    with mp.get_context("fork").Pool(2) as pool:
        out = pool.map(_child, range(6))
    assert all(bad is not None and good is None for bad, good in out)
    assert imageio.jpeg_damage(_jpeg()) is None
