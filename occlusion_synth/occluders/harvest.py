"""``occsynth occluders harvest``: real occluders cut from photos, as library assets.

Three kinds of input, all of one ``--category``:

- **Face photos with masks**: ``NAME.jpg`` + ``NAME.mask.png`` (beside it or in a ``masks/``
  subfolder; one channel, 255 = the occluder; the layout ``fdsgan-eval --real`` reads). The
  photo is aligned to the canonical 256x256 frame by the builder's own landmark code
  (``faces.load_aligned``), the mask is warped by the same matrix, and the object is cut
  there. Face-worn objects keep the source face's canonical landmarks as anchors: a mask or
  scarf uses ``face_warp`` (placing it on another face is the thin-plate-spline warp from the
  source's landmarks to the target's that drawn masks take), eyewear the ``eyewear`` rule on
  the source's eyes. A prop (a hand) gets a target landmark it covers and the image edge it
  enters from, set so that placing it back on its own face is the identity.
- **Cut-outs**: RGBA PNGs of an object alone (transparent background). Props get a target
  point (the end away from their entry edge), an entry point (where the object meets the
  image border, else the category's usual side) and a grip point; their ranges and targets
  come from a drawn asset of the category. Face-worn cut-outs get anchors estimated from
  their outline (noted in the sidecar).
- **COCO instance annotations** (``pycocotools``, polygons or RLE), filtered by category
  name; face-worn objects go the face-photo way, props the cut-out way.

Every mask is refined into a soft matte at its outline and the edge colours are
decontaminated (``matting``). Each asset is an RGBA PNG plus a sidecar in the library's
schema with a ``harvest`` block: source file, the user's licence text, ``auto_masked``,
the source face's skin statistics for ``harmonise`` and a quality note.

A source that cannot be used (unreadable, mask of the wrong size, empty or covering the
whole photo, no face for a face-worn category) is rejected with a one-line reason, printed
and written to ``LIBDIR/rejects.csv``. Everything is written into a temporary folder inside
``LIBDIR`` and moved into place at the end, so an interrupted or failed run leaves nothing
half-written.
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import io
import json
import os
import re
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ..canonical import CANONICAL_SIZE, MEAN_SHAPE, POINT_NAMES, Landmarks
from ..categories import default_traits
from ..errors import UserError
from ..imageio import MAX_PIXELS, Reject, read_rgb
from . import matting
from .harmonise import skin_ref
from .schema import TARGET_NAMES

S = CANONICAL_SIZE
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
MASK_SUFFIX = ".mask.png"
#: A mask covering more than this share of its photo leaves nothing to cut from.
FULL_MASK = 0.97
#: A mask with fewer pixels than this is empty.
MIN_MASK_PX = 16
#: Longest side of a cut-out asset (larger ones are reduced).
CUTOUT_MAX_SIDE = 512
#: ``face_warp`` anchors: the landmarks within this many inter-ocular distances of the object.
NEAR_IOD = 0.35
MIN_WARP_ANCHORS = 4
#: Object pixels in the 2-px band along the photo's edge, in inter-ocular distances: a
#: face-worn object cut by the edge over ``CUT_IOD`` is incomplete and refused (a straight cut
#: across a mask gives a sample away); a held object cut over ``EXTEND_IOD`` continues to the
#: image edge (an arm), below it it does not (replicating a fingertip draws a streak).
CUT_IOD = 1.5
EXTEND_IOD = 1.0
#: Straight directions from an object to each image edge (for finding its entry edge).
EDGE_AXES = {"top": (0.0, -1.0), "bottom": (0.0, 1.0), "left": (-1.0, 0.0), "right": (1.0, 0.0)}
#: Props that a hand holds: they get a grip point.
HELD_PROPS = frozenset({"cup", "microphone", "phone", "food", "book"})
REJECTS_FILE = "rejects.csv"


@dataclass
class Item:
    """One source: a photo with a mask file, a cut-out, or one COCO instance."""

    name: str  # what the user sees (file name, or file#annotation)
    stem: str  # the asset name's own part
    kind: str  # face_photo | cutout | coco
    photo: Path
    mask_path: Path | None = None
    mask: np.ndarray | None = None  # a COCO instance's mask
    auto_masked: bool = False  # no mask file: the mask comes from Options.masker


@dataclass
class Asset:
    """A harvested occluder before it is written: RGBA pixels and its sidecar."""

    name: str
    rgba: np.ndarray
    sidecar: dict[str, Any]


@dataclass
class HarvestReport:
    """What a harvest wrote (``assets``: final PNG paths) and rejected (source, reason)."""

    assets: list[Path] = field(default_factory=list)
    rejects: list[tuple[str, str]] = field(default_factory=list)
    rejects_csv: Path | None = None


# --------------------------------------------------------------------------- inputs


def slug(text: str) -> str:
    """A name part made of lower-case letters, digits and ``_``."""
    s = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return s or "item"


def _mask_for(photo: Path) -> Path | None:
    stem = photo.name[: -len(photo.suffix)]
    for cand in (
        photo.with_name(stem + MASK_SUFFIX),
        photo.parent / "masks" / (stem + MASK_SUFFIX),
    ):
        if cand.is_file():
            return cand
    return None


def _has_transparency(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
                im.mode == "P" and "transparency" in im.info
            )
    except Exception:  # noqa: BLE001 - an unreadable file is rejected when it is read
        return False


def discover(
    paths: list[Path], match: str | None = None, auto_masks: bool = False
) -> tuple[list[Item], list[tuple[str, str]]]:
    """The sources under ``paths`` (folders, not recursive, or single files); ``match``: a
    glob on file names; ``auto_masks``: a photo without a mask file is taken all the same
    (its mask is predicted). Returns the items and the files rejected on sight."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise UserError(f"--from {p}: no such file or folder")
    items: list[Item] = []
    rejects: list[tuple[str, str]] = []
    for f in files:
        if f.name.lower().endswith(MASK_SUFFIX) or f.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if match and not fnmatch.fnmatch(f.name, match):
            continue
        stem = f.name[: -len(f.suffix)]
        mask = _mask_for(f)
        if mask is not None:
            items.append(Item(f.name, slug(stem), "face_photo", f, mask_path=mask))
        elif f.suffix.lower() == ".png" and _has_transparency(f):
            items.append(Item(f.name, slug(stem), "cutout", f))
        elif auto_masks:
            items.append(Item(f.name, slug(stem), "face_photo", f, auto_masked=True))
        else:
            rejects.append(
                (
                    f.name,
                    f"no mask ({stem}{MASK_SUFFIX} beside it or in masks/) and no transparency",
                )
            )
    return items, rejects


