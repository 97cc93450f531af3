"""The shards' PNG writer (``occlusion_synth.pngwrite``): lossless, standard, deterministic."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from occlusion_synth import pngwrite, shards


def _decode(data: bytes) -> tuple[np.ndarray, str]:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return np.asarray(im), im.mode


@pytest.mark.parametrize(
    ("shape", "mode"),
    [((256, 256), "L"), ((256, 256, 3), "RGB"), ((7, 5, 4), "RGBA"), ((1, 1, 3), "RGB")],
)
def test_round_trip_is_lossless(shape, mode):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, shape, dtype=np.uint8)
    # a smooth ramp in the top half: rows whose differences wrap around mod 256
    ramp = np.linspace(0, 255, shape[1]).astype(np.uint8)
    top = array[: shape[0] // 2]
    top[...] = ramp[None, :, None] if array.ndim == 3 else ramp[None, :]
    data = pngwrite.encode(array)
    back, got_mode = _decode(data)
    assert got_mode == mode
    assert back.shape == array.shape
    assert np.array_equal(back, array)


def test_up_filter_matches_the_png_definition():
    rows = np.array([[10, 250, 0], [5, 4, 255], [5, 4, 255]], np.uint8)
    out = pngwrite.up_filtered(rows)
    assert out[:, 0].tolist() == [2, 2, 2]
    assert out[0, 1:].tolist() == [10, 250, 0]
    assert out[1, 1:].tolist() == [(5 - 10) % 256, (4 - 250) % 256, 255]
    assert out[2, 1:].tolist() == [0, 0, 0]


def test_bytes_are_deterministic_and_carry_only_the_three_chunks():
    img = np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    a, b = shards.encode_png(img), shards.encode_png(img.copy())
    assert a == b
    chunks, pos = [], 8
    while pos < len(a):
        (length,) = struct.unpack(">I", a[pos : pos + 4])
        chunks.append(a[pos + 4 : pos + 8])
        pos += 12 + length
    assert chunks == [b"IHDR", b"IDAT", b"IEND"]
    assert shards.png_header_problem(a, 2) is None
    assert shards.png_header_problem(shards.encode_png(img[..., 0]), 0) is None


def test_decode_png_reads_what_encode_png_wrote():
    mask = np.zeros((256, 256), np.uint8)
    mask[40:90, 100:180] = 255
    assert np.array_equal(shards.decode_png(shards.encode_png(mask), "L"), mask)


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 2), np.uint8), np.zeros((0, 4), np.uint8)]
)
def test_refuses_what_is_not_an_image(bad):
    with pytest.raises(ValueError):
        pngwrite.encode(bad)
