"""A blind realism sheet: real occluded photos and built samples, shuffled, processed alike.

Takes held-out real photos (``NAME.jpg`` + ``masks/NAME.mask.png``, the layout of
``fdsgan-eval --real``) and samples of an ``occsynth build``, and writes ``sheet.png`` (a grid
of numbered tiles) to ``--sheet`` and the answer key to ``--key`` (keep it where the reviewer
cannot read it). Both kinds pass through the same steps, so that nothing but the occlusion
itself tells them apart:

* a real photo is shrunk to the source scale of the build's faces (eyes ``--iod`` px apart,
  celeba_small's), saved as JPEG, then aligned to the 256 frame by the project's aligner;
* a sample takes its real partner's framing: it is laid into a photo of the partner's size
  (the inverse of the partner's alignment) and aligned back, so the part of the frame outside
  that photo is filled the same way (edge pixels repeated and blurred);
* each occluder, and each face, appears in one sample only.

Nothing from the photos is written anywhere but ``--sheet`` and ``--key``.

    python tools/blind_review.py --real ../shared/data/real_occluded \\
        --names fmd_mask_crop_06,fmd_other_03_hand --build /tmp/masks:1 --build /tmp/hands:1 \\
        --sheet /tmp/review/sheet.png --key /tmp/key.json --seed 1
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from fdsgan_train.infer import find_five, read_photo
from occlusion_synth.canonical import CANONICAL_SIZE
from occlusion_synth.errors import UserError
from occlusion_synth.faces import alignment_matrix, warp_to_canonical
from occlusion_synth.landmarks import invert_affine
from occlusion_synth.shards import iter_samples

TILE = 192
COLS = 5


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy()


def inside(matrix: np.ndarray, shape: tuple) -> np.ndarray:
    """Where the 256 frame shows the photo (bool), under ``matrix``."""
    ones = np.ones(shape, np.float32)
    size = (CANONICAL_SIZE, CANONICAL_SIZE)
    return cv2.warpAffine(ones, matrix, size, flags=cv2.INTER_LINEAR) > 0.5


def partners(masks: list[np.ndarray], frames: list[np.ndarray], rng: random.Random) -> list[int]:
    """A real partner for each sample whose photo shows (nearly) all of the sample's
    occluder, so that the framing never hides it: the first of 2,000 shuffles where every
    occluder is 95 % inside, else the shuffle that shows the most of the worst one."""
    shown = np.array([[float(f[m > 0].mean()) if m.any() else 1.0 for f in frames] for m in masks])
    best, best_score = list(range(len(frames))), -1.0
    for _ in range(2000):
        order = list(range(len(frames)))
        rng.shuffle(order)
        score = min(shown[i, j] for i, j in enumerate(order[: len(masks)]))
        if score > best_score:
            best, best_score = order, score
        if score >= 0.95:
            break
    return best


def real_tile(photo: np.ndarray, iod: float, quality: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """The photo at the build's source scale, aligned: (frame, its matrix, the photo's shape)."""
    five = find_five(photo)
    gap = float(np.linalg.norm(five[1] - five[0]))
    f = min(1.0, iod / gap)
    if f < 1.0:
        h, w = photo.shape[:2]
        size = (max(1, round(w * f)), max(1, round(h * f)))
        photo = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
        five = five * (size[0] / w, size[1] / h)
    photo = _jpeg(photo, quality)
    matrix = alignment_matrix(five)
    return warp_to_canonical(photo, matrix), matrix, photo.shape[:2]


def reframed(sample: np.ndarray, matrix: np.ndarray, shape: tuple, quality: int) -> np.ndarray:
    """``sample`` (256 frame) laid into a photo of ``shape`` through the inverse of ``matrix``
    (a real partner's alignment), JPEG-saved like the real photo, and aligned back."""
    h, w = shape
    inv = invert_affine(matrix)
    photo = cv2.warpAffine(
        sample, inv, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )
    return warp_to_canonical(_jpeg(photo, quality), matrix)


def _build_spec(spec: str) -> tuple[str, str, set[str] | None]:
    """``DIR:N`` or ``DIR:N:CATS`` -> (folder, N, the categories or None)."""
    head, _, last = spec.rpartition(":")
    if last.isdigit():
        return head, last, None
    folder, _, n = head.rpartition(":")
    return folder, n, set(last.split("+"))


def _of(sample, cats: set[str] | None) -> bool:
    """Whether every occluder of ``sample`` is of ``cats`` (None: any sample)."""
    return cats is None or set(str(sample.meta.get("categories", "")).split("+")) <= cats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--real", type=Path, required=True, help="folder of NAME.jpg + masks/")
    p.add_argument("--names", required=True, help="comma-separated held-out photo names")
    p.add_argument(
        "--build",
        action="append",
        required=True,
        metavar="DIR:N[:CATS]",
        help="N samples (drawn by --seed) of an occsynth build's output folder, only those "
        "whose occluders are all of the categories CATS (joined by +) when given, e.g. the "
        "mask samples of a mixed build: DIR:8:medical_mask+cloth_mask; repeatable",
    )
    p.add_argument("--sheet", type=Path, required=True)
    p.add_argument("--key", type=Path, required=True)
    p.add_argument(
        "--iod", type=float, default=19.0, help="source eye distance of the build's faces"
    )
    p.add_argument("--quality", type=int, default=80, help="JPEG quality both kinds are saved at")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    names = [n for n in args.names.split(",") if n]
    reals = []
    for name in names:
        path = next(iter(sorted(args.real.glob(f"{name}.*"))), None)
        if path is None:
            raise SystemExit(f"{name}: no such photo in {args.real}")
        try:
            reals.append((name, *real_tile(read_photo(path), args.iod, args.quality)))
        except UserError as exc:
            raise SystemExit(f"{path.name}: {exc.message}") from None
    rng = random.Random(args.seed)
    samples: list = []
    used: set[tuple[str, ...]] = set()
    faces: set[str] = set()
    want = 0
    for spec in args.build:
        folder, n, cats = _build_spec(spec)
        pool = [s for s in iter_samples(Path(folder)) if _of(s, cats)]
        rng.shuffle(pool)
        # each occluder and each face once: the real photos show n different objects on n
        # different people (two builds with one seed put their samples on the same faces)
        for s in pool:
            names = tuple(layer["name"] for layer in s.meta["compose"]["layers"])
            face = s.meta.get("source_id", s.key)
            if len(samples) < want + int(n) and names not in used and face not in faces:
                used.add(names)
                faces.add(face)
                samples.append((f"synthetic:{folder}/{s.key}", s))
        want += int(n)
    if len(samples) != len(reals):
        raise SystemExit(f"{len(samples)} samples for {len(reals)} real photos: give as many")
    frames = [inside(matrix, shape) for _, _, matrix, shape in reals]
    order = partners([s.mask for _, s in samples], frames, rng)
    tiles = [(f"real:{name}", frame) for name, frame, _, _ in reals]
    for (label, sample), j in zip(samples, order, strict=False):
        _, _, matrix, shape = reals[j]
        tiles.append((label, reframed(sample.input, matrix, shape, args.quality)))
    rng.shuffle(tiles)

    rows = (len(tiles) + COLS - 1) // COLS
    sheet = Image.new("RGB", (COLS * TILE, rows * (TILE + 18)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (_, frame) in enumerate(tiles):
        x, y = (i % COLS) * TILE, (i // COLS) * (TILE + 18)
        sheet.paste(Image.fromarray(frame).resize((TILE, TILE), Image.LANCZOS), (x, y + 18))
        draw.text((x + 4, y + 3), f"tile {i + 1}", fill="black")
    args.sheet.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.sheet)
    args.key.write_text(
        json.dumps({f"tile {i + 1}": k for i, (k, _) in enumerate(tiles)}, indent=1)
    )
    print(f"{args.sheet}: {len(tiles)} tiles; key in {args.key}")


if __name__ == "__main__":
    main()
