"""``fdsgan-eval`` on a segmenter checkpoint: IoU, F1 and boundary F-score.

* Synthetic split: each sample's occluded input (the 256x256 frame) is segmented and compared
  with the mask the checkpoint was trained to find (``segment.target``): the occluders' own
  pixels (``object.png``; ``mask.png`` in shards without it) or every changed pixel
  (``mask.png``), pixel by pixel in the frame; means overall, per occluder category and per
  mask-coverage bin (``evaluate.COVERAGE_BINS``, of that mask).
* ``--real DIR``: each photo ``NAME.jpg`` with its hand-made mask ``NAME.mask.png`` (beside
  it or in ``DIR/masks/``) is aligned to the frame exactly as ``fdsgan-infer`` aligns it
  (``infer.align_photo``: landmarks found on the photo itself, no use of the mask); the true
  mask is warped the same way. **Scores are computed in the frame's pixels** (256x256),
  counting only the frame pixels that come from inside the photo (the frame's part beyond
  the photo's edge is filled, not photographed, and is left out).

Predictions are ``Segmenter.masks`` (flip test-time augmentation: the mean of the frame's
and its mirror image's logits, then > 0.5).

Metrics per image (docs/metrics.md): IoU = |P∩T| / |P∪T|; F1 (Dice) = 2|P∩T| / (|P| + |T|);
boundary F-score = harmonic mean of the boundary precision and recall, a boundary pixel
counting as matched when one of the other mask lies within ``BOUNDARY_TOL`` px (Perazzi et
al. 2016, DAVIS). Two empty masks score 1.

Outputs in ``--out``: ``segmenter_metrics.csv`` (one row per image), ``segmenter_summary.md``
and, with ``--real``, ``real_sheet.png`` (each aligned photo with the true outline in green
and the predicted one in red).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from occlusion_synth.canonical import CANONICAL_SIZE
from occlusion_synth.errors import UserError

#: Boundary tolerance in pixels of the 256x256 frame (about 0.8 % of its diagonal).
BOUNDARY_TOL = 2
METRICS = ("iou", "f1", "boundary_f")


def boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` (bool) with a 4-neighbour outside it."""
    m = mask.astype(np.uint8)
    return mask & ~cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE).astype(
        bool
    )


def mask_scores(
    pred: np.ndarray, true: np.ndarray, valid: np.ndarray | None = None, tol: int = BOUNDARY_TOL
) -> dict[str, float]:
    """IoU, F1 and boundary F of two masks (non-zero = occluded), within ``valid`` pixels."""
    p, t = np.asarray(pred) > 0, np.asarray(true) > 0
    if p.shape != t.shape:
        raise ValueError(f"mask shapes differ: {p.shape} vs {t.shape}")
    keep = np.ones_like(p) if valid is None else np.asarray(valid) > 0
    p, t = p & keep, t & keep
    inter, union, total = (p & t).sum(), (p | t).sum(), p.sum() + t.sum()
    iou = inter / union if union else 1.0
    f1 = 2 * inter / total if total else 1.0
    inner = cv2.erode(keep.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    bp, bt = boundary(p) & inner, boundary(t) & inner
    if not bp.any() and not bt.any():
        bf = 1.0
    elif not bp.any() or not bt.any():
        bf = 0.0
    else:
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tol + 1, 2 * tol + 1))
        near_t = cv2.dilate(bt.astype(np.uint8), disk).astype(bool)
        near_p = cv2.dilate(bp.astype(np.uint8), disk).astype(bool)
        precision, recall = (bp & near_t).sum() / bp.sum(), (bt & near_p).sum() / bt.sum()
        bf = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"iou": float(iou), "f1": float(f1), "boundary_f": float(bf)}


# --------------------------------------------------------------------------- real photos


def real_pairs(folder: Path) -> list[tuple[Path, Path]]:
    """Photos of ``folder`` with their masks (``NAME.mask.png`` beside them or in masks/)."""
    from .infer import list_photos, mask_of

    if not folder.is_dir():
        raise UserError(f"--real: no such folder: {folder}")
    pairs = []
    for photo in list_photos(folder):
        mask = mask_of(photo, folder)
        if mask is None and (folder / "masks").is_dir():
            mask = mask_of(photo, folder / "masks")
        if mask is not None:
            pairs.append((photo, mask))
    if not pairs:
        raise UserError(
            f"--real: no photo in {folder} has a NAME.mask.png (beside it or in masks/)"
        )
    return pairs