def coco_items(
    coco_file: Path, images: list[Path], names: list[str]
) -> tuple[list[Item], list[tuple[str, str]]]:
    """One item per (non-crowd) instance of the COCO categories ``names`` in ``coco_file``;
    image files are looked up by ``file_name`` under the folders ``images``."""
    try:
        from pycocotools.coco import COCO
    except ImportError:
        raise UserError("--coco needs pycocotools: pip install pycocotools") from None
    if not coco_file.is_file():
        raise UserError(f"--coco {coco_file}: no such file")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(coco_file))
    except Exception as exc:  # noqa: BLE001 - any failure to parse is the file's fault
        raise UserError(f"--coco {coco_file}: not a COCO annotation file ({exc})") from None
    known = {c["name"]: c["id"] for c in coco.loadCats(coco.getCatIds())}
    missing = [n for n in names if n not in known]
    if missing:
        raise UserError(
            f"COCO category {missing[0]!r} is not in {coco_file.name} "
            f"(it has: {', '.join(sorted(known)) or 'none'})"
        )
    folders = [p if p.is_dir() else p.parent for p in images]
    items: list[Item] = []
    rejects: list[tuple[str, str]] = []
    cat_ids = [known[n] for n in names]
    for ann in coco.loadAnns(coco.getAnnIds(catIds=cat_ids, iscrowd=False)):
        info = coco.imgs.get(ann["image_id"])
        label = f"{info['file_name'] if info else ann['image_id']}#{ann['id']}"
        if info is None:
            rejects.append((label, "annotation names an image that the file does not list"))
            continue
        photo = next(
            (d / info["file_name"] for d in folders if (d / info["file_name"]).is_file()), None
        )
        if photo is None:
            rejects.append((label, f"image {info['file_name']} not found under --from"))
            continue
        try:
            mask = coco.annToMask(ann).astype(bool)
        except Exception as exc:  # noqa: BLE001 - a malformed segmentation
            rejects.append((label, f"unreadable segmentation ({exc})"))
            continue
        stem = slug(Path(info["file_name"]).stem) + f"_{ann['id']}"
        items.append(Item(label, stem, "coco", photo, mask=mask))
    if not items and not rejects:
        raise UserError(f"no instance of {', '.join(names)} in {coco_file.name}")
    return items, rejects


