"""Every kind of unusable file is rejected with a clear reason, never a crash."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from occlusion_synth import faces
from occlusion_synth.imageio import MAX_PIXELS, read_rgb


def _colour(h: int = 120, w: int = 100) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that declares ``width`` x ``height`` but holds one row (never decoded)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x00" * 3 * width)
    sig = b"\x89PNG\r\n\x1a\n"
    path.write_bytes(sig + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _reason(path: Path) -> str:
    src = faces.FaceSource(id=path.name, path=path)
    with pytest.raises(faces.Reject) as info:
        faces.load_aligned(src, provider="mediapipe")
    reason = info.value.reason
    assert reason and "\n" not in reason
    return reason


def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert "empty file" in _reason(tmp_path / "empty.jpg")


def test_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("this is not a picture\n" * 20)
    assert "not an image" in _reason(tmp_path / "notes.png")


def test_truncated_jpeg(tmp_path: Path) -> None:
    Image.fromarray(_colour(300, 300)).save(tmp_path / "full.jpg", quality=90)
    blob = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(blob[: len(blob) // 2])
    assert "truncated" in _reason(tmp_path / "cut.jpg")


def test_png_with_alpha(tmp_path: Path) -> None:
    rgba = np.dstack([_colour(), np.full((120, 100), 255, np.uint8)])
    rgba[:20, :20, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    assert "alpha" in _reason(tmp_path / "alpha.png")


def test_opaque_alpha_is_read_as_rgb(tmp_path: Path) -> None:
    rgb = _colour()
    rgba = np.dstack([rgb, np.full((120, 100), 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "opaque.png")
    out, quality = read_rgb(tmp_path / "opaque.png")
    assert np.array_equal(out, rgb) and quality is None


@pytest.mark.parametrize("stored", ["L", "RGB"])
def test_greyscale(tmp_path: Path, stored: str) -> None:
    grey = Image.fromarray(_colour()[..., 0]).convert(stored)
    grey.save(tmp_path / "grey.jpg", quality=95)
    assert "greyscale" in _reason(tmp_path / "grey.jpg")


def test_cmyk_jpeg(tmp_path: Path) -> None:
    Image.fromarray(_colour()).convert("CMYK").save(tmp_path / "cmyk.jpg")
    assert "CMYK" in _reason(tmp_path / "cmyk.jpg")


def test_16_bit_png(tmp_path: Path) -> None:
    deep = _colour().astype(np.uint16) * 257
    assert cv2.imwrite(str(tmp_path / "deep.png"), deep)
    assert "16-bit" in _reason(tmp_path / "deep.png")


def test_too_small(tmp_path: Path) -> None:
    Image.fromarray(_colour(50, 60)).save(tmp_path / "tiny.png")
    assert "too small" in _reason(tmp_path / "tiny.png")


def test_no_face(tmp_path: Path) -> None:
    Image.fromarray(data.coffee()).save(tmp_path / "coffee.jpg", quality=90)
    assert _reason(tmp_path / "coffee.jpg") == "no face found"


@pytest.mark.parametrize("side", [12000, 20000])
def test_enormous_image_is_refused_before_decoding(tmp_path: Path, side: int) -> None:
    # 12000^2 passes Pillow's bomb check but not ours; 20000^2 trips Pillow's own error
    assert side * side > MAX_PIXELS
    _png_header_only(tmp_path / "huge.png", side, side)
    assert "too large" in _reason(tmp_path / "huge.png")


def test_bad_file_in_a_celeba_root_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "img_align_celeba").mkdir()
    (tmp_path / "img_align_celeba" / "000001.jpg").write_bytes(b"")
    (src,) = faces.discover_faces(str(tmp_path))
    with pytest.raises(faces.Reject, match="empty"):
        faces.load_aligned(src)
