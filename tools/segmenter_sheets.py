"""Contact sheets of a trained occlusion segmenter (docs/segmenter_*.png).

* ``synthetic``: samples of a build's split with the true mask's outline in green and the
  predicted one in red (``segment_eval.outlines``), each labelled with its category and IoU.
* ``infer``: mask-free de-occlusion (``fdsgan-infer --segmenter``, no ``--mask``) of photos:
  per row the photo, the photo with the predicted mask's outline (red; green: a true mask
  when ``NAME.mask.png`` is beside the photo or in ``masks/``) and the de-occluded output.

The sheets in docs/ are made from builds of the bundled demo faces (``--faces demo``) only:
never put photos you may not redistribute into the repository.

    python tools/segmenter_sheets.py synthetic --segmenter S.pt --data demo_out --out a.png
    python tools/segmenter_sheets.py infer --segmenter S.pt --checkpoint G.pt \\
        --photos photos/ --out b.png --work /tmp/infer
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

LABEL = 18


def _sheet(rows: list[list[np.ndarray]], labels: list[list[str]], tile: int) -> Image.Image:
    """Rows of tiles, each tile headed by its label."""
    cols = max(len(r) for r in rows)
    sheet = Image.new("RGB", (cols * tile, len(rows) * (tile + LABEL)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (row, label) in enumerate(zip(rows, labels, strict=True)):
        y = r * (tile + LABEL)
        for c, (img, text) in enumerate(zip(row, label, strict=True)):
            draw.text((c * tile + 4, y + 3), text, fill="black")
            h, w = img.shape[:2]
            scale = tile / max(h, w)
            small = Image.fromarray(img).resize(
                (max(1, round(w * scale)), max(1, round(h * scale)))
            )
            x0 = c * tile + (tile - small.width) // 2
            sheet.paste(small, (x0, y + LABEL + (tile - small.height) // 2))
    return sheet


def synthetic(args: argparse.Namespace) -> None:
    from fdsgan_train.evaluate import load_split
    from fdsgan_train.segment_eval import mask_scores, outlines
    from fdsgan_train.segmenter import Segmenter

    seg = Segmenter.from_checkpoint(args.segmenter, "cpu")
    samples = load_split(args.data, args.split, args.n)
    preds = seg.masks([s.input for s in samples])
    tiles, names = [], []
    for s, pred in zip(samples, preds, strict=True):
        iou = mask_scores(pred, s.mask)["iou"]
        tiles.append(outlines(s.input, s.mask, pred))
        names.append(f"{s.category} IoU {iou:.2f}")
    cols = args.columns
    rows = [tiles[i : i + cols] for i in range(0, len(tiles), cols)]
    labels = [names[i : i + cols] for i in range(0, len(names), cols)]
    _sheet(rows, labels, args.tile).save(args.out)
    print(f"wrote {args.out}")


def infer(args: argparse.Namespace) -> None:
    from click.testing import CliRunner

    from fdsgan_train.cli_eval import infer_main
    from fdsgan_train.infer import list_photos, mask_of, read_mask, read_photo

    work = Path(args.work)
    argv = ["--checkpoint", str(args.checkpoint), "--segmenter", str(args.segmenter)]
    argv += ["--image", str(args.photos), "--out", str(work), "--device", "cpu"]
    argv += ["--mask-dilate", str(args.mask_dilate)]
    res = CliRunner().invoke(infer_main, argv)
    print(res.output.strip())
    rows, labels = [], []
    for photo_path in list_photos(Path(args.photos)):
        out = work / f"{photo_path.stem}.png"
        if not out.is_file():
            continue
        photo = read_photo(photo_path)
        pred = np.asarray(Image.open(work / f"{photo_path.stem}.mask.png"))
        true_path = mask_of(photo_path, Path(args.photos)) or mask_of(
            photo_path, Path(args.photos) / "masks"
        )
        over = photo.copy()
        width = max(2, round(max(photo.shape[:2]) / 200))
        kernel = np.ones((width, width), np.uint8)
        masks = [(pred, (255, 30, 30))]
        if true_path is not None:
            masks.insert(0, (read_mask(true_path, photo.shape[:2]), (0, 220, 0)))
        for mask, colour in masks:
            m = (np.asarray(mask) > 0).astype(np.uint8)
            edge = cv2.dilate(m - cv2.erode(m, np.ones((3, 3), np.uint8)), kernel) > 0
            over[edge] = colour
        rows.append([photo, over, np.asarray(Image.open(out).convert("RGB"))])
        outline = "predicted (red), true (green)" if true_path else "predicted mask (red)"
        labels.append([photo_path.stem, outline, "de-occluded"])
    _sheet(rows, labels, args.tile).save(args.out)
    print(f"wrote {args.out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    a = sub.add_parser("synthetic")
    a.add_argument("--segmenter", required=True)
    a.add_argument("--data", required=True)
    a.add_argument("--split", default="test")
    a.add_argument("--n", type=int, default=12)
    a.add_argument("--columns", type=int, default=4)
    b = sub.add_parser("infer")
    b.add_argument("--segmenter", required=True)
    b.add_argument("--checkpoint", required=True)
    b.add_argument("--photos", required=True)
    b.add_argument("--work", required=True, help="folder for fdsgan-infer's outputs")
    b.add_argument("--mask-dilate", type=int, default=3)
    for p in (a, b):
        p.add_argument("--out", required=True)
        p.add_argument("--tile", type=int, default=256)
    args = ap.parse_args()
    (synthetic if args.what == "synthetic" else infer)(args)


if __name__ == "__main__":
    main()
