"""Reading face photos safely: every unusable file becomes a ``Reject`` with a clear reason.

``read_rgb`` checks the header before decoding (Pillow opens lazily), so an enormous image
is refused without allocating its pixels, and returns an 8-bit RGB array plus, for JPEG
sources, the quality estimated from the file's quantisation tables.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Images with more pixels than this are rejected before decoding (about 600 MB as RGB
#: at the limit would be too much for a worker; 40 MP covers every camera photo).
MAX_PIXELS = 40_000_000
#: Images whose shorter side is below this are rejected.
MIN_SIDE = 64

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
)

_GREY_MODES = {"1", "L", "LA", "I", "F", "La"}
_ALPHA_MODES = {"RGBA", "LA", "PA", "La", "RGBa"}

# The luminance quantisation table of the JPEG standard (Annex K), the one libjpeg scales.
_STD_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.int64,
)


class Reject(Exception):
    """A face source that cannot be used; ``reason`` is one short line for rejects.csv."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _libjpeg_table(quality: int) -> np.ndarray:
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((_STD_LUMA * scale + 50) // 100, 1, 255)


_TABLE_SUMS = np.array([_libjpeg_table(q).sum() for q in range(1, 101)])


def estimate_jpeg_quality(image: Image.Image) -> int | None:
    """libjpeg quality (1-100) whose luminance table best matches this JPEG's, or None.

    Compares table sums, so the result does not depend on zigzag or natural ordering.
    """
    tables = getattr(image, "quantization", None)
    if not tables or 0 not in tables:
        return None
    total = int(np.sum(np.asarray(tables[0], dtype=np.int64)))
    return int(np.argmin(np.abs(_TABLE_SUMS - total))) + 1


def _png_bit_depth(path: Path) -> int | None:
    with open(path, "rb") as fh:
        head = fh.read(25)
    if len(head) == 25 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return head[24]
    return None


def _open_checked(path: Path, allow_grey: bool = False) -> Image.Image:
    """Open lazily and check everything the header tells, before any pixel is decoded."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise Reject(f"cannot read file ({exc.strerror or exc})") from None
    if size == 0:
        raise Reject("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Reject(f"image too large (over {MAX_PIXELS:,} pixels)") from None
    except UnidentifiedImageError:
        raise Reject("not an image (unrecognised file content)") from None
    except OSError as exc:
        raise Reject(f"cannot open image ({exc})") from None
    reason = _header_problem(path, image, allow_grey)
    if reason is not None:
        image.close()
        raise Reject(reason)
    return image


def _header_problem(path: Path, image: Image.Image, allow_grey: bool = False) -> str | None:
    """Why an opened (not yet decoded) image is unusable, or None."""
    w, h = image.size
    if w * h > MAX_PIXELS:
        return f"image too large ({w}x{h} is over {MAX_PIXELS:,} pixels)"
    if min(w, h) < MIN_SIDE:
        return f"image too small ({w}x{h}, needs at least {MIN_SIDE} px a side)"
    if image.mode == "CMYK":
        return "CMYK colour (convert to RGB first)"
    if image.mode.startswith("I;16"):
        return "16-bit greyscale image (convert to 8-bit RGB first)"
    if image.mode in _GREY_MODES and not allow_grey:
        return "greyscale image (a colour photo is needed)"
    if image.format == "PNG" and (_png_bit_depth(path) or 8) > 8:
        return "16-bit PNG (convert to 8-bit RGB first)"
    return None


def read_rgb(path: Path, allow_grey: bool = False) -> tuple[np.ndarray, int | None]:
    """Decode ``path`` to an (H, W, 3) uint8 RGB array and its JPEG quality (or None).

    EXIF orientation is applied, so pixel coordinates are those of the upright photo.
    Raises ``Reject`` for anything unusable; never lets a decoder error through.
    ``allow_grey`` admits an 8-bit greyscale photo as three equal channels (demo faces).
    """
    image = opened = _open_checked(path, allow_grey)
    try:
        quality = estimate_jpeg_quality(image) if image.format == "JPEG" else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
        if image.format == "JPEG":
            damage = jpeg_damage(path.read_bytes())
            if damage is not None:
                raise Reject(f"damaged JPEG data ({damage.rstrip('.')})")
        if image.getexif().get(0x0112, 1) != 1:
            image = ImageOps.exif_transpose(image)
        has_alpha = image.mode in _ALPHA_MODES or (
            image.mode == "P" and "transparency" in image.info
        )
        if image.mode == "P":
            image = image.convert("RGBA" if has_alpha else "RGB")
        if has_alpha:
            alpha = np.asarray(image.getchannel("A"))
            if alpha.min() < 255:
                raise Reject("has alpha channel (transparent pixels)")
        rgb = np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as exc:
        msg = str(exc).lower()
        if "truncated" in msg or "premature" in msg or "broken data" in msg:
            raise Reject("truncated image (file ends early)") from None
        raise Reject(f"corrupt image ({exc})") from None
    finally:
        opened.close()  # the file; images derived from it hold no file
    if not allow_grey and _looks_grey(rgb):
        raise Reject("greyscale image (colour channels are identical)")
    return np.ascontiguousarray(rgb), quality


#: libjpeg warnings that mean the compressed data is damaged (the decoder then fills the rest
#: of the image with grey or garbage, and Pillow reports nothing).
_JPEG_DAMAGE = ("corrupt jpeg data", "premature end")


#: One temporary file per process (keyed by pid: a forked child must not share its parent's
#: file offset) that ``_stderr_captured`` reuses; creating one per photo cost more than the
#: check itself.
_SINKS: dict[int, Any] = {}
_SINK_LOCK = threading.Lock()


@contextlib.contextmanager
def _stderr_captured() -> Iterator[Callable[[], str]]:
    """Capture what C code writes to file descriptor 2 (libjpeg prints its warnings there);
    the captured text is readable through the yielded function once the block ends."""
    captured: list[str] = []
    sys.stderr.flush()
    with _SINK_LOCK:
        sink = _SINKS.get(os.getpid())
        if sink is None:
            sink = _SINKS[os.getpid()] = tempfile.TemporaryFile()
            atexit.register(sink.close)
        sink.seek(0)
        sink.truncate()
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            yield lambda: "".join(captured)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", "replace"))


def jpeg_damage(data: bytes) -> str | None:
    """libjpeg's warning when JPEG ``data`` is damaged ("Corrupt JPEG data: ...", "Premature
    end of JPEG file"), or None. Decodes once more with OpenCV's libjpeg at 1/8 scale (the
    entropy-coded data is read in full either way); anything else it prints is passed on."""
    import cv2

    with _stderr_captured() as text:
        cv2.imdecode(
            np.frombuffer(data, np.uint8),
            cv2.IMREAD_REDUCED_GRAYSCALE_8 | cv2.IMREAD_IGNORE_ORIENTATION,
        )
    damage, other = None, []
    for line in text().splitlines():
        if damage is None and any(k in line.lower() for k in _JPEG_DAMAGE):
            damage = line.strip()
        elif line.strip():
            other.append(line)
    if other:
        sys.stderr.write("\n".join(other) + "\n")
    return damage


def _looks_grey(rgb: np.ndarray) -> bool:
    """True when an RGB image carries no colour (a greyscale photo stored as RGB)."""
    sample = rgb[::4, ::4].astype(np.int16)
    return bool(
        np.abs(sample[..., 0] - sample[..., 1]).max() <= 2
        and np.abs(sample[..., 1] - sample[..., 2]).max() <= 2
    )
