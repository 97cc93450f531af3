"""Loading the occluder library: RGBA PNGs with JSON sidecars.

Sidecar schema (``<name>.json`` beside ``<name>.png``; users may add their own folders with
``--occluders-dir`` in this format)::

    {
      "category": "sunglasses",            # any identifier; the built-in ones are CATEGORIES
      "name": "sunglasses_aviator_gold",   # unique over the library
      "anchors": {"left_eye": [x, y], ...},# occluder pixel coords -> canonical landmark names
                                           # (plus "target" and "entry" for from_* rules)
      "placement": {"rule": "eyewear" | "face_warp" | "from_edge" | "from_below" | "from_above",
                    "scale_jitter": [lo, hi], "rotation_jitter_deg": [lo, hi],
                    "offset_iod": {"x": [lo, hi], "y": [lo, hi]},   # inter-ocular units
                    "width_iod": [lo, hi],     # from_* rules: asset width in inter-ocular units
                    "targets": {"mouth": ["bottom", "left"], ...},  # from_* rules
                    "flip": true,              # from_* rules: may be mirrored
                    "extend": true},           # from_* rules: replicate the entry border row
                                               # to the image edge (arm, handle); false: grow
                                               # the asset until its entry end nears the edge
      "material": {"gloss": 0..1, "contact": {"description": "...",
                   "points": [[x, y, radius], ...], "edge_px": 0}},
      "provenance": "where the asset came from"
    }

Rule requirements: ``eyewear`` needs anchors ``left_eye`` and ``right_eye``; ``face_warp``
needs at least three canonical-landmark anchors; ``from_*`` rules need ``target`` and
``entry`` and a non-empty ``targets`` map. Target names are in ``TARGET_NAMES``; edges are
``top``, ``bottom``, ``left``, ``right``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..canonical import POINT_NAMES
from ..errors import UserError

REPO_ASSETS = Path(__file__).resolve().parents[2] / "assets" / "occluders"
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


@dataclass
class Occluder:
    """One library asset: straight-alpha RGBA pixels and its sidecar fields."""

    name: str
    category: str
    rgba: np.ndarray
    anchors: dict[str, tuple[float, float]]
    placement: dict[str, Any]
    material: dict[str, Any]
    provenance: str = ""
    path: Path | None = None
    cache: dict[str, Any] = field(default_factory=dict, repr=False)  # placement's precomputed


def _fail(path: Path, msg: str) -> UserError:
    return UserError(f"bad occluder sidecar {path}: {msg}")


def _range(path: Path, value: Any, key: str) -> None:
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
        and value[0] <= value[1]
    )
    if not ok:
        raise _fail(path, f"{key} must be a [low, high] pair of numbers, got {value!r}")


def validate_sidecar(meta: Any, path: Path, size: tuple[int, int] | None = None) -> None:
    """Raise ``UserError`` naming the file and the problem if ``meta`` breaks the schema."""
    if not isinstance(meta, dict):
        raise _fail(path, "top level must be a JSON object")
    for key in ("category", "name", "anchors", "placement", "material"):
        if key not in meta:
            raise _fail(path, f"missing key {key!r}")
    if not isinstance(meta["category"], str) or not meta["category"].isidentifier():
        raise _fail(path, f"category must be an identifier, got {meta['category']!r}")
    anchors = meta["anchors"]
    if not isinstance(anchors, dict) or not anchors:
        raise _fail(path, "anchors must be a non-empty object")
    for k, v in anchors.items():
        if k not in POINT_NAMES and k not in ("target", "entry"):
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
    pl = meta["placement"]
    if not isinstance(pl, dict) or pl.get("rule") not in RULES:
        raise _fail(path, f"placement.rule must be one of {', '.join(RULES)}")
    rule = pl["rule"]
    for key in ("scale_jitter", "rotation_jitter_deg", "width_iod"):
        if key in pl:
            _range(path, pl[key], f"placement.{key}")
    for key in ("flip", "extend"):
        if key in pl and not isinstance(pl[key], bool):
            raise _fail(path, f"placement.{key} must be true or false")
    off = pl.get("offset_iod", {})
    if not isinstance(off, dict):
        raise _fail(path, "placement.offset_iod must be an object {x: [lo, hi], y: [lo, hi]}")
    for axis, rng in off.items():
        _range(path, rng, f"placement.offset_iod.{axis}")
    if rule == "eyewear" and not {"left_eye", "right_eye"} <= anchors.keys():
        raise _fail(path, "rule eyewear needs anchors left_eye and right_eye")
    if rule == "face_warp" and len(set(anchors) & set(POINT_NAMES)) < 3:
        raise _fail(path, "rule face_warp needs at least three landmark anchors")
    if rule.startswith("from_"):
        if not {"target", "entry"} <= anchors.keys():
            raise _fail(path, f"rule {rule} needs anchors target and entry")
        if "width_iod" not in pl:
            raise _fail(path, f"rule {rule} needs placement.width_iod")
        targets = pl.get("targets")
        if not isinstance(targets, dict) or not targets:
            raise _fail(path, f"rule {rule} needs placement.targets {{name: [edges]}}")
        for t, edges in targets.items():
            if t not in TARGET_NAMES:
                raise _fail(path, f"unknown target {t!r} (one of {', '.join(TARGET_NAMES)})")
            if not edges or any(e not in EDGES for e in edges):
                raise _fail(path, f"target {t!r} needs edges among {', '.join(EDGES)}")
    mat = meta["material"]
    if not isinstance(mat, dict):
        raise _fail(path, "material must be an object")
    gloss = mat.get("gloss", 0.0)
    if not isinstance(gloss, (int, float)) or not 0.0 <= gloss <= 1.0:
        raise _fail(path, f"material.gloss must be a number in 0..1, got {gloss!r}")
    contact = mat.get("contact", {})
    if not isinstance(contact, (dict, str)):
        raise _fail(path, "material.contact must be an object or a description string")


def load_occluder(png: Path) -> Occluder:
    """Load one asset and its sidecar, validating both."""
    side = png.with_suffix(".json")
    if not side.is_file():
        raise UserError(f"occluder {png} has no sidecar {side.name}")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise _fail(side, f"not valid JSON ({exc})") from None
    try:
        with Image.open(png) as im:
            rgba = np.asarray(im.convert("RGBA"), dtype=np.uint8).copy()
    except OSError as exc:
        raise UserError(f"cannot read occluder image {png}: {exc}") from None
    validate_sidecar(meta, side, (rgba.shape[1], rgba.shape[0]))
    return Occluder(
        name=str(meta["name"]),
        category=meta["category"],
        rgba=rgba,
        anchors={k: (float(v[0]), float(v[1])) for k, v in meta["anchors"].items()},
        placement=meta["placement"],
        material=meta["material"],
        provenance=str(meta.get("provenance", "")),
        path=png,
    )


def default_dir() -> Path:
    """The repository's assets, or a generated copy in ``~/.cache/occsynth/occluders``."""
    if REPO_ASSETS.is_dir() and any(REPO_ASSETS.glob("*/*.json")):
        return REPO_ASSETS
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "occsynth"
    target = cache / "occluders"
    if not any(target.glob("*/*.json")):
        from .generate import generate

        tmp = cache / f"occluders.tmp{os.getpid()}"
        generate(tmp, progress=True)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race
            pass
    return target


