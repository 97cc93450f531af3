"""``occsynth occluders``: every asset of the occluder library on one labelled sheet."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from occlusion_synth.cli_support import Command
from occlusion_synth.commands.options import file_option

TILE = 150
LABEL_H = 26
HEADER_W = 110


def _checker(h: int, w: int, cell: int = 8) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    v = np.where(((yy // cell + xx // cell) % 2) == 0, 205, 160).astype(np.float32)
    return np.repeat(v[..., None], 3, axis=2)


def _tile(rgba: np.ndarray) -> np.ndarray:
    """The asset fitted into a TILE x TILE cell over a checkerboard (alpha shown as such)."""
    im = Image.fromarray(rgba, "RGBA")
    s = (TILE - 8) / max(im.size)
    im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS)
    a = np.asarray(im, np.float32)
    out = _checker(TILE, TILE)
    y0, x0 = (TILE - im.height) // 2, (TILE - im.width) // 2
    region = out[y0 : y0 + im.height, x0 : x0 + im.width]
    al = a[..., 3:4] / 255.0
    region[:] = a[..., :3] * al + region * (1 - al)
    return out


def render_sheet(library) -> Image.Image:
    """One row per category, one labelled cell per variant."""
    cats = library.categories
    cols = max(len(library.by_category(c)) for c in cats)
    W, H = HEADER_W + cols * TILE, len(cats) * (TILE + LABEL_H)
    sheet = Image.new("RGB", (W, H), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for r, cat in enumerate(cats):
        y = r * (TILE + LABEL_H)
        draw.text((6, y + TILE // 2), cat, fill=(0, 0, 0), font=font)
        for c, occ in enumerate(library.by_category(cat)):
            x = HEADER_W + c * TILE
            sheet.paste(Image.fromarray(np.round(_tile(occ.rgba)).astype(np.uint8)), (x, y))
            label = occ.name[len(cat) + 1 :] if occ.name.startswith(cat + "_") else occ.name
            draw.text((x + 3, y + TILE + 2), label[:24], fill=(0, 0, 0), font=font)
            if len(label) > 24:
                draw.text((x + 3, y + TILE + 13), label[24:48], fill=(0, 0, 0), font=font)
    return sheet


@click.command(cls=Command)
@file_option(
    "--out",
    default=Path("occluders.png"),
    show_default=True,
    help="Where to write the sheet (PNG).",
)
@click.option(
    "--occluders-dir",
    "occluders_dir",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Extra folder of user occluders (<category>/<name>.png + .json); repeatable.",
)
def occluders(out: Path, occluders_dir: tuple[Path, ...]) -> None:
    """Draw every occluder of the library on one labelled sheet.

    One row per category; transparency shows as a checkerboard. User occluders given with
    --occluders-dir are validated and drawn with the built-in ones.
    """
    from ..occluders.library import OccluderLibrary

    lib = OccluderLibrary.load(list(occluders_dir))
    sheet = render_sheet(lib)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="PNG", optimize=True)
    n = len(lib.occluders)
    click.echo(f"wrote {out}: {n} occluders in {len(lib.categories)} categories")
