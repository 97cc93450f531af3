"""A fast, deterministic PNG writer for the shards' images (no Pillow on the write path).

Every row uses PNG's "Up" filter (the byte difference from the row above, computed for the
whole image at once in NumPy) and the filtered data is deflated by zlib at level 1 into one
IDAT chunk; no other chunk is written. The bytes depend only on the pixels and the zlib
library, so they are the same in every worker process. On 256x256 face photos this is about
2.5x faster than Pillow's level-1 encoder (which tries five filters per row) and the files
are about 2 % larger. Any PNG reader decodes them (8-bit greyscale, RGB or RGBA).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: zlib level of the IDAT stream: 1 is fast and within a few percent of the default's size.
LEVEL = 1
#: PNG colour type per number of channels (0 greyscale, 2 RGB, 6 RGBA).
_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}
#: The filter-type byte that starts each row: 2 = Up.
_UP = 2


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def up_filtered(rows: np.ndarray) -> np.ndarray:
    """(H, 1 + W*C) uint8: each row of ``rows`` (H, W*C) minus the row above (mod 256),
    prefixed with the Up filter byte; the first row is kept as it is (PNG's Up filter)."""
    h, n = rows.shape
    out = np.empty((h, n + 1), np.uint8)
    out[:, 0] = _UP
    out[:1, 1:] = rows[:1]
    np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])  # uint8 arithmetic wraps mod 256
    return out


def encode(array: np.ndarray, level: int = LEVEL) -> bytes:
    """PNG bytes of a uint8 array: HxW greyscale, HxWx3 RGB or HxWx4 RGBA (zlib ``level``)."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"PNG arrays must be uint8, got {array.dtype}")
    channels = 1 if array.ndim == 2 else array.shape[2] if array.ndim == 3 else 0
    if channels not in _COLOUR_TYPES or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"cannot write a PNG of an array of shape {array.shape}")
    h, w = array.shape[:2]
    header = struct.pack(">IIBBBBB", w, h, 8, _COLOUR_TYPES[channels], 0, 0, 0)
    data = zlib.compress(up_filtered(array.reshape(h, w * channels)).data, level)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
