"""An occluder sidecar parsed once into typed, frozen fields (the schema: ``library``'s docstring).

``parse_sidecar`` validates a decoded JSON object and returns a ``Sidecar``; every problem
is a ``UserError`` of one line naming the file. Placement, sampling and compositing read
these fields, never the JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..canonical import POINT_NAMES
from ..categories import CATEGORIES, CategoryTraits, default_traits, slot_depth
from ..errors import UserError

RULES = ("eyewear", "face_warp", "from_edge", "from_below", "from_above")
TARGET_NAMES = (
    "left_eye",
    "right_eye",
    "eyes",
    "mouth",
    "nose_tip",
    "chin",
    "cheek_left",
    "cheek_right",
    "brows",
    "forehead",
)
EDGES = ("top", "bottom", "left", "right")
#: Anchor names besides the canonical landmarks: the ``from_*`` rules' two points.
HELD_ANCHORS = ("target", "entry")
#: Closest two anchors may lie, and least spread of ``face_warp`` anchors across their
#: main line (pixels): below that the placement's transform is degenerate.
MIN_ANCHOR_GAP = 2.0

Range = tuple[float, float]


@dataclass(frozen=True)
class Anchors:
    """Asset pixel coordinates by anchor name, in sidecar order."""

    points: dict[str, tuple[float, float]]

    def __getitem__(self, name: str) -> tuple[float, float]:
        return self.points[name]


@dataclass(frozen=True)
class Placement:
    """The placement rule and the ranges its random draws come from (None: no draw)."""

    rule: str
    scale_jitter: Range | None = None
    rotation_jitter_deg: Range | None = None
    offset_x: Range | None = None  # inter-ocular units along the eye line
    offset_y: Range | None = None  # ... and across it
    width_iod: Range | None = None
    targets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    flip: bool = False
    extend: bool = True


@dataclass(frozen=True)
class Contact:
    """Where the object rests on the skin: discs ``(x, y, radius)`` and an outline band."""

    points: tuple[tuple[float, float, float], ...] = ()
    edge_px: int = 0
    description: str = ""


@dataclass(frozen=True)
class Material:
    """Surface properties: ``gloss`` 0 (matte) .. 1 (glossy) and the contact spec."""

    gloss: float = 0.0
    contact: Contact = Contact()


@dataclass(frozen=True)
class Harvest:
    """Where a harvested occluder came from (``occsynth occluders harvest``).

    ``source``: the file it was cut from; ``licence``: the user's licence text;
    ``auto_masked``: whether its mask was made by a program rather than by hand; ``kind``:
    ``face_photo``, ``cutout`` or ``coco``; ``face_lab``: Lab mean and std of the source
    face's skin (``harmonise.SkinRef``), None without a face; ``grip``: where a hand holds
    a prop (asset pixels) or None; ``quality``: measurements of the cut (JSON values).
    """

    source: str
    licence: str = ""
    auto_masked: bool = False
    kind: str = "face_photo"
    face_lab: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None
    grip: tuple[float, float] | None = None
    quality: dict[str, Any] = field(default_factory=dict)


HARVEST_KINDS = ("face_photo", "cutout", "coco")


@dataclass(frozen=True)
class Sidecar:
    """Every field of one sidecar, validated."""

    name: str
    category: str
    anchors: Anchors
    placement: Placement
    material: Material
    traits: CategoryTraits
    provenance: str = ""
    harvest: Harvest | None = None


def _fail(path: Path, msg: str) -> UserError:
    return UserError(f"bad occluder sidecar {path}: {msg}")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _range(path: Path, value: Any, key: str) -> Range:
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
        and value[0] <= value[1]
    )
    if not ok:
        raise _fail(path, f"{key} must be a [low, high] pair of numbers, got {value!r}")
    return (float(value[0]), float(value[1]))


def _anchors(path: Path, anchors: Any, size: tuple[int, int] | None) -> Anchors:
    if not isinstance(anchors, dict) or not anchors:
        raise _fail(path, "anchors must be a non-empty object")
    for k, v in anchors.items():
        if k not in POINT_NAMES and k not in HELD_ANCHORS:
            raise _fail(
                path,
                f"unknown anchor {k!r} (landmark names: {', '.join(POINT_NAMES)}; or target/entry)",
            )
        if not (
            isinstance(v, (list, tuple))
            and len(v) == 2
            and all(isinstance(c, (int, float)) for c in v)
        ):
            raise _fail(path, f"anchor {k!r} must be [x, y] in pixels, got {v!r}")
        if size is not None and not (
            -size[0] <= v[0] <= 2 * size[0] and -size[1] <= v[1] <= 2 * size[1]
        ):
            raise _fail(path, f"anchor {k!r} {v} lies far outside the {size[0]}x{size[1]} image")
    return Anchors({k: (float(v[0]), float(v[1])) for k, v in anchors.items()})


def _check_spread(path: Path, rule: str, anchors: Anchors) -> None:
    """Refuse anchors that make the rule's transform degenerate (coincident, collinear)."""
    if rule == "eyewear":
        names = ["left_eye", "right_eye"]
    elif rule == "face_warp":
        names = [k for k in anchors.points if k in POINT_NAMES]
    else:
        names = list(HELD_ANCHORS)
    pts = np.array([anchors[k] for k in names], np.float64)
    for i in range(len(names)):
        for j in range(i):
            if np.linalg.norm(pts[i] - pts[j]) < MIN_ANCHOR_GAP:
                raise _fail(path, f"anchors {names[j]!r} and {names[i]!r} coincide")
    if rule == "face_warp":
        spread = np.linalg.svd(pts - pts.mean(0), compute_uv=False)[-1] / math.sqrt(len(pts))
        if spread < MIN_ANCHOR_GAP:
            raise _fail(path, "face_warp anchors lie on one line (they must span an area)")


