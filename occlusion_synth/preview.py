"""Contact sheets: a grid of samples, each input | mask | target under a legible label strip."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from occlusion_synth import storage
from occlusion_synth.shards import SHARDS_DIR, SPLITS, iter_samples, list_shards

#: Side of one image cell on the sheet (pixels; samples are 256x256).
CELL = 256
#: Height of the label strip above each row.
LABEL_H = 26
#: Gap between cells and rows, and the sheet's outer margin.
GAP = 4
#: Height of the header strip (an optional title line, then the column names).
HEADER_H = 48
COLUMNS = ("input", "mask", "target")

_BG = (24, 24, 28)
_LABEL_BG = (245, 245, 240)
_LABEL_FG = (20, 20, 20)
_HEADER_FG = (235, 235, 235)
_TITLE_FG = (170, 200, 255)

#: (input, mask, target, label) — images uint8 (HxWx3, HxW, HxWx3), label a short text.
SampleRow = tuple[np.ndarray, np.ndarray, np.ndarray, str]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1 has only the bitmap font
        return ImageFont.load_default()


def row_height() -> int:
    """Height of one sample tile on the sheet, label strip included."""
    return LABEL_H + CELL + GAP


def tile_width(n_cols: int = len(COLUMNS)) -> int:
    """Width of one sample tile (its image columns side by side)."""
    return n_cols * (CELL + GAP)


def grid_shape(n_samples: int, n_cols: int = len(COLUMNS)) -> tuple[int, int]:
    """(tile columns, tile rows) that lay ``n_samples`` tiles out as a roughly square sheet."""
    if n_samples <= 0:
        return 1, 0
    aspect = tile_width(n_cols) / row_height()
    across = max(1, min(n_samples, math.ceil(math.sqrt(n_samples / aspect))))
    return across, math.ceil(n_samples / across)


def sheet_size(n_samples: int, n_cols: int = len(COLUMNS)) -> tuple[int, int]:
    """(width, height) of a sheet holding ``n_samples`` tiles in a grid."""
    across, down = grid_shape(n_samples, n_cols)
    return GAP + across * tile_width(n_cols), HEADER_H + down * row_height() + GAP


def _cell(img: np.ndarray) -> Image.Image:
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    pil = Image.fromarray(arr.astype(np.uint8), "RGB")
    if pil.size != (CELL, CELL):
        pil = pil.resize((CELL, CELL), Image.Resampling.LANCZOS)
    return pil


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """``text``, shortened with an ellipsis until it fits in ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def draw_sample_sheet(
    samples: Iterable[SampleRow],
    out_path: storage.Location | None = None,
    title: str | None = None,
    columns: Sequence[str] = COLUMNS,
) -> Image.Image:
    """Draw a contact sheet of ``samples`` and save it to ``out_path`` (PNG; a path or a URL)
    when given.

    Each sample is ``(input, mask, target, label)``; its tile shows the three images side by
    side under a white strip carrying ``label`` (e.g. the occluder names and categories).
    Tiles fill a grid row by row (``grid_shape``), so the sheet stays roughly square.
    Returns the sheet as a PIL image.
    """
    rows = list(samples)
    width, height = sheet_size(len(rows), len(columns))
    across, _ = grid_shape(len(rows), len(columns))
    tile_w = tile_width(len(columns))
    sheet = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(sheet)
    font, head = _font(15), _font(16)
    if title:
        draw.text((GAP + 4, 5), _fit(draw, title, head, width - 16), fill=_HEADER_FG, font=head)
    for t in range(min(across, max(len(rows), 1))):
        for c, name in enumerate(columns):
            x = GAP + t * tile_w + c * (CELL + GAP)
            draw.text((x + 4, 27), name, fill=_TITLE_FG, font=font)
    for r, (inp, mask, target, label) in enumerate(rows):
        x0 = GAP + (r % across) * tile_w
        y = HEADER_H + (r // across) * row_height()
        draw.rectangle([x0, y, x0 + tile_w - GAP - 1, y + LABEL_H - 3], fill=_LABEL_BG)
        draw.text(
            (x0 + 6, y + 4),
            _fit(draw, label, font, tile_w - GAP - 12),
            fill=_LABEL_FG,
            font=font,
        )
        for c, img in enumerate((inp, mask, target)[: len(columns)]):
            sheet.paste(_cell(img), (x0 + c * (CELL + GAP), y + LABEL_H))
    if out_path is not None and storage.is_remote(out_path):
        buf = io.BytesIO()
        sheet.save(buf, format="PNG")
        storage.put_bytes(buf.getvalue(), out_path)
    elif out_path is not None:
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(out, format="PNG")
    return sheet


def sample_label(index: int, meta: dict[str, Any]) -> str:
    """A row label from sample metadata: occluder names with categories, coverage, source."""
    occ = meta.get("occluders") or []
    names = " + ".join(f"{o.get('name', '?')} ({o.get('category', '?')})" for o in occ)
    if not names:
        names = str(meta.get("categories") or "no occluder")
    cov = meta.get("coverage")
    cov_txt = f"  ·  {100 * float(cov):.1f}% masked" if cov is not None else ""
    src = meta.get("source_id")
    src_txt = f"  ·  {src}" if src else ""
    return f"{index + 1}. {names}{cov_txt}{src_txt}"


def dataset_rows(root: storage.Location, n: int) -> list[SampleRow]:
    """Samples ``0..n-1`` of a built dataset (a folder or a URL; whatever their splits) as
    sheet rows, labelled with key and split. Each split's shards hold its samples in index
    order, so only the first ``n`` of each split are read."""
    root = storage.location(root)
    first: list[Any] = []
    for split in SPLITS:
        if not list_shards(root, split):
            continue
        for k, s in enumerate(iter_samples(root, split)):
            if k >= n:
                break
            first.append(s)
    if not first:
        raise FileNotFoundError(f"no shards in {storage.join(root, SHARDS_DIR)}")
    first.sort(key=lambda s: s.meta.get("index", 0) if isinstance(s.meta, dict) else 0)
    rows: list[SampleRow] = []
    for s in first[:n]:
        label = f"{sample_label(len(rows), s.meta)}  ·  {s.key} ({s.meta.get('split', '?')})"
        rows.append((s.input, s.mask, s.target, label))
    return rows
