"""``occsynth occluders``: every asset of the occluder library on one labelled sheet, and
``occsynth occluders harvest``: real occluders cut from photos into a library folder."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from occlusion_synth.cli_support import Command, Group
from occlusion_synth.commands.options import file_option, provider_option

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


@click.group(cls=Group, invoke_without_command=True)
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
@click.pass_context
def occluders(ctx: click.Context, out: Path, occluders_dir: tuple[Path, ...]) -> None:
    """Draw every occluder of the library on one labelled sheet.

    One row per category; transparency shows as a checkerboard. User occluders given with
    --occluders-dir are validated and drawn with the built-in ones. `occsynth occluders
    harvest` cuts real occluders from your own photos into such a folder.
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..occluders.library import OccluderLibrary

    lib = OccluderLibrary.load(list(occluders_dir))
    sheet = render_sheet(lib)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="PNG", optimize=True)
    n = len(lib.occluders)
    click.echo(f"wrote {out}: {n} occluders in {len(lib.categories)} categories")


@occluders.command(cls=Command)
@click.option(
    "--from",
    "sources",
    required=True,
    multiple=True,
    type=click.Path(path_type=Path),
    help="A folder (or one file) of sources: NAME.jpg + NAME.mask.png (beside it or in "
    "masks/), RGBA cut-outs (.png with transparency), or with --coco the images; repeatable.",
)
@click.option(
    "--category",
    required=True,
    help="What the objects are: medical_mask, sunglasses, hand, cup, ... or a new name.",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Library folder to write <category>/<name>.png + .json into (use with "
    "--occluders-dir); rejected sources are listed in its rejects.csv.",
)
@click.option("--licence", default="", help="Licence of the sources, kept in each sidecar.")
@click.option(
    "--coco",
    type=click.Path(dir_okay=False, path_type=Path),
    help="COCO instance annotations (JSON; polygons or RLE); needs pycocotools.",
)
@click.option(
    "--coco-category",
    "coco_categories",
    multiple=True,
    help="COCO category name(s) to take from --coco; repeatable or comma-separated.",
)
@click.option("--match", metavar="GLOB", help="Only files whose name matches, e.g. 'crop_0*'.")
@provider_option("--landmarks", help="Landmarks used to align face photos.")
@click.option(
    "--matting",
    type=click.Choice(["auto", "pymatting", "guided"]),
    default="auto",
    show_default=True,
    help="Soft matte at the mask edge: pymatting's closed-form matting (when installed) or "
    "an OpenCV guided filter.",
)
@click.option(
    "--masks",
    type=click.Choice(["files", "auto"]),
    default="files",
    show_default=True,
    help="files: NAME.mask.png only; auto: a photo without one gets its mask from "
    "--segmenter (marked auto_masked in its sidecar; check them). Needs the [train] extra.",
)
@click.option(
    "--segmenter",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Segmenter checkpoint (fdsgan-train --config segmenter) for --masks auto.",
)
@click.option("--device", default="auto", show_default=True, help="For --segmenter: cpu, cuda.")
def harvest(
    sources: tuple[Path, ...],
    category: str,
    out: Path,
    licence: str,
    coco: Path | None,
    coco_categories: tuple[str, ...],
    match: str | None,
    landmarks: str,
    matting: str,
    masks: str,
    segmenter: Path | None,
    device: str,
) -> None:
    """Cut real occluders from photos into a library folder.

    Face-worn objects (masks, scarves, eyewear) are cut from face photos aligned to the
    256x256 frame and keep that face's landmarks as anchors, so they are warped onto other
    faces like the drawn ones; props (hands, cups, phones, microphones) get a target and
    an entry edge. Edges get a soft matte with clean colours. Sources that cannot be used
    are listed, one line each, and written to OUT/rejects.csv.

    \b
    occsynth occluders harvest --from photos/ --category medical_mask --out my_occluders
    occsynth build --faces demo --n 64 --out data --occluders-dir my_occluders
    occsynth occluders harvest --from photos/ --category medical_mask --out my_occluders \\
        --masks auto --segmenter runs/seg/checkpoints/last.pt
    """
    from ..errors import UserError
    from ..occluders.harvest import harvest as run

    masker = None
    if (masks == "auto") != (segmenter is not None):
        raise UserError("--masks auto and --segmenter S.pt go together")
    if segmenter is not None:  # the torch side lives in fdsgan_train, imported only here
        from fdsgan_train.requirements import require_torch

        require_torch("occsynth occluders harvest --masks auto", ("torch",))
        from fdsgan_train.segmenter import harvest_masker

        masker = harvest_masker(segmenter, device)

    names = [n.strip() for c in coco_categories for n in c.split(",") if n.strip()]
    report = run(
        list(sources),
        category,
        out,
        licence=licence,
        coco=coco,
        coco_categories=names,
        landmarks=landmarks,
        matting_method=matting,
        match=match,
        report=lambda line: click.echo(line, err=True),
        masker=masker,
    )
    n, k = len(report.assets), len(report.rejects)
    where = f" (see {report.rejects_csv})" if report.rejects_csv and k else ""
    if n == 0:
        raise UserError(f"nothing harvested: {k} source(s) rejected{where}")
    click.echo(f"harvested {n} {category} occluder(s) into {out / category}; {k} rejected{where}")