def read_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A mask file as a boolean array (> 127); ``Reject`` when unreadable or of the wrong
    size (``size``: the photo's width, height)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise Reject(f"mask {path.name} too large")
                if im.size != size:
                    raise Reject(
                        f"mask {path.name} is {im.width}x{im.height}, the photo {size[0]}x{size[1]}"
                    )
                m = np.asarray(im.convert("L"))
    except Reject:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is an unreadable mask
        raise Reject(f"unreadable mask {path.name} ({exc})") from None
    return m > 127


def check_mask(mask: np.ndarray) -> None:
    """``Reject`` an empty mask or one covering (nearly) the whole photo."""
    n = int(mask.sum())
    if n < MIN_MASK_PX:
        raise Reject("empty mask (no occluder pixel)" if n == 0 else f"mask has only {n} pixels")
    if n > FULL_MASK * mask.size:
        raise Reject(f"mask covers {n / mask.size:.0%} of the photo (nothing else is left)")


def read_cutout(path: Path) -> np.ndarray:
    """An RGBA cut-out as HxWx4 uint8; ``Reject`` when unreadable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise Reject("image too large")
                rgba = np.asarray(im.convert("RGBA"), np.uint8).copy()
    except Reject:
        raise
    except Exception as exc:  # noqa: BLE001
        raise Reject(f"unreadable image ({exc})") from None
    return rgba


# --------------------------------------------------------------------------- geometry


def warp_map(values: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """A float map (source pixels) resampled into the frame through ``matrix``, zero outside
    the photo; area-averaged first when the photo is shrunk (no aliasing)."""
    v = values.astype(np.float32)
    m = np.asarray(matrix, np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < 0.8:
        h, w = v.shape[:2]
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        v = cv2.resize(v, (nw, nh), interpolation=cv2.INTER_AREA)
        rx, ry = nw / w, nh / h
        pre = np.array([[rx, 0.0, 0.5 * rx - 0.5], [0.0, ry, 0.5 * ry - 0.5], [0, 0, 1]])
        m = (np.vstack([m, [0, 0, 1]]) @ np.linalg.inv(pre))[:2]
    return cv2.warpAffine(
        v, m, (S, S), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0
    )


def _bbox(alpha: np.ndarray, pad: int) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(alpha > 0)
    h, w = alpha.shape
    return (
        max(int(xs.min()) - pad, 0),
        max(int(ys.min()) - pad, 0),
        min(int(xs.max()) + pad + 1, w),
        min(int(ys.max()) + pad + 1, h),
    )


def _rgba(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = np.round(np.clip(alpha, 0, 1) * 255).astype(np.uint8)
    rgb = np.round(np.clip(colour, 0, 1) * 255).astype(np.uint8)
    rgb[a == 0] = 0
    return np.dstack([rgb, a])


def _edge_distance(p: np.ndarray, d: np.ndarray, size: float) -> float:
    ts = [
        ((size - p[k]) / d[k]) if d[k] > 1e-6 else (-p[k] / d[k])
        for k in range(2)
        if abs(d[k]) > 1e-6
    ]
    return float(max(min(ts), 0.0)) if ts else 0.0


def _entry_edge(alpha: np.ndarray, valid: np.ndarray) -> tuple[str | None, int]:
    """The edge (``EDGE_AXES`` name) where the object is cut by the border of ``valid`` (the
    photo inside the frame), and how many object pixels touch it; (None, 0) if none do."""
    solid = (alpha > 0.5).astype(np.uint8)
    pad = np.pad(valid.astype(np.uint8), 1)
    inner = cv2.erode(pad, np.ones((5, 5), np.uint8))[1:-1, 1:-1]
    rim = (valid > 0) & (inner == 0) & (solid > 0)
    n = int(rim.sum())
    if n < 3:
        return None, 0
    ys, xs = np.nonzero(solid)
    centre = np.array([xs.mean(), ys.mean()])
    ry, rx = np.nonzero(rim)
    v = np.array([rx.mean(), ry.mean()]) - centre
    if np.linalg.norm(v) < 1e-6:
        return None, 0
    best = max(EDGE_AXES, key=lambda e: float(np.dot(v, EDGE_AXES[e])))
    return best, n


def _rule_for(category: str, edge: str) -> str:
    """The held-object rule for an object entering from ``edge`` that ``category`` allows."""
    rules = default_traits(category).rules
    wanted = {"top": "from_above", "bottom": "from_below"}.get(edge, "from_edge")
    for r in (wanted, "from_edge", "from_below", "from_above"):
        if not rules or r in rules:
            return r
    return rules[0]


def _edge_dir(edge: str) -> np.ndarray:
    from ..placement import EDGE_DIRS

    d = np.asarray(EDGE_DIRS[edge], np.float64)
    return d / np.linalg.norm(d)


def _kind_of(category: str, from_face: bool) -> str:
    """``face_warp``, ``eyewear`` or ``held``: how an occluder of ``category`` is placed."""
    rules = default_traits(category).rules
    if not rules:  # a user's own category
        return "face_warp" if from_face else "held"
    if "face_warp" in rules:
        return "face_warp"
    if "eyewear" in rules:
        return "eyewear"
    return "held"


def _drawn_template(category: str) -> dict[str, Any] | None:
    """The sidecar of the first drawn asset of ``category`` with a held-object rule."""
    from .library import default_dir

    for side in sorted((default_dir() / category).glob("*.json")):
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if str(meta.get("placement", {}).get("rule", "")).startswith("from_"):
            return meta
    return None


# --------------------------------------------------------------------------- cutting


@dataclass
class Options:
    """How sources are turned into assets."""

    category: str
    licence: str = ""
    landmarks: str = "auto"
    matting: str = "auto"
    #: ``rgb -> mask`` for sources without a mask file (``--masks auto``: a segmenter's,
    #: ``fdsgan_train.segmenter.harvest_masker``; occlusion_synth never imports torch)
    masker: Callable[[np.ndarray], np.ndarray] | None = None


def _cut_from_face(item: Item, rgb: np.ndarray, mask: np.ndarray, opts: Options, face) -> Asset:
    """A face photo's object, cut in the canonical frame of its aligned ``face``."""
    lm: Landmarks = face.landmarks
    iod = max(lm.inter_ocular, 1.0)
    matrix = np.asarray(face.matrix, np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    warped = warp_map(mask.astype(np.float32), matrix)
    inside = warp_map(np.ones(mask.shape, np.float32), matrix) > 0.99
    binary = warped > 0.5
    if int(binary.sum()) < MIN_MASK_PX:
        raise Reject("the occluder lies outside the aligned face's 256x256 frame")
    kind = _kind_of(opts.category, True)
    method = matting.resolve_method(opts.matting)
    band = int(np.clip(np.ceil(max(2.0, scale)), 2, 4))
    image = face.image.astype(np.float32) / 255.0
    alpha = matting.refine(image, binary, band, method)
    alpha *= inside  # beyond the photo the frame holds only a smeared fill
    if not (alpha > 0.5).any():
        raise Reject("the occluder lies outside the photo")
    colour = matting.decontaminate(image, alpha, method)
    outside = float((binary & ~inside).sum()) / max(int(binary.sum()), 1)
    ref = skin_ref(face.image, lm, cv2.dilate((alpha > 0).astype(np.uint8), np.ones((7, 7))) > 0)

    placement: dict[str, Any]
    material: dict[str, Any]
    grip = None
    extend = False
    valid = inside.astype(np.uint8)
    edge, touching = _entry_edge(alpha, valid)
    if kind != "held" and touching >= CUT_IOD * iod:
        raise Reject(
            f"the occluder runs out of the photo at its {edge} edge ({touching} px): incomplete"
        )
    if kind == "held":
        # an arm cut by the photo's edge continues to the image edge; a fingertip touching
        # it does not (replicating a narrow border row draws a streak)
        extend = touching >= EXTEND_IOD * iod
        edge = edge if extend else None
        anchors_full, placement, material, _ = _held_from_face(alpha, lm, opts.category, edge)
    else:
        anchors_full, placement, material = _worn_anchors(alpha, lm, kind)
    pad = 0 if extend else 2
    x0, y0, x1, y1 = _bbox(alpha, pad)
    rgba = _rgba(colour[y0:y1, x0:x1], alpha[y0:y1, x0:x1])
    off = np.array([x0, y0], np.float64)
    anchors = {k: _r2(np.asarray(v) - off) for k, v in anchors_full.items()}
    if kind == "held":
        placement["width_iod"] = [
            round((x1 - x0) / iod * 0.97, 4),
            round((x1 - x0) / iod * 1.03, 4),
        ]
        placement["extend"] = extend
    _shift_contact(material, off)
    quality = _quality(alpha[y0:y1, x0:x1], method, band)
    quality.update(
        {
            "source_size": [int(mask.shape[1]), int(mask.shape[0])],
            "mask_px": int(mask.sum()),
            "frame_coverage": round(float(alpha.sum()) / (S * S), 4),
            "frame_scale": round(scale, 4),
            "outside_photo": round(outside, 4),
            "cut_by_photo_edge_px": int(touching),
            "landmarks": lm.provider,
            "anchors_estimated": False,
        }
    )
    if scale > 1.5:
        quality["note"] = f"low resolution: the source was enlarged {scale:.1f}x into the frame"
    return _asset(item, opts, rgba, anchors, placement, material, ref.as_json(), grip, quality)


def _r2(p) -> list[float]:
    return [round(float(p[0]), 2), round(float(p[1]), 2)]


def _worn_anchors(alpha: np.ndarray, lm: Landmarks, kind: str):
    """Anchors (frame pixels), placement and material of a face-worn object."""
    iod = max(lm.inter_ocular, 1.0)
    if kind == "eyewear":
        anchors = {k: lm[k] for k in ("left_eye", "right_eye")}
        bridge = lm["nose_bridge"]
        u = (lm["right_eye"] - lm["left_eye"]) / iod
        pads = [bridge + s * 0.12 * iod * u + np.array([0, 0.12 * iod]) for s in (-1, 1)]
        placement = {
            "rule": "eyewear",
            "scale_jitter": [0.98, 1.05],
            "rotation_jitter_deg": [-3.0, 3.0],
            "offset_iod": {"x": [-0.02, 0.02], "y": [-0.03, 0.03]},
        }
        points = [[*_r2(p), round(0.05 * iod, 2)] for p in pads]
        material = {
            "gloss": 0.0,
            "contact": {"description": "nose pads on the bridge", "points": points, "edge_px": 0},
        }
        return anchors, placement, material
    # face_warp: the landmarks on or near the object
    outside = (alpha <= 0.5).astype(np.uint8)
    dist = cv2.distanceTransform(outside, cv2.DIST_L2, 3)
    scored = []
    for name in POINT_NAMES:
        x, y = lm[name]
        xi, yi = int(np.clip(round(x), 0, S - 1)), int(np.clip(round(y), 0, S - 1))
        d = float(dist[yi, xi]) + float(np.hypot(x - xi, y - yi)) * (
            not (0 <= x < S and 0 <= y < S)
        )
        scored.append((d, name))
    scored.sort()
    chosen = [n for d, n in scored if d <= NEAR_IOD * iod]
    for _, n in scored:
        if len(chosen) >= MIN_WARP_ANCHORS:
            break
        if n not in chosen:
            chosen.append(n)
    anchors = {n: lm[n] for n in POINT_NAMES if n in chosen}
    placement = {
        "rule": "face_warp",
        "scale_jitter": [0.98, 1.03],
        "rotation_jitter_deg": [-2.0, 2.0],
        "offset_iod": {"x": [-0.02, 0.02], "y": [-0.03, 0.03]},
    }
    material = {
        "gloss": 0.0,
        "contact": {"description": "the rim rests on the skin", "points": [], "edge_px": 4},
    }
    return anchors, placement, material


def _held_from_face(alpha: np.ndarray, lm: Landmarks, category: str, edge: str | None):
    """Anchors (frame pixels) of a held object cut from a face photo: ``target`` on the
    landmark target it covers most deeply, ``entry`` straight towards its entry edge, so that
    the ``from_*`` rule puts it back where it was on its own face."""
    from ..placement import target_point

    iod = max(lm.inter_ocular, 1.0)
    solid = (alpha > 0.5).astype(np.uint8)
    depth = cv2.distanceTransform(solid, cv2.DIST_L2, 3)
    outside = cv2.distanceTransform(1 - solid, cv2.DIST_L2, 3)
    best, best_score = None, -np.inf
    for t in TARGET_NAMES:
        p = target_point(lm, t)
        xi, yi = int(np.clip(round(p[0]), 0, S - 1)), int(np.clip(round(p[1]), 0, S - 1))
        score = float(depth[yi, xi]) if solid[yi, xi] else -float(outside[yi, xi])
        if score > best_score:
            best, best_score = t, score
    assert best is not None
    if edge is None:
        rule = default_traits(category).rules
        edge = "top" if rule and rule[0] == "from_above" else "bottom"
    target = target_point(lm, best)
    d = _edge_dir(edge)
    reach = max(_edge_distance(target, d, S - 1), 0.3 * iod)
    entry = target + d * reach
    rule = _rule_for(category, edge)
    placement = {
        "rule": rule,
        "rotation_jitter_deg": [-6.0, 6.0],
        "offset_iod": {"x": [-0.08, 0.08], "y": [-0.08, 0.08]},
        "targets": {best: [edge]},
        "flip": False,
    }
    material = {
        "gloss": 0.0,
        "contact": {
            "description": "where it rests on the face",
            "points": [[*_r2(target), round(0.3 * iod, 2)]],
            "edge_px": 0,
        },
    }
    return {"target": target, "entry": entry}, placement, material, edge


def _shift_contact(material: dict[str, Any], off: np.ndarray) -> None:
    pts = material["contact"]["points"]
    material["contact"]["points"] = [
        [round(x - float(off[0]), 2), round(y - float(off[1]), 2), r] for x, y, r in pts
    ]


def _quality(alpha: np.ndarray, method: str, band: int) -> dict[str, Any]:
    return {
        "area_px": int(round(float(alpha.sum()))),
        "edge_softness_px": round(matting.edge_softness(alpha), 3),
        "matting": method,
        "band_px": int(band),
    }


def _cut_out(
    item: Item, rgb01: np.ndarray, alpha: np.ndarray, opts: Options, refine: bool
) -> Asset:
    """A cut-out (an object alone): matte, crop, reduce, and estimated anchors."""
    method = matting.resolve_method(opts.matting)
    if not (alpha > 0.5).any():
        raise Reject("the cut-out is fully transparent")
    x0, y0, x1, y1 = _bbox(alpha, 0)
    h, w = alpha.shape
    band = int(np.clip(round(max(x1 - x0, y1 - y0) / 200), 2, 6))
    if refine:
        binary = alpha > 0.5
        alpha = matting.refine(rgb01, binary, band, method)
    colour = matting.decontaminate(rgb01, alpha, method) if refine else rgb01
    # where the object is cut by the picture's border
    edge, _ = _entry_edge(alpha, np.ones(alpha.shape, np.uint8))
    extend = edge is not None
    x0, y0, x1, y1 = _bbox(alpha, 0 if extend else 2)
    colour, alpha = colour[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
    f = min(1.0, CUTOUT_MAX_SIDE / max(colour.shape[:2]))
    if f < 1.0:  # reduce premultiplied, so no background colour bleeds in
        size = (max(1, round(colour.shape[1] * f)), max(1, round(colour.shape[0] * f)))
        prem = cv2.resize(colour * alpha[..., None], size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
        colour = prem / np.maximum(alpha, 1e-6)[..., None]
    rgba = _rgba(colour, alpha)
    kind = _kind_of(opts.category, False)
    anchors, placement, material, grip = _estimated_anchors(alpha, opts.category, kind, edge)
    if kind == "held":
        placement["extend"] = extend
    quality = _quality(alpha, method if refine else "given", band)
    quality.update({"source_size": [int(w), int(h)], "anchors_estimated": True})
    return _asset(item, opts, rgba, anchors, placement, material, None, grip, quality)


def _estimated_anchors(alpha: np.ndarray, category: str, kind: str, edge: str | None):
    """Anchors of an object with no face: from its outline (and a drawn asset's ranges)."""
    solid = alpha > 0.5
    ys, xs = np.nonzero(solid)
    h, w = alpha.shape
    if kind == "eyewear":
        mid = (xs.min() + xs.max()) / 2
        left, right = xs < mid, xs >= mid
        anchors = {
            "left_eye": [float(xs[left].mean()), float(ys[left].mean())],
            "right_eye": [float(xs[right].mean()), float(ys[right].mean())],
        }
        iod = anchors["right_eye"][0] - anchors["left_eye"][0]
        placement = {
            "rule": "eyewear",
            "scale_jitter": [0.98, 1.08],
            "rotation_jitter_deg": [-3.0, 3.0],
            "offset_iod": {"x": [-0.02, 0.02], "y": [-0.03, 0.05]},
        }
        pads = [
            [mid + s * 0.12 * iod, anchors["left_eye"][1] + 0.12 * iod, 0.05 * iod] for s in (-1, 1)
        ]
        material = {"gloss": 0.0, "contact": {"description": "nose pads", "points": pads}}
        return {k: _r2(v) for k, v in anchors.items()}, placement, material, None
    if kind == "face_warp":
        # the mean face's lower half fitted to the outline: bridge at the top, chin at the
        # bottom, jaw points at the sides
        m = MEAN_SHAPE
        from .masks import MASK_ANCHORS as names

        mx0, mx1 = m["jaw_left"][0] - 12.0, m["jaw_right"][0] + 12.0
        my0, my1 = m["nose_bridge"][1] - 4.0, m["chin"][1] + 6.0
        sx = (xs.max() - xs.min() + 1) / (mx1 - mx0)
        sy = (ys.max() - ys.min() + 1) / (my1 - my0)
        anchors = {
            n: _r2((xs.min() + (m[n][0] - mx0) * sx, ys.min() + (m[n][1] - my0) * sy))
            for n in names
        }
        placement = {
            "rule": "face_warp",
            "scale_jitter": [0.97, 1.04],
            "rotation_jitter_deg": [-2.0, 2.0],
            "offset_iod": {"x": [-0.02, 0.02], "y": [-0.04, 0.04]},
        }
        edge_px = max(2, int(round(4 * sx)))
        material = {
            "gloss": 0.0,
            "contact": {"description": "the rim", "points": [], "edge_px": edge_px},
        }
        return anchors, placement, material, None
    # held: target at the end away from the entry edge, entry at the entry edge
    if edge is None:
        rules = default_traits(category).rules
        edge = "top" if rules and rules[0] == "from_above" else "bottom"
    ax = np.asarray(EDGE_AXES[edge])
    proj = xs * ax[0] + ys * ax[1]
    lo, hi = proj.min(), proj.max()
    span = max(hi - lo, 1.0)
    far = proj <= lo + 0.12 * span
    near = proj >= hi - 0.05 * span
    target = np.array([xs[far].mean(), ys[far].mean()])
    entry = np.array([xs[near].mean(), ys[near].mean()])
    if np.linalg.norm(entry - target) < 4:
        entry = target + ax * max(h, w) * 0.5
    template = _drawn_template(category)
    if template is not None:
        pl = dict(template["placement"])
    else:
        pl = {
            "rule": _rule_for(category, edge),
            "rotation_jitter_deg": [-10.0, 10.0],
            "offset_iod": {"x": [-0.15, 0.15], "y": [-0.1, 0.1]},
            "targets": {"mouth": ["bottom"]},
            "width_iod": [2.0, 2.6],
            "flip": True,
        }
    placement = {k: v for k, v in pl.items() if k != "extend"}
    grip = None
    if category in HELD_PROPS:
        grip = _r2(target + 0.65 * (entry - target))
    r = round(0.2 * max(w, h), 2)
    material = {
        "gloss": 0.0,
        "contact": {"description": "where it meets the face", "points": [[*_r2(target), r]]},
    }
    return {"target": _r2(target), "entry": _r2(entry)}, placement, material, grip


def _asset(item, opts, rgba, anchors, placement, material, face_lab, grip, quality) -> Asset:
    name = f"{opts.category}_{item.stem}"
    if isinstance(anchors, dict):
        anchors = {k: _r2(v) for k, v in anchors.items()}
    provenance = f"harvested from {item.name} by occsynth occluders harvest"
    if opts.licence:
        provenance += f"; licence: {opts.licence}"
    sidecar = {
        "schema": 1,
        "category": opts.category,
        "name": name,
        "size": [int(rgba.shape[1]), int(rgba.shape[0])],
        "anchors": anchors,
        "placement": placement,
        "material": material,
        "provenance": provenance,
        "harvest": {
            "source": item.name,
            "licence": opts.licence,
            "auto_masked": item.auto_masked,
            "kind": item.kind,
            "face_lab": face_lab,
            "grip": grip,
            "quality": quality,
        },
    }
    return Asset(name, rgba, sidecar)


def harvest_item(item: Item, opts: Options) -> Asset:
    """Cut one source into an asset; ``Reject`` with the reason when it cannot be used."""
    from ..faces import FaceSource, load_aligned

    if item.kind == "cutout":
        rgba = read_cutout(item.photo)
        alpha = rgba[..., 3].astype(np.float32) / 255.0
        if not (alpha > 0.5).any():
            raise Reject("the cut-out is fully transparent")
        if (alpha > 0.5).mean() > FULL_MASK:
            raise Reject("the cut-out has (almost) no transparent pixel: not an object alone")
        binary = bool(np.isin(rgba[..., 3], (0, 255)).all())
        return _cut_out(item, rgba[..., :3].astype(np.float32) / 255.0, alpha, opts, binary)
    rgb, _ = read_rgb(item.photo)
    size = (rgb.shape[1], rgb.shape[0])
    if item.mask is not None:
        mask = item.mask
        if (mask.shape[1], mask.shape[0]) != size:
            raise Reject(
                f"annotation mask is {mask.shape[1]}x{mask.shape[0]}, the photo {size[0]}x{size[1]}"
            )
    elif item.auto_masked:
        if opts.masker is None:
            raise Reject("no mask file, and no segmenter to predict one")
        try:
            mask = opts.masker(rgb) > 0
        except UserError as exc:
            raise Reject(f"automatic mask: {exc.message}") from None
    else:
        assert item.mask_path is not None
        mask = read_mask(item.mask_path, size)
    check_mask(mask)
    worn = _kind_of(opts.category, True) != "held"
    src = FaceSource(id=item.name, path=item.photo)
    try:
        face = load_aligned(src, provider=opts.landmarks)
    except Reject as exc:
        face = None
        points = _padded_detection(rgb) if exc.reason == "no face found" else None
        if points is not None:
            with contextlib.suppress(Reject):
                face = load_aligned(src, provider=opts.landmarks, points=points)
        if face is None and worn:
            raise Reject(f"face cannot be aligned: {exc.reason}") from None
    if face is not None:
        return _cut_from_face(item, rgb, mask, opts, face)
    # a prop without a face to align to: cut it out of the photo as it is
    x0, y0, x1, y1 = _bbox(mask.astype(np.float32), 8)
    rgb01 = rgb[y0:y1, x0:x1].astype(np.float32) / 255.0
    return _cut_out(item, rgb01, mask[y0:y1, x0:x1].astype(np.float32), opts, True)


#: Margins (fractions of the longer side) of the grey border tried around a photo whose face
#: was not found: the face detector misses faces cropped tightly (a face filling the photo).
DETECT_PADS = (0.125, 0.25, 0.375, 0.5)


def _padded_detection(rgb: np.ndarray):
    """Landmarks found on ``rgb`` framed by a grey border (source pixels), or None."""
    from ..landmarks import SourcePoints, detect_points, get_detector

    h, w = rgb.shape[:2]
    for f in DETECT_PADS:
        p = int(round(f * max(h, w)))
        framed = cv2.copyMakeBorder(rgb, p, p, p, p, cv2.BORDER_CONSTANT, value=(128, 128, 128))
        found = detect_points(framed, get_detector())
        if found is not None and found.has_face:
            return SourcePoints(
                provider=found.provider,
                points={k: (x - p, y - p) for k, (x, y) in found.points.items()},
                dense=None if found.dense is None else found.dense - np.float32(p),
            )
    return None


# --------------------------------------------------------------------------- writing


def _read_rejects(path: Path) -> list[list[str]]:
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    return [r for r in rows[1:] if len(r) >= 3]


def harvest(
    sources: list[Path],
    category: str,
    out: Path,
    licence: str = "",
    coco: Path | None = None,
    coco_categories: list[str] | None = None,
    landmarks: str = "auto",
    matting_method: str = "auto",
    match: str | None = None,
    report: Callable[[str], None] = print,
    masker: Callable[[np.ndarray], np.ndarray] | None = None,
) -> HarvestReport:
    """Harvest every source into ``out/<category>/``; see the module docstring.

    ``report`` gets one line per rejected source. Raises ``UserError`` for a problem with
    the whole run (bad category, no sources, a COCO category that does not exist, nothing
    harvested); nothing is written then except ``rejects.csv`` when sources were rejected.
    """
    from ..landmarks import check_provider
    from .library import OccluderLibrary, load_occluder

    if not category.isidentifier():
        raise UserError(f"--category must be an identifier (letters, digits, _), got {category!r}")
    matting.resolve_method(matting_method)
    check_provider(landmarks)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    if coco is not None:
        if not coco_categories:
            raise UserError("--coco needs --coco-category NAME")
        items, rejects = coco_items(coco, sources, coco_categories)
    else:
        if coco_categories:
            raise UserError("--coco-category needs --coco FILE")
        items, rejects = discover(sources, match, auto_masks=masker is not None)
    if not items and not rejects:
        raise UserError(
            f"no photos with masks ({MASK_SUFFIX}) or RGBA cut-outs in "
            + ", ".join(str(s) for s in sources)
        )
    for name, reason in rejects:
        report(f"rejected {name}: {reason}")
    opts = Options(category, licence, landmarks, matting_method, masker)
    assets: list[tuple[Item, Asset]] = []
    used: set[str] = set()
    for item in items:
        try:
            asset = harvest_item(item, opts)
        except Reject as exc:
            rejects.append((item.name, exc.reason if hasattr(exc, "reason") else str(exc)))
            report(f"rejected {item.name}: {rejects[-1][1]}")
            continue
        if asset.name in used:
            rejects.append((item.name, f"asset name {asset.name} is taken by another source"))
            report(f"rejected {item.name}: {rejects[-1][1]}")
            continue
        used.add(asset.name)
        assets.append((item, asset))

    bundled = {o.name for o in OccluderLibrary.load().occluders}
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".harvest-tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    result = HarvestReport()
    try:
        staged: list[tuple[Path, Path]] = []
        for item, asset in assets:
            if asset.name in bundled:
                rejects.append((item.name, f"asset name {asset.name} is a bundled occluder's"))
                report(f"rejected {item.name}: {rejects[-1][1]}")
                continue
            folder = tmp / category
            folder.mkdir(parents=True, exist_ok=True)
            png = folder / f"{asset.name}.png"
            Image.fromarray(asset.rgba, "RGBA").save(png, optimize=True)
            png.with_suffix(".json").write_text(
                json.dumps(asset.sidecar, indent=1, sort_keys=True) + "\n", encoding="utf-8"
            )
            try:
                load_occluder(png)  # the library must accept what was written
            except UserError as exc:
                png.unlink()
                png.with_suffix(".json").unlink()
                rejects.append((item.name, f"unusable result ({exc.message})"))
                report(f"rejected {item.name}: {rejects[-1][1]}")
                continue
            staged.append((png, out / category / png.name))
        # rejects.csv: this run's rows replace earlier rows of the same sources
        seen = {i.name for i in items} | {n for n, _ in rejects}
        rows = [r for r in _read_rejects(out / REJECTS_FILE) if r[0] not in seen]
        rows += [[n, category, reason] for n, reason in rejects]
        rejects_tmp = tmp / REJECTS_FILE
        if rows:
            tmp.mkdir(parents=True, exist_ok=True)
            with rejects_tmp.open("w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(["source", "category", "reason"])
                w.writerows(rows)
        # move into place: sidecar first, then the image the library looks for
        for png, final in staged:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(png.with_suffix(".json"), final.with_suffix(".json"))
            os.replace(png, final)
            result.assets.append(final)
        if rows:
            os.replace(rejects_tmp, out / REJECTS_FILE)
            result.rejects_csv = out / REJECTS_FILE
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result.rejects = rejects
    return result