def _placement(path: Path, pl: Any, anchors: Anchors, traits: CategoryTraits) -> Placement:
    if not isinstance(pl, dict):
        raise _fail(path, f"placement.rule must be one of {', '.join(RULES)}")
    rule = pl.get("rule", traits.rules[0] if traits.rules else None)
    if rule not in RULES:
        raise _fail(path, f"placement.rule must be one of {', '.join(RULES)}")
    if traits.rules and rule not in traits.rules:
        raise _fail(path, f"placement.rule {rule} is not one of {', '.join(traits.rules)}")
    ranges = {
        key: _range(path, pl[key], f"placement.{key}") if key in pl else None
        for key in ("scale_jitter", "rotation_jitter_deg", "width_iod")
    }
    for key in ("flip", "extend"):
        if key in pl and not isinstance(pl[key], bool):
            raise _fail(path, f"placement.{key} must be true or false")
    off = pl.get("offset_iod", {})
    if not isinstance(off, dict):
        raise _fail(path, "placement.offset_iod must be an object {x: [lo, hi], y: [lo, hi]}")
    offsets = {axis: _range(path, r, f"placement.offset_iod.{axis}") for axis, r in off.items()}
    if not offsets.keys() <= {"x", "y"}:
        raise _fail(path, f"placement.offset_iod takes axes x and y, got {', '.join(offsets)}")
    if rule == "eyewear" and not {"left_eye", "right_eye"} <= anchors.points.keys():
        raise _fail(path, "rule eyewear needs anchors left_eye and right_eye")
    if rule == "face_warp" and len(set(anchors.points) & set(POINT_NAMES)) < 3:
        raise _fail(path, "rule face_warp needs at least three landmark anchors")
    targets: dict[str, tuple[str, ...]] = {}
    if rule.startswith("from_"):
        if not set(HELD_ANCHORS) <= anchors.points.keys():
            raise _fail(path, f"rule {rule} needs anchors target and entry")
        if ranges["width_iod"] is None:
            raise _fail(path, f"rule {rule} needs placement.width_iod")
        spec = pl.get("targets")
        if not isinstance(spec, dict) or not spec:
            raise _fail(path, f"rule {rule} needs placement.targets {{name: [edges]}}")
        for t, edges in spec.items():
            if t not in TARGET_NAMES:
                raise _fail(path, f"unknown target {t!r} (one of {', '.join(TARGET_NAMES)})")
            if not isinstance(edges, list) or not edges or any(e not in EDGES for e in edges):
                raise _fail(path, f"target {t!r} needs edges among {', '.join(EDGES)}")
            targets[t] = tuple(edges)
    _check_spread(path, rule, anchors)
    return Placement(
        rule=rule,
        offset_x=offsets.get("x"),
        offset_y=offsets.get("y"),
        targets=targets,
        flip=pl.get("flip", False),
        extend=pl.get("extend", True),
        **ranges,
    )


