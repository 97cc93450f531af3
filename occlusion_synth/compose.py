"""Blend placed occluders onto a face photo so they look photographed, and derive the mask.

Every layer's random parameters are drawn first, all layers in order and each in a fixed
order, into a frozen ``LayerPlan`` (``plan_layer``); then step functions apply each plan to
the face, inside the layer's bounding box only:

1. **Edges and blur** (``_soften_edges``): colour is premultiplied by alpha, then colour
   and alpha are blurred together by the photo's own blur (estimated from the face, at
   least a ~0.6 px feather; on an upsampled source only its optical part, see
   ``RESHOT_SOFTENING``), so edges are anti-aliased, slightly soft and carry no halo.
2. **Lighting** (``_light``): the occluder is multiplied by the face's low-frequency
   shading relative to its mean (softened), by a global exposure gain and by the
   illuminant's colour cast (``realism.colour_cast``): a white mask on a dark photo is grey,
   on a warm photo warm, but stays white-ish; a black one stays dark. A ``Layer.lit`` layer
   (a photographed object, already harmonised to the face) takes the local shading and
   half the form shading (``LIT_FORM``): gain 1, no cast.
3. **Specular highlight** (``_specular``, ``Layer.gloss``): a soft highlight on each large
   part of the object (each lens, a cup's body), displaced towards the light.
4. **Noise** (``_add_noise``): noise at the photo's estimated level is added to the object.
5. **Contact shadow** (``_shadow``): a blurred, slightly offset copy of ``Layer.contact``
   (or of the alpha) darkens the face away from the light, before the occluder is laid
   over it (``_lay_over``).

The float result is quantised once; then the changed region is "re-shot" like the face was
(``_reshoot``): resampled through the source photo's resolution and, for a JPEG source,
JPEG-encoded at the source's quality there; only the changed pixels are taken from it.
Where the frame reaches past the source photo (``OutsideFill``), that part is then refilled
from the composited frame exactly as ``faces.warp_to_canonical`` filled the target's (the
photo's edge repeated outwards, blurred, fading in), so an occluder never stays sharp over
the smeared border. Finally **the mask is derived, not predicted**: ``mask == 255``
exactly where the returned input differs from the target in any channel, so the invariant
(outside the mask input == target, bit for bit; every changed pixel is masked) holds by
construction.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from occlusion_synth.boxes import Box, mask_box
from occlusion_synth.layers import Layer
from occlusion_synth.realism import FaceStats, colour_cast, exposure_gain, face_stats

#: Alpha below this counts as "not there" when finding a layer's bounding box.
_ALPHA_EPS = 1.0 / 1024.0

#: Blur of a freshly rendered, anti-aliased occluder edge (pixels).
_ASSET_BLUR = 0.5

#: Minimum feather applied to every edge (pixels).
_MIN_FEATHER = 0.6

#: How much of the scene's illuminant tint (``realism.colour_cast``) a drawn object takes: a
#: blind review read cool masks in warm scenes as pasted in at 0.5.
CAST_STRENGTH = 0.8

#: A held-off object's (``Layer.standoff``) shadow: blur added per pixel of standoff, and
#: the factor on its strength (it is the whole silhouette's shadow, not a contact line).
STANDOFF_SOFTNESS = 0.5
STANDOFF_DARKNESS = 1.8
#: ... and the share of the face's local shading it takes: it is lit in front of the face,
#: so the face's eye sockets and brows do not show on it (at 0.3 reviewers still saw the
#: eye and brow "through" drawn hands; a deeper form shading on them read as grey).
STANDOFF_SHADING = 0.1

#: Where a drawn object's lit colour starts to roll off towards white (``_shoulder``).
SHOULDER = 200.0

#: Share of the form shading (the rim turning away) a photographed (``Layer.lit``) object
#: takes: its own shading came from another face's light and a flatter pose, and harvested
#: masks without it read as flat cut-outs.
LIT_FORM = 0.5

#: What the blur estimate (``realism.face_stats``, source px) reads on a perfectly sharp
#: step edge of an upsampled source: its resampling (and JPEG, where it has one), which
#: ``_reshoot`` puts an occluder through again, so only the rest of a face's measured blur
#: is the photo's optics and goes into the feather. Measured on a step in an 89-px source,
#: cubic x2.88: 0.43-0.68 source px lossless, 0.43-0.81 at JPEG 75-90, by the step's
#: sub-pixel phase; 0.45 at JPEG 75 on a pixel boundary. With the whole measured blur in
#: the feather, an outline on that photo came out 2.2x as wide as its step edge (10-90 %:
#: 4.7 against 2.2 frame px; now 1.4x), and blind reviewers called masks "blurrier than
#: the face" in most rounds.
RESHOT_SOFTENING = 0.45
#: The least feather of an occluder on an upsampled source, in source px (a camera's own
#: anti-aliasing: without it fine stripes alias in ``_reshoot``'s area-down).
_MIN_FEATHER_RESHOT = 0.15

#: Grain lost by an occluder's noise in ``_reshoot`` (area-down on a grid of its own, cubic
#: up) beyond the source_scale^2 averaging, relative to the face's own grain: measured on
#: upsampled noisy photos (scale 2 and 2.88), the occluder kept 0.42-0.48 of the face's
#: (2.2 would match). Less, as a real face's measured noise includes fine skin texture,
#: clothing and JPEG artefacts that a smooth fabric would not show as strongly.
_RESHOOT_GRAIN = 1.5

#: Share of the grain left on white (falling linearly from mid-grey) and on black (rising
#: linearly to full at ``SHADOW_GRAIN_END``): a camera's tone curve flattens the highlights,
#: its noise reduction and JPEG smooth flat bright and dark areas, so a white or black mask
#: covered in mid-tone grain reads as knitted.
HIGHLIGHT_GRAIN = 0.35
SHADOW_GRAIN = 0.45
SHADOW_GRAIN_END = 64.0

#: Relative darkening of R, G, B by a shadow on skin (warm shadows).
_SHADOW_TINT = np.array([0.9, 1.0, 1.06], np.float32)
#: The share of the contact shadow on an object's side facing the light (all of it on the
#: side away from the light), so the shadow reads as cast rather than as a dark outline.
SHADOW_LIT_SIDE = 0.25


_NOISE_TABLE: np.ndarray | None = None
_NOISE_SIDE = 512


def _noise_table(side: int = _NOISE_SIDE) -> np.ndarray:
    """A fixed field of camera-like noise (unit luma sigma, a little chroma), made once.

    Each layer takes a crop at a random offset: far cheaper than drawing fresh normals for
    every pixel, and just as deterministic (the offset comes from the sample's rng).
    """
    global _NOISE_TABLE
    if _NOISE_TABLE is None or _NOISE_TABLE.shape[0] < side:
        g = np.random.default_rng(20240611)
        n = g.standard_normal((side, side, 4), dtype=np.float32)
        # mostly luma: a JPEG's subsampled chroma keeps little colour noise, and coloured
        # grain on a pale mask reads as glitter
        _NOISE_TABLE = np.ascontiguousarray(0.97 * n[..., :1] + 0.15 * n[..., 1:])
    return _NOISE_TABLE


def _highlight(
    solid: np.ndarray, light: tuple[float, float], jitter: np.ndarray
) -> np.ndarray | None:
    """A soft specular map (HxW, 0..1) on each large solid part (uint8 map ``solid``)."""
    n, labels, st, cent = cv2.connectedComponentsWithStats(solid, connectivity=8)
    if n <= 1:
        return None
    areas = st[1:, cv2.CC_STAT_AREA]
    order = np.argsort(areas)[::-1][: len(jitter)]
    keep = [int(i) + 1 for i in order if areas[i] >= max(40, 0.08 * areas.max())]
    h, w = solid.shape
    spec = np.zeros((h, w), np.float32)
    lx, ly = light
    for j, k in enumerate(keep):
        bx, by = int(st[k, cv2.CC_STAT_LEFT]), int(st[k, cv2.CC_STAT_TOP])
        bw, bh = int(st[k, cv2.CC_STAT_WIDTH]), int(st[k, cv2.CC_STAT_HEIGHT])
        cx = cent[k, 0] + (lx * 0.28 + jitter[j, 0]) * bw
        cy = cent[k, 1] + (ly * 0.28 + jitter[j, 1]) * bh
        sx, sy = max(0.11 * bw, 1.2), max(0.07 * bh, 1.0)  # a small, elongated glint
        gx = np.exp(-0.5 * ((np.arange(bx, bx + bw, dtype=np.float32) - cx) / sx) ** 2)
        gy = np.exp(-0.5 * ((np.arange(by, by + bh, dtype=np.float32) - cy) / sy) ** 2)
        blob = gy[:, None] * gx[None, :] * (labels[by : by + bh, bx : bx + bw] == k)
        view = spec[by : by + bh, bx : bx + bw]
        np.maximum(view, blob, out=view)
    # Stay off the very edge: the highlight fades with the (blurred) interior of the object.
    return spec * cv2.GaussianBlur(solid.astype(np.float32), (0, 0), 1.5)


#: Least half-thickness (px) a part of an object is rounded over (``_form_shading``).
_MIN_ROUND = 3.0


def _form_shading(solid: np.ndarray, light: tuple[float, float], depth: float) -> np.ndarray:
    """Per-pixel factor that rounds a flat object: its rim turns away from the camera.

    The rim (within ~18 % of the object's size of its outline, or of a narrower part's own
    half-thickness: each finger of a hand is rounded on its own, bright along its middle and
    darker at its sides, not shaded flat like the palm's rim) darkens by up to ``depth``,
    less on the side facing the light. Thin objects (frames, straps) are left flat.
    """
    dist = cv2.distanceTransform(solid, cv2.DIST_L2, 3)
    x, y, w, h = cv2.boundingRect(solid)
    reach = max(0.18 * min(w, h), 1.0)
    if float(dist.max()) < _MIN_ROUND:
        return np.ones_like(dist)
    # a part's half-thickness: the distance at the ridge nearby (dilated over the reach; a
    # square of the disc's area, separable and ~15x faster than OpenCV's elliptic kernel)
    size = 2 * int(np.ceil(0.886 * reach)) + 1
    ridge = cv2.dilate(dist, cv2.getStructuringElement(cv2.MORPH_RECT, (size, size)))
    local = np.clip(ridge, _MIN_ROUND, reach)
    rim = np.clip(1.0 - dist / local, 0.0, 1.0)
    rim *= rim
    frame = Box(0, 0, solid.shape[1], solid.shape[0])
    facing = _facing(frame, Box(x, y, x + w, y + h), light)
    return 1.0 - rim * (depth * (1.0 - 0.6 * facing))


@dataclass(frozen=True)
class LayerPlan:
    """One layer's random realism parameters, drawn by ``plan_layer``, and its boxes.

    ``touches``: the layer rests on the skin (its contact map casts the shadow, else its
    alpha does); ``noise_offset``: where in the noise table, as fractions; ``spec_jitter``:
    (4, 2) displacements of the highlights; ``obj``: the object's box grown by its feather;
    ``box``: the box its shadow may reach. Values keep the types they were drawn with.
    """

    feather: float
    shading_strength: float
    noise: float
    shadow_sigma: float
    shadow_dist: float
    touches: bool
    shadow_strength: float
    gloss: float
    form_depth: float
    noise_offset: np.ndarray
    spec_jitter: np.ndarray
    obj: Box
    box: Box


def plan_layer(
    layer: Layer, stats: FaceStats, rng: np.random.Generator, source_scale: float
) -> LayerPlan | None:
    """Draw the layer's realism parameters from ``rng`` (fixed order) and find its boxes.

    None for a layer with nothing visible (its draws are still made).
    """
    if stats.source_scale > 1.0:
        # Measured at the source's resolution: the occluder gets the source's optical blur
        # (the measured blur less what its JPEG and resampling did: ``RESHOT_SOFTENING``)
        # and noise before ``_reshoot`` resamples it through that resolution as the face was; the
        # area-down averages source_scale^2 pixels, so the noise is that much stronger here
        # (and ``_RESHOOT_GRAIN`` more: see there).
        pipeline = RESHOT_SOFTENING * stats.source_scale
        blur = float(np.sqrt(max(stats.blur_sigma**2 - pipeline**2, 0.0)))
        resample_blur, least = 0.0, _MIN_FEATHER_RESHOT * stats.source_scale
        noise_gain = stats.source_scale * _RESHOOT_GRAIN
    else:
        # The photo's blur, less what the asset already has and what re-shooting through the
        # source resolution (``_reshoot``) will add.
        blur, noise_gain, least = stats.blur_sigma, 1.0, _MIN_FEATHER
        resample_blur = 0.42 * source_scale if source_scale > 1.05 else 0.0
    residual = blur**2 - _ASSET_BLUR**2 - resample_blur**2
    feather = max(
        np.sqrt(max(residual, 0.0)) * rng.uniform(0.85, 1.15),
        least * rng.uniform(0.9, 1.3),
    )
    shading_strength = rng.uniform(0.6, 0.9)
    noise = stats.noise_sigma * noise_gain * rng.uniform(0.85, 1.2)
    shadow_sigma = rng.uniform(1.5, 3.5)
    shadow_dist = rng.uniform(1.0, 3.0)
    # Where the object rests on the skin casts a firm shadow; otherwise its whole silhouette
    # casts a weaker one. An object held off the skin (a hand) casts its silhouette's, clear
    # of it, as the gap that shows it is in front of the face (its contact map, a firm line
    # under the fingertips, drew a black-eye smudge there).
    touches = (
        layer.standoff == 0 and layer.contact is not None and cv2.minMaxLoc(layer.contact)[1] > 0.02
    )
    shadow_strength = rng.uniform(0.22, 0.4) if touches else rng.uniform(0.12, 0.25)
    if layer.standoff > 0:
        shadow_dist += layer.standoff
        shadow_sigma += STANDOFF_SOFTNESS * layer.standoff
        shadow_strength *= STANDOFF_DARKNESS
        shading_strength *= STANDOFF_SHADING
    gloss = layer.gloss * rng.uniform(0.25, 0.5)
    form_depth = rng.uniform(0.12, 0.28)
    noise_offset = rng.random(2)
    spec_jitter = rng.uniform(-0.05, 0.05, (4, 2))
    # The object's box (grown by its feather) and the box its shadow may reach.
    present = cv2.compare(layer.alpha, _ALPHA_EPS, cv2.CMP_GT)
    obj = mask_box(present, int(np.ceil(3 * feather + 1)))
    if obj is None:
        return None
    if touches:
        present |= cv2.compare(layer.contact, _ALPHA_EPS, cv2.CMP_GT)
    margin = int(np.ceil(3 * max(feather, shadow_sigma) + shadow_dist + 2))
    box = mask_box(present, margin)
    assert box is not None
    return LayerPlan(
        feather=feather,
        shading_strength=shading_strength,
        noise=noise,
        shadow_sigma=shadow_sigma,
        shadow_dist=shadow_dist,
        touches=touches,
        shadow_strength=shadow_strength,
        gloss=gloss,
        form_depth=form_depth,
        noise_offset=noise_offset,
        spec_jitter=spec_jitter,
        obj=obj,
        box=box,
    )


def _clip(a: np.ndarray, lo: float, hi: float, out: np.ndarray | None = None) -> np.ndarray:
    """``np.clip(a, lo, hi)`` (the same values) without its dispatch overhead."""
    out = np.maximum(a, lo, out=out)
    return np.minimum(out, hi, out=out)


def _facing(box: Box, centre: Box, light: tuple[float, float]) -> np.ndarray:
    """Over ``box``: -1 (the side of ``centre``'s box away from the light) .. 1 (facing it)."""
    x0, y0, x1, y1 = box
    cx0, cy0, cx1, cy1 = centre
    hw, hh = max((cx1 - cx0) / 2, 1.0), max((cy1 - cy0) / 2, 1.0)
    px = (np.arange(x0, x1, dtype=np.float32) - (cx0 + cx1) / 2) * np.float32(light[0] / hw)
    py = (np.arange(y0, y1, dtype=np.float32) - (cy0 + cy1) / 2) * np.float32(light[1] / hh)
    return np.clip(py[:, None] + px[None, :], -1.0, 1.0)


# (Per-channel work below goes through cv2.merge: numpy's broadcasting over a trailing axis
# of 3 is ten times slower.)
def _shadow(layer: Layer, plan: LayerPlan, light_dir: tuple[float, float]) -> np.ndarray:
    """5. The contact shadow's factor over ``plan.box``: blurred alpha/contact, pushed away
    from the light and falling on the side away from it (``SHADOW_LIT_SIDE`` of it on the
    side facing the light: a mask's rim casts a line under its lower edge, not a dark ring
    all round); shadows on skin are warmer (blue darkens most)."""
    x0, y0, x1, y1 = plan.box
    lx, ly = light_dir
    d = plan.shadow_dist
    dx, dy = int(round(-lx * d)), int(round(-ly * d + 0.5))
    sh = np.zeros((y1 - y0, x1 - x0), np.float32)
    src = layer.contact if plan.touches else layer.alpha
    sy0, sy1 = max(y0 - dy, 0), min(y1 - dy, src.shape[0])
    sx0, sx1 = max(x0 - dx, 0), min(x1 - dx, src.shape[1])
    if sy1 > sy0 and sx1 > sx0:
        sh[sy0 + dy - y0 : sy1 + dy - y0, sx0 + dx - x0 : sx1 + dx - x0] = src[sy0:sy1, sx0:sx1]
    sh = cv2.GaussianBlur(sh, (0, 0), plan.shadow_sigma, borderType=cv2.BORDER_CONSTANT)
    side = 1.0 - (1.0 - SHADOW_LIT_SIDE) * (_facing(plan.box, plan.obj, light_dir) + 1.0) / 2
    sh = np.minimum(sh * side * np.float32(plan.shadow_strength), 0.9)
    return cv2.merge([1.0 - sh * float(t) for t in _SHADOW_TINT])


def _soften_edges(layer: Layer, plan: LayerPlan) -> tuple[list[np.ndarray], np.ndarray]:
    """1. Premultiplied blur of colour and alpha together over ``plan.obj`` (no halo).

    Returns the blurred premultiplied channels and the alpha."""
    x0, y0, x1, y1 = plan.obj
    a = np.ascontiguousarray(layer.alpha[y0:y1, x0:x1], dtype=np.float32)
    rgb = np.ascontiguousarray(layer.rgb[y0:y1, x0:x1], dtype=np.float32)
    prem = cv2.merge([*cv2.split(cv2.multiply(rgb, cv2.merge([a, a, a]))), a])
    prem = cv2.GaussianBlur(prem, (0, 0), plan.feather, borderType=cv2.BORDER_CONSTANT)
    pr, pg, pb, a = cv2.split(prem)
    return [pr, pg, pb], np.minimum(a, 1.0)


def _light(
    prem: list[np.ndarray],
    a: np.ndarray,
    plan: LayerPlan,
    stats: FaceStats,
    gain: float,
    cast: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """2. Local shading (softened), exposure ``gain``, the object's own form and the
    illuminant's ``cast``, folded into one per-pixel factor with the un-premultiplication.

    Returns the lit straight colour (0..255) and the object's solid part (uint8)."""
    x0, y0, x1, y1 = plan.obj
    local = _clip(stats.shading[y0:y1, x0:x1] * (1.0 / stats.face_luma), 0.3, 2.0)
    local = cv2.pow(local, plan.shading_strength)
    light = _clip(local * gain, 0.35, 1.45)
    solid = (a > 0.6).view(np.uint8)
    if plan.form_depth > 0:
        light *= _form_shading(solid, stats.light_dir, plan.form_depth)
    light *= 255.0 / np.maximum(a, 1e-6)
    col = cv2.merge([ch * (light * float(c)) for ch, c in zip(prem, cast, strict=True)])
    return col, solid


def _specular(
    col: np.ndarray, solid: np.ndarray, plan: LayerPlan, light_dir: tuple[float, float]
) -> None:
    """3. A specular highlight on glossy objects, towards the light (``col`` in place)."""
    if plan.gloss > 0.01:
        spec = _highlight(solid, light_dir, plan.spec_jitter)
        if spec is not None:
            spec *= plan.gloss
            col += (255.0 - col) * cv2.merge([spec, spec, spec])


def _shoulder(col: np.ndarray) -> None:
    """A camera's highlight shoulder on a drawn object's lit colour (``col`` in place):
    above ``SHOULDER`` values roll off smoothly towards 255 instead of clipping, so a white
    mask keeps its shading rather than glowing flat white."""
    if cv2.minMaxLoc(col.reshape(col.shape[0], -1))[1] <= SHOULDER:
        return  # nothing above the shoulder: every value stays as it is
    over = np.maximum(col - SHOULDER, 0.0)
    room = 255.0 - SHOULDER
    col -= over
    col += room * (1.0 - cv2.exp(over * np.float32(-1.0 / room)))


def unshoulder(values: np.ndarray) -> np.ndarray:
    """The inverse of ``_shoulder``: the lit colour that rolls off to ``values`` (a colour
    read from the photo, already past the camera's shoulder, made ready to be lit again)."""
    v = np.asarray(values, np.float32)
    room = 255.0 - SHOULDER
    over = np.clip((v - SHOULDER) / room, 0.0, 0.98)
    return np.where(v > SHOULDER, SHOULDER - room * np.log1p(-over), v)


def _add_noise(col: np.ndarray, plan: LayerPlan, frame_shape: tuple[int, ...]) -> None:
    """4. Sensor noise like the photo's (luma-correlated, a little chroma; ``col`` in place),
    full in the mid-tones and fading in the highlights and shadows (``HIGHLIGHT_GRAIN``)."""
    if plan.noise > 0.05:
        h, w = col.shape[:2]
        table = _noise_table(max(_NOISE_SIDE, *frame_shape))
        ny = int(plan.noise_offset[0] * (table.shape[0] - h))
        nx = int(plan.noise_offset[1] * (table.shape[1] - w))
        grain = table[ny : ny + h, nx : nx + w] * np.float32(plan.noise)
        low, high = cv2.minMaxLoc(col.reshape(h, -1))[:2]
        if high > 128.0 or low < SHADOW_GRAIN_END:
            luma = cv2.cvtColor(col, cv2.COLOR_RGB2GRAY)
            bright = cv2.max((255.0 - luma) * np.float32(1 / 127.5), HIGHLIGHT_GRAIN)
            k = (1.0 - SHADOW_GRAIN) / SHADOW_GRAIN_END
            dark = cv2.max(luma * np.float32(k) + np.float32(SHADOW_GRAIN), SHADOW_GRAIN)
            fade = cv2.min(cv2.min(bright, dark), 1.0)
            grain *= cv2.merge([fade, fade, fade])
        col += grain


def _lay_over(region: np.ndarray, col: np.ndarray, a: np.ndarray) -> None:
    """Blend the object's colour ``col`` (clipped to 0..255) with alpha ``a`` over ``region``."""
    _clip(col, 0.0, 255.0, out=col)
    col -= region
    col *= cv2.merge([a, a, a])
    region += col


def scene_light(stats: FaceStats) -> tuple[float, np.ndarray]:
    """The exposure gain and per-channel colour cast laid on a drawn object (not on a
    ``Layer.lit`` one): what a colour read from the face must be divided by first."""
    return exposure_gain(stats.face_luma), colour_cast(
        stats.face_rgb, stats.scene_rgb, CAST_STRENGTH
    )


def lit_colour(tone: np.ndarray, stats: FaceStats) -> np.ndarray:
    """The colour (0..255 RGB) a drawn object of flat colour ``tone`` shows once composited:
    the scene's gain and cast (``scene_light``), then the highlight shoulder."""
    gain, cast = scene_light(stats)
    col = (np.asarray(tone, np.float32) * gain * cast).astype(np.float32).reshape(1, 1, 3)
    _shoulder(col)
    return col.reshape(3)


def unlit_colour(colour: np.ndarray, stats: FaceStats) -> np.ndarray:
    """The inverse of ``lit_colour``: the tone to give a drawn object so that it shows
    ``colour``, a colour read from the photo (already lit and past the camera's shoulder)."""
    gain, cast = scene_light(stats)
    return unshoulder(np.asarray(colour, np.float32)) / (gain * cast)


def _apply_layer(
    canvas: np.ndarray, origin: tuple[int, int], layer: Layer, plan: LayerPlan, stats: FaceStats
) -> dict[str, Any]:
    """Blend one planned layer into ``canvas`` (float32 0..255, its top-left at ``origin``):
    its shadow over the larger box first, then the object in its own box."""
    oy, ox = origin
    x0, y0, x1, y1 = plan.box
    region = canvas[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    region *= _shadow(layer, plan, stats.light_dir)
    x0, y0, x1, y1 = plan.obj
    region = canvas[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    if layer.lit:  # a photographed object already carries its light (harmonised)
        gain, cast = 1.0, np.ones(3, np.float32)
        plan = dataclasses.replace(plan, form_depth=plan.form_depth * LIT_FORM)
    else:
        gain, cast = scene_light(stats)
    prem, a = _soften_edges(layer, plan)
    col, solid = _light(prem, a, plan, stats, gain, cast)
    if not layer.lit:
        _shoulder(col)
    _specular(col, solid, plan, stats.light_dir)
    _add_noise(col, plan, layer.alpha.shape)
    _lay_over(region, col, a)
    return {
        "name": layer.name,
        "category": layer.category,
        "bbox": [int(v) for v in (plan.box.y0, plan.box.y1, plan.box.x0, plan.box.x1)],
        "feather_px": round(float(plan.feather), 3),
        "light_gain": round(float(gain), 3),
        "shading_strength": round(float(plan.shading_strength), 3),
        "form_depth": round(float(plan.form_depth), 3),
        "cast": [round(float(c), 3) for c in cast],
        "gloss": round(float(plan.gloss), 3),
        **({"lit": True} if layer.lit else {}),
        **({"standoff_px": round(float(layer.standoff), 3)} if layer.standoff > 0 else {}),
        "noise_sigma": round(float(plan.noise), 3),
        "shadow": {
            "strength": round(float(plan.shadow_strength), 3),
            "sigma_px": round(float(plan.shadow_sigma), 3),
            "offset_px": round(float(plan.shadow_dist), 3),
            "from_contact": bool(plan.touches),
        },
    }


#: An occluder's own pixels are those it covers at least this much (``object_mask``).
OBJECT_ALPHA = 0.5


def object_mask(layers: list[Layer], mask: np.ndarray) -> np.ndarray:
    """HxW uint8, 255 where any layer covers at least ``OBJECT_ALPHA`` and ``mask`` is set.

    The occluders themselves, as a hand-made mask of a real photo marks them: ``mask`` also
    holds their shadows, soft rims and the re-shoot's spread (29 % more pixels at the median
    of the segmenter recipe's mix; IoU 0.78 between the two, 0.38 for headsets).
    """
    out = np.zeros(mask.shape, bool)
    for layer in layers:
        out |= layer.alpha >= OBJECT_ALPHA
    return (out & (mask > 0)).view(np.uint8) * np.uint8(255)


def _differs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """HxW uint8 map, 1 where two HxWx3 uint8 images differ in any channel, else 0."""
    d = cv2.absdiff(a, b)
    return (cv2.transform(d, np.ones((1, 3), np.float32)) > 0).view(np.uint8)


def _reshoot(img: np.ndarray, changed: np.ndarray, quality: int | None, scale: float) -> np.ndarray:
    """Put the region around ``changed`` through the source photo's own pipeline.

    The frame was made from a source at ``scale`` frame pixels per source pixel (CelebA at
    half size: about 2.9) and, for a JPEG source, saved at ``quality``. For an upsampled
    source (scale > 1) the region is resampled down to the source's resolution, JPEG encoded
    and decoded there, and resampled back as the face was (area down, cubic up), so the
    occluder loses the same detail and carries the same artefacts as the face. A larger
    photo (scale < 1) had its artefacts shrunk by the downsampling: the region is encoded in
    the frame at a quality raised in proportion (``100 - (100 - q) * scale``), which is far
    cheaper than upsampling it. Returns a copy of ``img`` with the region replaced.
    """
    box = mask_box(changed, 8)
    assert box is not None
    x0, y0, x1, y1 = box
    crop = img[y0:y1, x0:x1]
    f = 1.0
    if scale > 1.05:
        f = max(1.0 / scale, 0.25)
    elif quality is not None and scale < 0.95:
        quality = int(round(100 - (100 - quality) * max(scale, 0.0)))
    sw, sh = max(int(round((x1 - x0) * f)), 8), max(int(round((y1 - y0) * f)), 8)
    if f != 1.0:
        small = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA)
    else:
        small = np.ascontiguousarray(crop)
    if quality is not None:
        ok, buf = cv2.imencode(".jpg", small[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if ok:
            small = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    if f != 1.0:
        small = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC)
    out = img.copy()
    out[y0:y1, x0:x1] = small
    return out


def _wide_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """float32 Gaussian blur of a uint8 image by a large ``sigma``, computed at a quarter of
    the resolution (area-down, blur, linear-up: 15x cheaper, and smooth anyway)."""
    h, w = img.shape[:2]
    f = 4 if min(h, w) >= 16 and sigma >= 4 else 1
    if f == 1:
        return cv2.GaussianBlur(img, (0, 0), sigma).astype(np.float32)
    sw, sh = -(-w // f), -(-h // f)
    small = cv2.resize(img.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA)
    # the area average and the linear upsampling blur by about 0.4 f between them
    small = cv2.GaussianBlur(small, (0, 0), np.sqrt(max(sigma**2 - (0.4 * f) ** 2, 1.0)) / f)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


@dataclass(frozen=True)
class OutsideFill:
    """Where the 256 frame lies beyond the source photo, and how that part was filled.

    ``keep``: HxW float32, 1 inside the photo, fading (over ``faces.FILL_FADE``) to 0
    beyond its edge; ``region``: HxW bool, the pixels not wholly inside the photo;
    ``map_x``/``map_y``: for every frame pixel, the frame position of the nearest photo
    pixel (the photo's edge repeated outwards); ``box``: the box of ``region``; ``blur``:
    ``faces.FILL_BLUR``.
    ``refill(img)`` is the fill of ``faces.warp_to_canonical`` computed from a frame
    instead of the photo.
    """

    keep: np.ndarray
    region: np.ndarray
    map_x: np.ndarray
    map_y: np.ndarray
    box: Box
    blur: float

    @classmethod
    def from_matrix(
        cls, matrix: np.ndarray, photo_size: tuple[int, int], fade: float, blur: float
    ) -> OutsideFill | None:
        """The fill of a frame made from a ``photo_size`` (w, h) photo through ``matrix``
        (2x3, source pixels -> frame, pixel centres); None when the frame is all photo."""
        w, h = int(photo_size[0]), int(photo_size[1])
        m = np.asarray(matrix, np.float64)[:2]
        scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
        if scale < 0.8:  # warp_to_canonical area-averaged the photo first: same geometry
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            rx, ry = nw / w, nh / h
            pre = np.array([[rx, 0.0, 0.5 * rx - 0.5], [0.0, ry, 0.5 * ry - 0.5], [0, 0, 1.0]])
            m = (np.vstack([m, [0.0, 0.0, 1.0]]) @ np.linalg.inv(pre))[:2]
            w, h = nw, nh
        size = 256
        inv = cv2.invertAffineTransform(m)
        gy, gx = np.mgrid[0:size, 0:size].astype(np.float64)
        u = inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2]
        v = inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2]
        # bilinear coverage of a photo of ones with a zero border (as warp_to_canonical's)
        inside = (
            np.clip(u + 1.0, 0, 1) * np.clip(w - u, 0, 1) * np.clip(v + 1.0, 0, 1)
            * np.clip(h - v, 0, 1)
        ).astype(np.float32)  # fmt: skip
        if float(inside.min()) >= 1.0:
            return None
        near = cv2.GaussianBlur(inside, (0, 0), fade)
        keep = np.maximum(inside, np.clip(2.0 * near, 0.0, 1.0))
        out = inside < 1.0
        uc, vc = np.clip(u, 0.0, w - 1.0), np.clip(v, 0.0, h - 1.0)
        map_x = (m[0, 0] * uc + m[0, 1] * vc + m[0, 2]).astype(np.float32)
        map_y = (m[1, 0] * uc + m[1, 1] * vc + m[1, 2]).astype(np.float32)
        box = mask_box(out.view(np.uint8), 0)
        assert box is not None
        return cls(keep=keep, region=out, map_x=map_x, map_y=map_y, box=box, blur=blur)

    def refill(self, img: np.ndarray, box: Box | None = None) -> np.ndarray:
        """float32: ``img`` with its out-of-photo part filled from its photo part, over
        ``box`` (default: the whole frame; a box's outer ``_margin`` pixels are unreliable)."""
        x0, y0, x1, y1 = box or Box(0, 0, img.shape[1], img.shape[0])
        rep = cv2.remap(
            img,
            self.map_x[y0:y1, x0:x1],
            self.map_y[y0:y1, x0:x1],
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        blurred = _wide_blur(rep, self.blur)
        k = self.keep[y0:y1, x0:x1]
        k = cv2.merge([k, k, k])
        return rep.astype(np.float32) * k + blurred * (1.0 - k)

    @property
    def _margin(self) -> int:
        """Reach of the fill's blur (OpenCV's kernel radius is at most 4 sigma)."""
        return int(np.ceil(4 * self.blur)) + 2

    def apply(self, new: np.ndarray, target: np.ndarray, changed: Box) -> np.ndarray:
        """``new`` (a composited frame) with its out-of-photo pixels refilled.

        Done as the difference of two refills (of ``new`` and of ``target``) added to the
        target, over only the out-of-photo pixels whose fill can draw on the ``changed``
        box: every other pixel keeps the target's value bit for bit."""
        r = self._margin + 2
        x0, y0, x1, y1 = self.box
        sx, sy = self.map_x[y0:y1, x0:x1], self.map_y[y0:y1, x0:x1]
        hit = (
            (sx > changed.x0 - r) & (sx < changed.x1 + r) & (sy > changed.y0 - r)
            & (sy < changed.y1 + r) & self.region[y0:y1, x0:x1]
        )  # fmt: skip
        ob = mask_box(hit.view(np.uint8), 0)
        if ob is None:
            return new
        ob = Box(ob.x0 + x0, ob.y0 + y0, ob.x1 + x0, ob.y1 + y0)
        h, w = new.shape[:2]
        m = self._margin
        wb = Box(max(ob.x0 - m, 0), max(ob.y0 - m, 0), min(ob.x1 + m, w), min(ob.y1 + m, h))
        delta = self.refill(new, wb) - self.refill(target, wb)
        ix0, iy0 = ob.x0 - wb.x0, ob.y0 - wb.y0
        delta = delta[iy0 : iy0 + ob.y1 - ob.y0, ix0 : ix0 + ob.x1 - ob.x0]
        sel = hit[ob.y0 - y0 : ob.y1 - y0, ob.x0 - x0 : ob.x1 - x0]
        val = target[ob.y0 : ob.y1, ob.x0 : ob.x1].astype(np.float32) + delta
        val = np.rint(np.clip(val, 0.0, 255.0)).astype(np.uint8)
        res = new.copy()
        np.copyto(res[ob.y0 : ob.y1, ob.x0 : ob.x1], val, where=sel[..., None])
        return res


def _is_grey(img: np.ndarray) -> bool:
    """True when every pixel of an RGB image has three equal channels."""
    return bool((img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all())


def composite(
    target: np.ndarray,
    layers: list[Layer],
    rng: np.random.Generator,
    jpeg_quality: int | None = None,
    stats: FaceStats | None = None,
    source_scale: float = 1.0,
    outside: OutsideFill | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Composite ``layers`` (in order) onto ``target`` and return ``(input, mask, info)``.

    ``target``: HxWx3 uint8 RGB (never modified). ``input``: HxWx3 uint8. ``mask``: HxW
    uint8, 255 exactly where ``input`` differs from ``target`` in any channel, else 0.
    ``jpeg_quality``: the source's JPEG quality, or None for a lossless source. ``stats``:
    precomputed ``realism.face_stats(target, source_scale)``, to share across samples of one
    face.
    ``source_scale``: frame pixels per source pixel (``AlignedFace.matrix``'s scale); the
    changed region is resampled through the source resolution like the face was.
    ``outside``: where the frame lies beyond the source photo (``OutsideFill``); that part
    is refilled from the composited frame as the target's was.
    ``info`` is JSON-able: per-layer realism parameters and the face statistics used.
    """
    if target.dtype != np.uint8 or target.ndim != 3 or target.shape[2] != 3:
        raise ValueError(f"target must be HxWx3 uint8, got {target.dtype} {target.shape}")
    if stats is None:
        stats = face_stats(target, source_scale)
    planned = [(layer, plan_layer(layer, stats, rng, source_scale)) for layer in layers]
    planned = [(layer, p) for layer, p in planned if p is not None]

    out = target.copy()
    mask = np.zeros(target.shape[:2], np.uint8)
    infos = []
    if planned:
        # Work only inside the union of the layers' boxes.
        x0, y0, x1, y1 = functools.reduce(Box.union, (p.box for _, p in planned))
        old = target[y0:y1, x0:x1]
        canvas = old.astype(np.float32)
        for layer, p in planned:
            infos.append(_apply_layer(canvas, (y0, x0), layer, p, stats))
        new = np.rint(_clip(canvas, 0.0, 255.0, out=canvas), out=canvas).astype(np.uint8)
        changed = _differs(new, old)
        if (jpeg_quality is not None or source_scale > 1.05) and changed.any():
            # Only the pixels the occluders changed take the re-shot values; the mask is
            # then recomputed, so a pixel the round trip happens to restore is unmasked.
            shot = _reshoot(new, changed, jpeg_quality, source_scale)
            new = old.copy()
            np.copyto(new, shot, where=cv2.merge([changed, changed, changed]).view(bool))
            changed = _differs(new, old)
        if _is_grey(old):  # a greyscale photo has no colour anywhere, its occluders neither
            new = np.repeat(np.rint(new.mean(axis=2, keepdims=True)).astype(np.uint8), 3, 2)
            changed = _differs(new, old)
        out[y0:y1, x0:x1] = new
        if outside is not None and changed.any():
            cb = mask_box(changed, 0)
            assert cb is not None
            out = outside.apply(out, target, Box(cb.x0 + x0, cb.y0 + y0, cb.x1 + x0, cb.y1 + y0))
            if _is_grey(target):
                out = np.repeat(np.rint(out.mean(axis=2, keepdims=True)).astype(np.uint8), 3, 2)
            mask = _differs(out, target) * np.uint8(255)
        else:
            mask[y0:y1, x0:x1] = changed * np.uint8(255)

    info = {
        "layers": infos,
        "face": {
            "luma": round(float(stats.face_luma), 2),
            "light_dir": [round(float(v), 3) for v in stats.light_dir],
            "noise_sigma": round(float(stats.noise_sigma), 3),
            "blur_sigma": round(float(stats.blur_sigma), 3),
        },
        "jpeg_quality": None if jpeg_quality is None else int(jpeg_quality),
        "source_scale": round(float(source_scale), 4),
    }
    return out, mask, info


__all__ = ["OutsideFill", "composite"]