_CACHE: dict[tuple[str, ...], OccluderLibrary] = {}


class OccluderLibrary:
    """All occluders found in one or more folders, grouped by category."""

    def __init__(self, occluders: list[Occluder]) -> None:
        self.occluders = occluders
        self._by_cat: dict[str, list[Occluder]] = {}
        for o in occluders:
            self._by_cat.setdefault(o.category, []).append(o)

    @classmethod
    def load(cls, dirs: list[Path] | list[str] | None = None) -> OccluderLibrary:
        """Load (once per process) the default library plus any user folders in ``dirs``."""
        folders = [default_dir()] + [Path(d) for d in (dirs or [])]
        key = tuple(str(f.resolve()) for f in folders)
        if key not in _CACHE:
            found: list[Occluder] = []
            names: dict[str, Path] = {}
            for folder in folders:
                if not folder.is_dir():
                    raise UserError(f"occluders folder {folder} does not exist")
                pngs = sorted(folder.rglob("*.png"))
                if not pngs and folder != folders[0]:
                    raise UserError(f"occluders folder {folder} holds no .png occluders")
                for png in pngs:
                    occ = load_occluder(png)
                    if occ.name in names:
                        raise UserError(
                            f"occluder name {occ.name!r} is used twice: {names[occ.name]} and {png}"
                        )
                    names[occ.name] = png
                    found.append(occ)
            _CACHE[key] = cls(found)
        return _CACHE[key]

    @property
    def categories(self) -> list[str]:
        """Category names, sorted."""
        return sorted(self._by_cat)

    def by_category(self, category: str) -> list[Occluder]:
        """The occluders of one category (``UserError`` if there are none)."""
        if category not in self._by_cat:
            raise UserError(
                f"unknown occluder category {category!r} (known: {', '.join(self.categories)})"
            )
        return self._by_cat[category]

    def choose(
        self, rng: np.random.Generator, weights: dict[str, float], u: float | None = None
    ) -> Occluder:
        """Pick a category with probability proportional to ``weights``, then a variant.

        ``u`` in [0, 1), when given, picks the category instead of ``rng`` (inverse of the
        cumulative weights): a build passes a low-discrepancy sequence so that category
        counts follow the weights closely at any ``--n``.
        """
        cats = [c for c, w in weights.items() if w > 0]
        if not cats:
            raise UserError("no occluder category has a positive weight")
        w = np.array([weights[c] for c in cats], np.float64)
        if u is None:
            cat = cats[int(rng.choice(len(cats), p=w / w.sum()))]
        else:
            edges = np.cumsum(w / w.sum())
            cat = cats[min(int(np.searchsorted(edges, u, side="right")), len(cats) - 1)]
        variants = self.by_category(cat)
        return variants[int(rng.integers(len(variants)))]


def parse_category_weights(text: str, known: list[str] | None = None) -> dict[str, float]:
    """Parse ``"sunglasses:2,hand:1"`` or ``"a,b"`` (weight 1) into ``{category: weight}``.

    ``known`` defaults to the default library's categories; unknown names are a UserError.
    """
    if known is None:
        known = OccluderLibrary.load().categories
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, w = part.partition(":")
        name = name.strip()
        if name not in known:
            raise UserError(f"unknown occluder category {name!r} (known: {', '.join(known)})")
        try:
            weight = float(w) if w.strip() else 1.0
        except ValueError:
            raise UserError(f"weight of {name!r} must be a number, got {w!r}") from None
        if not math.isfinite(weight) or weight < 0:
            raise UserError(f"weight of {name!r} must be >= 0, got {w!r}")
        out[name] = out.get(name, 0.0) + weight
    if not out or sum(out.values()) <= 0:
        raise UserError(f"no occluder category with a positive weight in {text!r}")
    return out