def frame_valid(matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(256, 256) bool: frame pixels that come from inside a photo of ``shape`` (H, W)."""
    ones = np.ones(shape, np.float32)
    size = (CANONICAL_SIZE, CANONICAL_SIZE)
    warped = cv2.warpAffine(ones, matrix, size, flags=cv2.INTER_LINEAR, borderValue=0)
    return warped > 0.999


def score_real(pairs: list[tuple[Path, Path]], segmenter) -> tuple[list[dict], list, list[str]]:
    """Rows per real photo, the sheet's tiles (:func:`outline_sheet`), skip notes."""
    from tqdm import tqdm

    from .infer import align_photo, read_mask, read_photo

    rows, tiles, notes = [], [], []
    for photo_path, mask_path in tqdm(pairs, desc="real photos", unit="photo"):
        try:
            photo = read_photo(photo_path)
            true = read_mask(mask_path, photo.shape[:2])
            aligned = align_photo(photo, true)
        except UserError as exc:
            notes.append(f"{photo_path.name}: skipped ({exc.message})")
            continue
        valid = frame_valid(aligned.matrix, photo.shape[:2])
        pred = segmenter.masks([aligned.image])[0]
        scores = mask_scores(pred, aligned.mask, valid)
        rows.append(
            {
                "key": photo_path.stem,
                "source": "real",
                "category": "real",
                "coverage": float((aligned.mask[valid] > 0).mean()) if valid.any() else math.nan,
                "valid_fraction": float(valid.mean()),
                **scores,
            }
        )
        label = f"{photo_path.stem}  IoU {scores['iou']:.3f}"
        tiles.append((label, aligned.image, aligned.mask, pred, valid))
    return rows, tiles, notes


def outlines(
    image: np.ndarray, true: np.ndarray, pred: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    """``image`` with the true mask's outline in green and the predicted one in red.

    With ``valid`` (the frame pixels from inside the photo), what lies outside is darkened
    and both outlines are drawn only inside it, as the scores count them: a mask running
    out of the photo gets no outline along the photo's edge.
    """
    img = np.asarray(image, np.uint8).copy()
    keep = np.ones(img.shape[:2], bool) if valid is None else np.asarray(valid) > 0
    inner = cv2.erode(keep.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    img[~keep] = img[~keep] // 3
    kernel = np.ones((2, 2), np.uint8)
    for mask, colour in ((true, (0, 220, 0)), (pred, (255, 30, 30))):
        edge = boundary((np.asarray(mask) > 0) & keep) & inner
        img[(cv2.dilate(edge.astype(np.uint8), kernel) > 0) & keep] = colour
    return img


def outline_sheet(tiles: list, path: Path, tile: int = 256, columns: int = 4) -> Path:
    """``(label, frame, true, pred[, valid])`` tiles drawn by :func:`outlines`, labelled."""
    from PIL import Image, ImageDraw

    rows = max(1, math.ceil(len(tiles) / columns))
    label = 18
    sheet = Image.new("RGB", (columns * tile, rows * (tile + label)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (text, image, true, pred, *valid) in enumerate(tiles):
        img = outlines(image, true, pred, valid[0] if valid else None)
        x, y = (i % columns) * tile, (i // columns) * (tile + label)
        sheet.paste(Image.fromarray(img).resize((tile, tile)), (x, y + label))
        draw.text((x + 4, y + 3), text, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


# --------------------------------------------------------------------------- synthetic split


def truth_of(sample, target: str) -> np.ndarray:
    """The mask a segmenter trained on ``target`` (``segment.target``) is scored against."""
    if target == "object" and sample.object_mask is not None:
        return sample.object_mask
    return sample.mask


def score_synthetic(samples, segmenter, batch_size: int = 16) -> list[dict]:
    """One row per ``evaluate.EvalSample``: its category, coverage and scores, against
    :func:`truth_of` the segmenter's ``segment.target``."""
    from tqdm import tqdm

    target = segmenter.config["segment"]["target"]
    rows = []
    bar = tqdm(total=len(samples), desc="segmenting", unit="sample")
    for i in range(0, len(samples), batch_size):
        chunk = samples[i : i + batch_size]
        preds = segmenter.masks([s.input for s in chunk])
        for s, pred in zip(chunk, preds, strict=True):
            truth = truth_of(s, target)
            row = {"key": s.key, "source": "synthetic", "category": s.category}
            coverage = float((truth > 0).mean())
            rows.append(row | {"coverage": coverage} | mask_scores(pred, truth))
        bar.update(len(chunk))
    bar.close()
    return rows


def _line(name: str, part) -> str:
    cells = " | ".join(f"{part[m].mean():.4f}" for m in METRICS)
    return f"| {name} | {len(part)} | {cells} |"


#: How the summary names what the synthetic samples are scored against (``truth_of``).
TRUTH_NAMES = {
    "object": "the occluders' own pixels (object.png; mask.png in shards without it)",
    "mask": "every pixel the compositor changed (mask.png: shadows and soft rims included)",
}


def summary_markdown(
    frame, checkpoint: Path, data: Path, split: str, real, notes, target: str = "mask"
) -> str:
    """segmenter_summary.md: overall, per category, per coverage bin, per real photo;
    ``target``: the checkpoint's ``segment.target`` (what synthetic samples are scored on)."""
    from .evaluate import COVERAGE_BINS, _bin_name

    head = ["| Set | n | IoU ↑ | F1 ↑ | Boundary F ↑ |", "|---|---:|---:|---:|---:|"]
    syn, rl = frame[frame["source"] == "synthetic"], frame[frame["source"] == "real"]
    out = [
        "# Occlusion segmenter evaluation",
        "",
        f"- checkpoint: `{checkpoint}`",
        f"- synthetic: `{data}`, split `{split}`; scored in the 256x256 frame against "
        f"{TRUTH_NAMES[target]}",
        f"- real: `{real}`; each photo aligned to the frame as fdsgan-infer aligns it, scored "
        "in the frame's pixels that come from inside the photo"
        if real
        else "- real: none (`--real` not given)",
        f"- boundary F tolerance: {BOUNDARY_TOL} px of the 256x256 frame; means of per-image "
        "values",
        "",
        "## Overall",
        "",
        *head,
    ]
    if len(syn):
        out.append(_line(f"synthetic `{split}`", syn))
    if len(rl):
        out.append(_line("real photos", rl))
    if len(syn):
        out += ["", "## Synthetic, per occluder category", "", *head]
        out += [_line(c, syn[syn["category"] == c]) for c in sorted(syn["category"].unique())]
        out += ["", "## Synthetic, per mask coverage", "", *head]
        for lo, hi in COVERAGE_BINS:
            part = syn[(syn["coverage"] >= lo) & (syn["coverage"] < hi)]
            if len(part):
                out.append(_line(_bin_name(lo, hi), part))
    if len(rl):
        out += ["", "## Real photos, per photo", "", *head]
        out += [_line(r["key"], rl[rl["key"] == r["key"]]) for _, r in rl.iterrows()]
    if notes:
        out += ["", "## Real photos skipped", ""] + [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"


def evaluate_segmenter(
    checkpoint: Path,
    data: Path | None,
    out: Path,
    split: str = "test",
    real: Path | None = None,
    limit: int | None = None,
    device: str = "auto",
    batch_size: int = 16,
) -> dict[str, Path]:
    """Score a segmenter checkpoint; writes the csv, the summary and (``real``) the sheet."""
    import pandas as pd

    from .evaluate import load_split
    from .segmenter import Segmenter

    segmenter = Segmenter.from_checkpoint(checkpoint, device)
    pairs = real_pairs(real) if real is not None else []
    rows = score_synthetic(load_split(data, split, limit), segmenter, batch_size) if data else []
    tiles, notes = [], []
    if pairs:
        real_rows, tiles, notes = score_real(pairs, segmenter)
        rows += real_rows
    if not rows:
        raise UserError("nothing to score: give --data, --real or both")
    frame = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out / "segmenter_metrics.csv", "summary": out / "segmenter_summary.md"}
    frame.to_csv(paths["metrics"], index=False)
    target = segmenter.config["segment"]["target"]
    text = summary_markdown(frame, checkpoint, data, split, real, notes, target)
    paths["summary"].write_text(text, encoding="utf-8")
    if tiles:
        paths["sheet"] = outline_sheet(tiles, out / "real_sheet.png")
    return paths
