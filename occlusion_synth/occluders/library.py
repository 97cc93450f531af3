"""Loading the occluder library: RGBA PNGs with JSON sidecars.

Sidecar schema (``<name>.json`` beside ``<name>.png``; users may add their own folders with
``--occluders-dir`` in this format; ``schema.parse_sidecar`` reads it into typed fields)::

    {
      "category": "sunglasses",            # any identifier; built-in ones: categories.CATEGORIES
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
      "provenance": "where the asset came from",
      "harvest": {"source": "photo.jpg", ...}, # optional: an occluder cut from a photo
                                           # (``schema.Harvest``; ``occluders.harvest``)
      "slot": "eyes",                      # optional, a category that is not built in: the
      "depth": 2,                          # face slot it occupies (default: its own), its
      "skin_tint": false                   # depth order (default: its slot's, else 3) and
    }                                      # whether it takes a skin tone like a hand

Rule requirements: ``eyewear`` needs anchors ``left_eye`` and ``right_eye``; ``face_warp``
needs at least three canonical-landmark anchors; ``from_*`` rules need ``target`` and
``entry`` and a non-empty ``targets`` map. Target names are in ``schema.TARGET_NAMES``; edges are
``top``, ``bottom``, ``left``, ``right``. A built-in category allows only its own rules
(``categories.CATEGORIES``) and ``placement.rule`` may be left out for its default one; its
traits cannot be redeclared. The anchors a rule uses must be at least
``schema.MIN_ANCHOR_GAP`` (2) pixels apart, and ``face_warp``'s must not lie on one line.
Every sidecar of one category must declare the same traits.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..categories import CategoryTraits, default_traits
from ..errors import UserError
from .schema import Anchors, Harvest, Material, Placement, parse_sidecar

REPO_ASSETS = Path(__file__).resolve().parents[2] / "assets" / "occluders"


@dataclass
class Occluder:
    """One library asset: straight-alpha RGBA pixels and its parsed sidecar."""

    name: str
    category: str
    rgba: np.ndarray
    anchors: Anchors
    placement: Placement
    material: Material
    traits: CategoryTraits
    provenance: str = ""
    path: Path | None = None
    harvest: Harvest | None = None  # set for occluders cut from photos (``harvest.py``)
    cache: dict[str, Any] = field(default_factory=dict, repr=False)  # placement's precomputed


def load_occluder(png: Path) -> Occluder:
    """Load one asset and its sidecar, validating both."""
    side = png.with_suffix(".json")
    if not side.is_file():
        raise UserError(f"occluder {png} has no sidecar {side.name}")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"bad occluder sidecar {side}: not valid JSON ({exc})") from None
    try:
        with Image.open(png) as im:
            rgba = np.asarray(im.convert("RGBA"), dtype=np.uint8).copy()
    except OSError as exc:
        raise UserError(f"cannot read occluder image {png}: {exc}") from None
    sc = parse_sidecar(meta, side, (rgba.shape[1], rgba.shape[0]))
    return Occluder(
        name=sc.name,
        category=sc.category,
        rgba=rgba,
        anchors=sc.anchors,
        placement=sc.placement,
        material=sc.material,
        traits=sc.traits,
        provenance=sc.provenance,
        path=png,
        harvest=sc.harvest,
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
            same = self._by_cat.setdefault(o.category, [])
            if same and o.traits != same[0].traits:
                raise UserError(
                    f"occluders {same[0].path} and {o.path} of category {o.category!r} "
                    "declare different slot, depth or skin_tint"
                )
            same.append(o)

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

    def traits(self, category: str) -> CategoryTraits:
        """The traits of ``category`` as its sidecars resolved them (else the defaults)."""
        found = self._by_cat.get(category)
        return found[0].traits if found else default_traits(category)

    def by_category(self, category: str) -> list[Occluder]:
        """The occluders of one category (``UserError`` if there are none)."""
        if category not in self._by_cat:
            raise UserError(
                f"unknown occluder category {category!r} (known: {', '.join(self.categories)})"
            )
        return self._by_cat[category]

    def choose(
        self,
        rng: np.random.Generator,
        weights: dict[str, float],
        u: float | None = None,
        fits: Callable[[Occluder], bool] | None = None,
        sources: dict[str, float] | None = None,
    ) -> Occluder:
        """Pick a category with probability proportional to ``weights``, then a variant.

        ``u`` in [0, 1), when given, picks the category instead of ``rng`` (inverse of the
        cumulative weights): a build passes a low-discrepancy sequence so that category
        counts follow the weights closely at any ``--n``. ``fits``, when given, keeps only
        the variants it accepts (all of them when it accepts none). ``sources`` (see
        ``parse_source_weights``) weighs each variant by its source (None: all equally; a
        category with no variant of positive weight: all equally).
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
        if fits is not None:
            variants = [v for v in variants if fits(v)] or variants
        if sources is not None:
            p = np.array([sources.get(source_of(v), 1.0) for v in variants], np.float64)
            if p.sum() > 0:
                return variants[int(rng.choice(len(variants), p=p / p.sum()))]
        return variants[int(rng.integers(len(variants)))]


#: Where an occluder comes from (``--source-weights``): drawn (the bundled generator's, or a
#: user's own PNG with a sidecar) or harvested from a photo (``occsynth occluders harvest``).
SOURCES = ("drawn", "harvested")


def source_of(occ: Occluder) -> str:
    """The occluder's source, one of ``SOURCES``."""
    return "harvested" if occ.harvest is not None else "drawn"


def parse_source_weights(text: str) -> dict[str, float]:
    """Parse ``"harvested:3"`` or ``"drawn:1,harvested:3"`` into a weight per source; a source
    not named keeps weight 1."""
    out = {**dict.fromkeys(SOURCES, 1.0), **_parse_weights(text, list(SOURCES), "source", False)}
    if sum(out.values()) <= 0:
        raise UserError(f"no occluder source with a positive weight in {text!r}")
    return out


def parse_category_weights(text: str, known: list[str] | None = None) -> dict[str, float]:
    """Parse ``"sunglasses:2,hand:1"`` or ``"a,b"`` (weight 1) into ``{category: weight}``.

    ``known`` defaults to the default library's categories; unknown names are a UserError.
    """
    if known is None:
        known = OccluderLibrary.load().categories
    return _parse_weights(text, known, "category")


def _parse_weights(
    text: str, known: list[str], what: str, positive: bool = True
) -> dict[str, float]:
    """``"a:2,b"`` -> ``{"a": 2.0, "b": 1.0}``, names from ``known`` (one occluder ``what``);
    ``positive``: some weight must be above 0."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, w = part.partition(":")
        name = name.strip()
        if name not in known:
            raise UserError(f"unknown occluder {what} {name!r} (known: {', '.join(known)})")
        try:
            weight = float(w) if w.strip() else 1.0
        except ValueError:
            raise UserError(f"weight of {name!r} must be a number, got {w!r}") from None
        if not math.isfinite(weight) or weight < 0:
            raise UserError(f"weight of {name!r} must be >= 0, got {w!r}")
        out[name] = out.get(name, 0.0) + weight
    if positive and (not out or sum(out.values()) <= 0):
        raise UserError(f"no occluder {what} with a positive weight in {text!r}")
    return out