def _material(path: Path, mat: Any) -> Material:
    if not isinstance(mat, dict):
        raise _fail(path, "material must be an object")
    gloss = mat.get("gloss", 0.0)
    if not isinstance(gloss, (int, float)) or not 0.0 <= gloss <= 1.0:
        raise _fail(path, f"material.gloss must be a number in 0..1, got {gloss!r}")
    spec = mat.get("contact", {})
    if isinstance(spec, str):
        return Material(float(gloss), Contact(description=spec))
    if not isinstance(spec, dict):
        raise _fail(path, "material.contact must be an object or a description string")
    points = spec.get("points", [])
    if not isinstance(points, list) or not all(
        isinstance(p, list) and len(p) == 3 and all(_number(v) for v in p) for p in points
    ):
        raise _fail(path, "material.contact.points must be a list of [x, y, radius]")
    edge = spec.get("edge_px", 0)
    if not _number(edge) or edge < 0:
        raise _fail(path, f"material.contact.edge_px must be a number >= 0, got {edge!r}")
    contact = Contact(
        points=tuple((float(x), float(y), float(r)) for x, y, r in points),
        edge_px=int(edge),
        description=str(spec.get("description", "")),
    )
    return Material(float(gloss), contact)


def _traits(path: Path, meta: dict[str, Any]) -> CategoryTraits:
    """The category's registered traits, or a user category's own (declared or default)."""
    base = default_traits(meta["category"])
    slot = meta.get("slot", base.slot)
    if not isinstance(slot, str) or not slot.isidentifier():
        raise _fail(path, f"slot must be an identifier, got {slot!r}")
    depth = meta.get("depth", slot_depth(slot) if "slot" in meta else base.depth)
    if not isinstance(depth, int) or isinstance(depth, bool):
        raise _fail(path, f"depth must be an integer, got {depth!r}")
    tint = meta.get("skin_tint", base.skin_tint)
    if not isinstance(tint, bool):
        raise _fail(path, "skin_tint must be true or false")
    traits = CategoryTraits(
        slot=slot, depth=depth, skin_tint=tint, rules=base.rules, max_yaw=base.max_yaw
    )
    if meta["category"] in CATEGORIES and traits != base:
        raise _fail(
            path, f"category {meta['category']!r} is built in: its slot, depth and tint are fixed"
        )
    return traits


def _triple(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 3 and all(_number(c) for c in v)


def _harvest(path: Path, spec: Any) -> Harvest | None:
    """The optional ``harvest`` block of a harvested occluder's sidecar."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise _fail(path, "harvest must be an object")
    source = spec.get("source")
    if not isinstance(source, str) or not source:
        raise _fail(path, "harvest.source must name the file the occluder was cut from")
    licence = spec.get("licence", "")
    if not isinstance(licence, str):
        raise _fail(path, "harvest.licence must be a string")
    auto = spec.get("auto_masked", False)
    if not isinstance(auto, bool):
        raise _fail(path, "harvest.auto_masked must be true or false")
    kind = spec.get("kind", "face_photo")
    if kind not in HARVEST_KINDS:
        raise _fail(path, f"harvest.kind must be one of {', '.join(HARVEST_KINDS)}")
    lab = spec.get("face_lab")
    face_lab = None
    if lab is not None:
        if not (isinstance(lab, dict) and _triple(lab.get("mean")) and _triple(lab.get("std"))):
            raise _fail(path, "harvest.face_lab must be {mean: [L, a, b], std: [L, a, b]}")
        face_lab = (
            tuple(float(v) for v in lab["mean"]),
            tuple(float(v) for v in lab["std"]),
        )
    grip = spec.get("grip")
    if grip is not None:
        if not (isinstance(grip, list) and len(grip) == 2 and all(_number(v) for v in grip)):
            raise _fail(path, "harvest.grip must be [x, y] in pixels or null")
        grip = (float(grip[0]), float(grip[1]))
    quality = spec.get("quality", {})
    if not isinstance(quality, dict):
        raise _fail(path, "harvest.quality must be an object")
    return Harvest(
        source=source,
        licence=licence,
        auto_masked=auto,
        kind=kind,
        face_lab=face_lab,  # type: ignore[arg-type]
        grip=grip,
        quality=quality,
    )


def parse_sidecar(meta: Any, path: Path, size: tuple[int, int] | None = None) -> Sidecar:
    """Validate a decoded sidecar (``size``: the image's width, height) into a ``Sidecar``."""
    if not isinstance(meta, dict):
        raise _fail(path, "top level must be a JSON object")
    for key in ("category", "name", "anchors", "placement", "material"):
        if key not in meta:
            raise _fail(path, f"missing key {key!r}")
    if not isinstance(meta["category"], str) or not meta["category"].isidentifier():
        raise _fail(path, f"category must be an identifier, got {meta['category']!r}")
    traits = _traits(path, meta)
    anchors = _anchors(path, meta["anchors"], size)
    return Sidecar(
        name=str(meta["name"]),
        category=meta["category"],
        anchors=anchors,
        placement=_placement(path, meta["placement"], anchors, traits),
        material=_material(path, meta["material"]),
        traits=traits,
        provenance=str(meta.get("provenance", "")),
        harvest=_harvest(path, meta.get("harvest")),
    )
