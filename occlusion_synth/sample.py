"""One training sample: choose occluders, place them on the face, composite, describe it.

Number of occluders: drawn uniformly from 1..``max_occluders``. Categories are drawn one
after another with the user's weights, among those still *compatible* with the ones already
chosen. Compatibility is by the categories' slots (``categories.CategoryTraits``): at most
one occluder per slot (two pairs of glasses, two masks, or a medical mask plus a scarf are
implausible), and a drink or food at the mouth does not go with anything covering the mouth
(``categories.EXCLUSIVE_SLOTS``). The chosen occluders are composited back to front by their
category's ``depth`` (mask, then glasses, then held objects).

Categories with ``skin_tint`` (hands) are tinted here, before compositing: with probability
``SampleOptions.face_skin`` the hand takes the face's own cheek colour (with a small
jitter), otherwise a random plausible skin tone. The cheek colour is divided by the light
the compositor will apply, so the hand ends up as bright as the cheek it is next to.

Drawn phones are drawn in the hand that holds them; that hand is recoloured the same way
(``tint_drawn_hand``: only its skin, told from the phone by its chromaticity), so a phone is
not held by a hand of another colour than the face's.

Harvested occluders (``Occluder.harvest``, cut from photos) keep their own colours: each is
harmonised to the face (``occluders.harmonise``: the change from its source face's skin
statistics to this face's) and marked ``Layer.lit``, so the compositor adds no global light
on top; a harvested hand keeps its real skin (no tint).
"""

from __future__ import annotations

import functools
import re
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from occlusion_synth.compose import (
    OutsideFill,
    composite,
    lit_colour,
    object_mask,
    unlit_colour,
)
from occlusion_synth.contact import rest_on_mask
from occlusion_synth.drape import drape
from occlusion_synth.grip import hand_layer, hold, needs_hand
from occlusion_synth.layers import Layer
from occlusion_synth.occluders.harmonise import (
    DEFAULT_STRENGTH,
    SkinRef,
    harmonise_layer,
    skin_ref,
)
from occlusion_synth.realism import (
    FaceStats,
    face_stats,
    hair_cover,
)
from occlusion_synth.shards import Sample, jsonable, mask_coverage
from occlusion_synth.straps import add_ear_loops

if TYPE_CHECKING:  # pragma: no cover
    from occlusion_synth.faces import AlignedFace
    from occlusion_synth.occluders.library import Occluder, OccluderLibrary

#: Plausible skin tones (RGB, 0..255) from very light to very dark, for hands that do not
#: take the face's colour.
SKIN_TONES = np.array(
    [
        (241, 204, 181),
        (224, 177, 146),
        (206, 150, 118),
        (186, 128, 95),
        (160, 105, 75),
        (128, 82, 58),
        (96, 60, 42),
        (70, 45, 32),
    ],
    dtype=np.float32,
)

#: Retries of a draw whose mask is smaller than ``min_coverage``.
_MAX_TRIES = 4

_STATS_CACHE: OrderedDict[tuple[str, int], FaceStats] = OrderedDict()
_STATS_CACHE_SIZE = 64


@dataclass
class SampleOptions:
    """How samples are drawn.

    ``category_weights``: category -> relative weight (None: every category of the library,
    equally). ``max_occluders``: each sample gets 1..max occluders, uniformly.
    ``min_coverage``: a draw whose mask covers less of the frame is redrawn (up to 4 times;
    the last draw is kept). ``face_skin``: probability that a hand takes the face's colour
    (one's own hand at one's face matches it; a blind review read a hand of another tone
    as pasted on). ``source_weights``: source (``occluders.library.SOURCES``) -> relative
    weight of the variants within a category (None: every variant equally).
    """

    category_weights: dict[str, float] | None = None
    source_weights: dict[str, float] | None = None
    max_occluders: int = 1
    min_coverage: float = 0.005
    face_skin: float = 0.95

    def __post_init__(self) -> None:
        if self.max_occluders < 1:
            raise ValueError("max_occluders must be at least 1")

    @classmethod
    def from_cli(
        cls,
        categories: str | None = None,
        max_occluders: int | None = None,
        known: list[str] | None = None,
    ) -> SampleOptions:
        """Options from the command line (``--categories a:2,b --max-occluders K``).

        ``known``: the library's categories (default: the bundled library's).
        """
        from occlusion_synth.occluders.library import parse_category_weights

        weights = parse_category_weights(categories, known) if categories else None
        return cls(category_weights=weights, max_occluders=max_occluders or 1)


def _face_key(face: AlignedFace) -> tuple[str, int]:
    return (face.source.id, zlib.crc32(np.ascontiguousarray(face.image).data))


def _per_face(cache: OrderedDict, face: AlignedFace, compute):
    """``compute(face)``, kept in the small LRU ``cache`` keyed on the face's id and pixels."""
    key = _face_key(face)
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = compute(face)
    cache[key] = value
    if len(cache) > _STATS_CACHE_SIZE:
        cache.popitem(last=False)
    return value


def cached_face_stats(face: AlignedFace) -> FaceStats:
    """``realism.face_stats`` of a face, computed once per face (keyed on id and pixels)."""
    return _per_face(_STATS_CACHE, face, lambda f: face_stats(f.image, source_scale(f)))


_SKIN_CACHE: OrderedDict[tuple[str, int], SkinRef] = OrderedDict()


def source_scale(face: AlignedFace) -> float:
    """Frame pixels per source pixel of ``face`` (its alignment's scale)."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(face.matrix)[:, :2]))))


def cached_skin_ref(face: AlignedFace) -> SkinRef:
    """``harmonise.skin_ref`` of a face (its skin's Lab statistics), once per face."""
    return _per_face(_SKIN_CACHE, face, lambda f: skin_ref(f.image, f.landmarks))


_HAIR_CACHE: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()

#: Slots of occluders that pass behind hair hanging beside the face (ear loops and straps of
#: masks, glasses temples, a hat's sides); held objects and hands are in front of it.
BEHIND_HAIR_SLOTS = frozenset({"lower_face", "eyes", "head"})


#: Slots of objects held in front of the face (hands, and props in a hand), and how far in
#: front (``Layer.standoff``, frame pixels, about a tenth of the eye distance): without the
#: gap their shadow shows, a hand the face's own colour reads as a see-through overlay.
HELD_OFF_SLOTS = frozenset({"hand", "prop", "mouth_prop"})
HELD_OFF_PX = 5.0


def cached_hair(face: AlignedFace) -> np.ndarray:
    """``realism.hair_cover`` of a face (where hair hangs beside it), once per face."""
    return _per_face(_HAIR_CACHE, face, lambda f: hair_cover(f.image, f.landmarks))


def put_behind_hair(layer: Layer, hair: np.ndarray) -> None:
    """Multiply ``layer``'s alpha (and contact) by ``1 - hair`` where hair covers it, in
    place; records the share of its coverage hidden as ``params["under_hair"]``."""
    x, y, w, h = cv2.boundingRect(cv2.compare(layer.alpha, 0.0, cv2.CMP_GT))
    if w == 0 or h == 0:
        return
    cover = hair[y : y + h, x : x + w]
    if not cover.any():
        return
    a = layer.alpha[y : y + h, x : x + w]
    keep = 1.0 - cover
    before = float(a.sum())
    layer.alpha = layer.alpha.copy()
    layer.alpha[y : y + h, x : x + w] = a * keep
    if layer.contact is not None:
        layer.contact = layer.contact.copy()
        layer.contact[y : y + h, x : x + w] *= keep
    hidden = 1.0 - float(layer.alpha[y : y + h, x : x + w].sum()) / max(before, 1e-6)
    layer.params["under_hair"] = round(hidden, 4)


def harmonise_harvested(layer: Layer, occ: Occluder, face: AlignedFace) -> dict[str, Any]:
    """Move a harvested occluder's placed ``layer`` from its source photo's light to
    ``face``'s (in place) and mark it lit; returns the note for the sample's metadata."""
    assert occ.harvest is not None
    lab = occ.harvest.face_lab
    source = SkinRef(*lab) if lab is not None else None
    harmonise_layer(layer, cached_skin_ref(face), source, DEFAULT_STRENGTH)
    layer.lit = True
    return {"harmonised": {"strength": DEFAULT_STRENGTH, "source_ref": lab is not None}}


_FILL_CACHE: OrderedDict[tuple[str, int], OutsideFill | None] = OrderedDict()
_CHEEK_CACHE: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()


def photo_size(face: AlignedFace) -> tuple[int, int] | None:
    """(width, height) of the upright source photo of ``face``, or None when unknown.

    ``face.photo_size`` (set by ``faces.load_aligned``); for a face made without it, the
    file's header (EXIF orientation applied, as ``imageio.read_rgb`` does)."""
    if face.photo_size is not None:
        return int(face.photo_size[0]), int(face.photo_size[1])
    path = getattr(face.source, "path", None)
    if path is None:
        return None
    try:
        from PIL import Image

        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                w, h = h, w
    except (OSError, ValueError, SyntaxError):
        return None
    return int(w), int(h)


def _outside_fill(face: AlignedFace) -> OutsideFill | None:
    from occlusion_synth.faces import FILL_BLUR, FILL_FADE

    size = photo_size(face)
    if size is None:
        return None
    return OutsideFill.from_matrix(face.matrix, size, FILL_FADE, FILL_BLUR)


def outside_fill(face: AlignedFace) -> OutsideFill | None:
    """The out-of-photo part of ``face``'s frame (``compose.OutsideFill``), once per face;
    None when the frame lies wholly inside the photo (or the photo's size is unknown)."""
    if not face.outside > 0.0:
        return None
    return _per_face(_FILL_CACHE, face, _outside_fill)


def cheek_colour(face: AlignedFace) -> np.ndarray:
    """Median RGB of two small cheek patches (below each eye, beside the nose)."""
    lm = face.landmarks
    img = face.image
    h, w = img.shape[:2]
    iod = max(lm.inter_ocular, 10.0)
    r = max(int(iod * 0.07), 2)
    patches = []
    for eye, mouth, side in (("left_eye", "mouth_left", -1), ("right_eye", "mouth_right", 1)):
        c = 0.55 * lm[eye] + 0.45 * lm[mouth] + np.array([side * 0.12 * iod, 0.0])
        x, y = int(round(c[0])), int(round(c[1]))
        patch = img[max(y - r, 0) : min(y + r + 1, h), max(x - r, 0) : min(x + r + 1, w)]
        if patch.size:
            patches.append(patch.reshape(-1, 3))
    if not patches:
        return SKIN_TONES[2].copy()
    return np.median(np.concatenate(patches), axis=0).astype(np.float32)


#: A hand's brightness relative to the cheekbones its colour is read at: the hand is rounder
#: and less squarely lit, so it is seen a little darker (at 0.9-1.08 blind reviewers called
#: drawn hands on bright faces washed out, paler than the skin beside them).
HAND_SHADE = (0.84, 1.0)


def skin_tone(face: AlignedFace, stats: FaceStats, rng: np.random.Generator, p_face: float):
    """The unlit skin colour (0..255 RGB) for a hand on this face, and where it came from."""
    if rng.random() < p_face:
        jitter = rng.uniform(*HAND_SHADE) * rng.uniform(0.97, 1.03, 3).astype(np.float32)
        lit = _per_face(_CHEEK_CACHE, face, cheek_colour) * jitter
        return np.clip(unlit_colour(lit, stats), 20, 250), "face"  # the compositor relights it
    i = int(rng.integers(len(SKIN_TONES)))
    tone = SKIN_TONES[i] * rng.uniform(0.94, 1.06, 3).astype(np.float32)
    return np.clip(tone, 20, 250), "random"


def tint_layer(layer: Layer, tone: np.ndarray) -> None:
    """Recolour ``layer`` in place so its mean colour under its alpha is ``tone``.

    A per-channel ratio: the asset's own shading (creases, nails, knuckles) is kept.
    """
    x, y, w, h = cv2.boundingRect(cv2.compare(layer.alpha, 0.0, cv2.CMP_GT))
    if w == 0 or h == 0:
        return
    a = np.ascontiguousarray(layer.alpha[y : y + h, x : x + w])
    chans = cv2.split(np.ascontiguousarray(layer.rgb[y : y + h, x : x + w]))
    total = float(a.sum())
    means = [float((c * a).sum()) / total for c in chans]
    rgb = layer.rgb.copy()
    rgb[y : y + h, x : x + w] = cv2.merge(
        [
            np.clip(c * (t / 255.0 / max(m, 1e-3)), 0.0, 1.0)
            for c, t, m in zip(chans, tone, means, strict=True)
        ]
    )
    layer.rgb = rgb


#: Worn masks held by ear loops: each gets cords back to the ears (``straps``): a harvested
#: one was cut without its loops, a drawn one has only their stubs.
LOOPED = frozenset({"medical_mask", "cloth_mask", "n95_mask"})

#: Drawn objects drawn in their own hand, whose skin is recoloured like a hand's.
DRAWN_IN_HAND = frozenset({"phone"})
#: Skin is told from the object by its chromaticity (rgb / sum) distance ``d`` to the hand's
#: own colour: fully skin below ``lo``, not skin above ``hi``, both shares of the object's own
#: distance (at its target anchor), ``lo`` at most ``SKIN_CHROMA_MAX`` (drawn phones' backs
#: lie 0.03 (gold) to 0.43 away; their hands' pixels within 0.017, highlights further).
SKIN_CHROMA = (0.5, 0.7)
SKIN_CHROMA_MAX = 0.05
#: The colours are read within this radius (asset px) of the entry anchor (the wrist: only
#: the hand there) and of the target anchor (the object).
_READ_RADIUS = 40.0


def _median_near(occ: Occluder, point) -> np.ndarray:
    h, w = occ.rgba.shape[:2]
    r = int(np.ceil(_READ_RADIUS))
    x, y = (int(round(float(v))) for v in point)
    x0, y0, x1, y1 = max(x - r, 0), max(y - r, 0), min(x + r + 1, w), min(y + r + 1, h)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    win = occ.rgba[y0:y1, x0:x1]
    near = ((xx - x) ** 2 + (yy - y) ** 2 <= _READ_RADIUS**2) & (win[..., 3] >= 250)
    if near.any():
        px = win[..., :3][near]
    else:
        px = occ.rgba[..., :3][occ.rgba[..., 3] >= 250]
    return np.median(px.astype(np.float32), axis=0) / 255.0


def _chroma(rgb: np.ndarray) -> np.ndarray:
    return rgb / np.maximum(rgb.sum(axis=-1, keepdims=True), 1e-3)


def drawn_hand_colour(occ: Occluder) -> tuple[np.ndarray, float, float]:
    """The drawn hand's colour (RGB 0..1, at its wrist) and the chromaticity band (lo, hi)
    that tells its skin from the object it holds; once per asset."""
    if "hand_colour" not in occ.cache:
        hand = _median_near(occ, occ.anchors["entry"])
        thing = _median_near(occ, occ.anchors["target"])
        d = float(np.linalg.norm(_chroma(thing) - _chroma(hand)))
        lo = min(SKIN_CHROMA[0] * d, SKIN_CHROMA_MAX)
        hi = lo * SKIN_CHROMA[1] / SKIN_CHROMA[0]
        occ.cache["hand_colour"] = (hand, lo, hi)
    return occ.cache["hand_colour"]


def tint_drawn_hand(layer: Layer, occ: Occluder, tone: np.ndarray) -> None:
    """Recolour the skin of the hand drawn with ``occ`` (placed as ``layer``) to ``tone``
    (0..255 RGB), in place: per channel, by the ratio of ``tone`` to the hand's own colour
    after the layer's colour jitter; pixels of other colours (the phone) are kept."""
    from occlusion_synth.placement import colour_matrix

    x, y, w, h = cv2.boundingRect(cv2.compare(layer.alpha, 0.0, cv2.CMP_GT))
    if w == 0 or h == 0:
        return
    ref, lo, hi = drawn_hand_colour(occ)
    jit = layer.params.get("colour_jitter")
    if jit is not None:
        m = colour_matrix(jit["hue_deg"], jit["saturation"], jit["value"])
        ref = np.clip(m @ ref, 1e-3, 1.0).astype(np.float32)
    box = np.ascontiguousarray(layer.rgb[y : y + h, x : x + w], dtype=np.float32)
    # d^2 = |c / sum(c) - r|^2 = |(I - r 1^T) c|^2 / sum(c)^2, r the hand's chromaticity
    r = _chroma(ref).astype(np.float32)
    off = cv2.transform(box, np.eye(3, dtype=np.float32) - np.outer(r, np.ones(3, np.float32)))
    d2 = cv2.transform(cv2.multiply(off, off), np.ones((1, 3), np.float32))
    total = np.maximum(cv2.transform(box, np.ones((1, 3), np.float32)), 1e-3)
    d = cv2.sqrt(d2) / total
    skin = np.clip((hi - d) * (1.0 / (hi - lo)), 0.0, 1.0)
    ratio = (np.asarray(tone, np.float32) / 255.0) / np.maximum(ref, 1e-3)
    change = cv2.transform(box, np.diag(ratio - 1.0).astype(np.float32))
    rgb = layer.rgb.copy()
    rgb[y : y + h, x : x + w] = np.clip(box + cv2.multiply(change, cv2.merge([skin] * 3)), 0, 1)
    layer.rgb = rgb


def hold_in_hand(
    layer: Layer,
    occ: Occluder,
    face: AlignedFace,
    stats: FaceStats,
    rng: np.random.Generator,
    options: SampleOptions,
) -> list[float]:
    """Lay a skin-tinted fist (``grip``) over the placed prop ``layer``; returns its tone.

    A lit (harvested) prop takes the hand already lit as the face is, the compositor adding
    no light to it."""
    hand = hand_layer(occ, layer, face.landmarks, rng)
    tone, _ = skin_tone(face, stats, rng, options.face_skin)
    if layer.lit:
        tone = np.clip(lit_colour(tone, stats), 0, 255)
    tint_layer(hand, tone)
    hold(layer, hand, stats.light_dir)
    return [round(float(v), 1) for v in tone]


def default_key(face: AlignedFace) -> str:
    """A shard-safe key (letters, digits, ``_`` and ``-``; no dots) from the source id."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", face.source.id).strip("_") or "sample"


def category_stratum(seed: int, index: int) -> float:
    """Where sample ``index`` falls in [0, 1) for its first occluder's category.

    A golden-ratio (Weyl) sequence with a seeded start: a deterministic function of
    (seed, index) whose values spread evenly, so over any run of samples each category's
    share matches its weight to within a few samples rather than random sampling noise.
    """
    return (_stratum_start(seed) + index * 0.6180339887498949) % 1.0


@functools.lru_cache(maxsize=8)
def _stratum_start(seed: int) -> float:
    """The seeded start of ``category_stratum``'s sequence (one draw per seed, not per sample)."""
    return float(np.random.default_rng([seed, 0x5EED]).random())


def _choose_categories(
    library: OccluderLibrary,
    rng: np.random.Generator,
    options: SampleOptions,
    stratum: float | None = None,
    fits: Callable[[Occluder], bool] | None = None,
) -> list[Occluder]:
    """Draw 1..max compatible occluders (``Occluder`` objects) from the library.

    ``stratum`` (see ``category_stratum``) picks the first occluder's category when given;
    ``fits`` limits the variants (``OccluderLibrary.choose``), and the categories: one with
    no variant that fits is drawn only when no allowed category has one (a face turned past
    the drawn masks' ``max_yaw`` gets another requested category).
    """
    weights = options.category_weights
    if weights is None:
        weights = {c: 1.0 for c in library.categories}
    count = int(rng.integers(1, options.max_occluders + 1))
    chosen: list[Occluder] = []
    for _ in range(count):
        taken = [o.traits for o in chosen]
        allowed = {
            c: w for c, w in weights.items() if w > 0 and library.traits(c).compatible(taken)
        }
        if not allowed:
            break
        if fits is not None:
            fitting = {c: w for c, w in allowed.items() if any(map(fits, library.by_category(c)))}
            allowed = fitting or allowed
        first = stratum if not chosen else None
        chosen.append(library.choose(rng, allowed, first, fits, options.source_weights))
    return chosen


def _draw_layers(
    face: AlignedFace,
    library: OccluderLibrary,
    rng: np.random.Generator,
    options: SampleOptions,
    stats: FaceStats,
    stratum: float | None = None,
) -> tuple[list[Occluder], list[Layer], list[dict[str, Any]]]:
    from occlusion_synth.placement import estimate_yaw, far_side_keep, place, pose_fits

    yaw = estimate_yaw(face.landmarks)

    def fits(occ: Occluder) -> bool:  # a drawn mask on a face it can wrap; a harvested one
        return pose_fits(occ, face.landmarks, yaw)  # on a face turned like its own

    occluders = _choose_categories(library, rng, options, stratum, fits)
    occluders.sort(key=lambda o: o.traits.depth)  # stable
    layers, extra = [], []
    for occ in occluders:
        layer = place(occ, face.landmarks, rng)
        drape(layer, stats.light_dir, rng)  # drawn fabric: per-sample folds, face-lit
        note: dict[str, Any] = {}
        if occ.harvest is not None:  # a real photo: its own colours, harmonised; no tint
            note = harmonise_harvested(layer, occ, face)
        elif occ.traits.skin_tint:
            tone, origin = skin_tone(face, stats, rng, options.face_skin)
            tint_layer(layer, tone)
            note = {"skin_tone": [round(float(v), 1) for v in tone], "skin_from": origin}
        elif occ.category in DRAWN_IN_HAND:  # a phone drawn in its hand: the hand's skin
            tone, origin = skin_tone(face, stats, rng, options.face_skin)
            tint_drawn_hand(layer, occ, tone)
            note = {"skin_tone": [round(float(v), 1) for v in tone], "skin_from": origin}
        if occ.category in LOOPED:  # cords back to the ears, past the drawn loops' stubs
            add_ear_loops(layer, face.landmarks, far_side_keep(face.landmarks))
        if needs_hand(occ):  # a cup, microphone or phone comes in the hand holding it
            note["hand_skin_tone"] = hold_in_hand(layer, occ, face, stats, rng, options)
        if occ.traits.slot in BEHIND_HAIR_SLOTS:
            put_behind_hair(layer, cached_hair(face))
        if occ.traits.slot in HELD_OFF_SLOTS:
            layer.standoff = HELD_OFF_PX
        layers.append(layer)
        extra.append(note)
    slots = {o.traits.slot: k for k, o in enumerate(occluders)}
    if "eyes" in slots and "lower_face" in slots:  # glasses worn with a mask rest on it
        rest_on_mask(layers[slots["eyes"]], layers[slots["lower_face"]], face.landmarks)
    return occluders, layers, extra


def make_sample(
    face: AlignedFace,
    library: OccluderLibrary,
    rng: np.random.Generator,
    options: SampleOptions | None = None,
    key: str | None = None,
    stratum: float | None = None,
) -> Sample:
    """Occlude ``face`` with occluders from ``library``; every draw comes from ``rng``.

    ``stratum`` (from ``category_stratum``) fixes the first occluder's category; a build
    passes it so category counts follow the weights closely.
    """
    options = options or SampleOptions()
    stats = cached_face_stats(face)
    target = face.image
    scale = source_scale(face)
    fill = outside_fill(face)
    for _ in range(_MAX_TRIES):
        occluders, layers, extra = _draw_layers(face, library, rng, options, stats, stratum)
        inp, mask, info = composite(
            target,
            layers,
            rng,
            face.jpeg_quality,
            stats=stats,
            source_scale=scale,
            outside=fill,
        )
        coverage = mask_coverage(mask)
        if coverage >= options.min_coverage:
            break

    lm = face.landmarks
    landmarks: dict[str, Any] = lm.flat()
    landmarks["provider"] = lm.provider
    landmarks["estimated"] = sorted(lm.estimated)
    occ_meta = []
    for occ, layer, note in zip(occluders, layers, extra, strict=True):
        entry = {"name": layer.name, "category": layer.category, "slot": occ.traits.slot}
        entry["params"] = layer.params
        entry.update(note)
        occ_meta.append(entry)
    obj = object_mask(layers, mask)
    meta = {
        "source_id": face.source.id,
        "source_split": face.source.split,
        "occluders": occ_meta,
        "categories": "+".join(layer.category for layer in layers),
        "landmarks": landmarks,
        "coverage": coverage,
        "object_coverage": mask_coverage(obj),
        "jpeg_quality": face.jpeg_quality,
        "compose": info,
    }
    return Sample(
        key=key or default_key(face),
        input=inp,
        mask=mask,
        target=target,
        meta=jsonable(meta),
        object_mask=obj,
    )
