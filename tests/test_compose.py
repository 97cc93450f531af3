"""The compositor: the exact-mask invariant, realism effects confined to the mask, lighting."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from occlusion_synth.compose import composite
from occlusion_synth.layers import Layer
from occlusion_synth.realism import face_stats, noise_sigma

SIZE = 256


def random_target(rng: np.random.Generator, level: float | None = None) -> np.ndarray:
    """A face-like photo: smooth shading, some structure, sensor noise."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    base = level if level is not None else rng.uniform(40, 210)
    shade = base * (0.8 + 0.4 * (rng.uniform(-1, 1) * xx + rng.uniform(-1, 1) * yy))
    img = shade[..., None] * rng.uniform(0.7, 1.2, 3).astype(np.float32)
    cv2.ellipse(img, (128, 140), (70, 95), 0, 0, 360, (base * 1.1, base * 0.9, base * 0.8), -1)
    img += rng.normal(0, rng.uniform(0, 4), img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def random_layer(rng: np.random.Generator, name: str = "thing") -> Layer:
    """An anti-aliased random shape anywhere (also touching the border), random material."""
    canvas = np.zeros((SIZE * 4, SIZE * 4), np.uint8)
    pts = rng.uniform(-40, SIZE + 40, (int(rng.integers(3, 8)), 2)) * 4
    cv2.fillPoly(canvas, [pts.astype(np.int32)], 255)
    if rng.random() < 0.5:
        c = rng.uniform(0, SIZE, 2) * 4
        cv2.circle(canvas, (int(c[0]), int(c[1])), int(rng.uniform(8, 60) * 4), 255, -1)
    alpha = cv2.resize(canvas, (SIZE, SIZE), interpolation=cv2.INTER_AREA).astype(np.float32)
    alpha *= rng.uniform(0.3, 1.0) / 255.0 if rng.random() < 0.3 else 1.0 / 255.0
    rgb = np.empty((SIZE, SIZE, 3), np.float32)
    rgb[:] = rng.uniform(0, 1, 3)
    rgb += rng.normal(0, 0.05, rgb.shape).astype(np.float32)
    contact = None
    if rng.random() < 0.5:
        contact = cv2.erode(alpha, np.ones((5, 5), np.uint8)) * rng.uniform(0.3, 1.0)
    return Layer(
        rgb=np.clip(rgb, 0, 1),
        alpha=alpha,
        name=name,
        category="test",
        contact=contact,
        gloss=float(rng.choice([0.0, rng.uniform(0, 1)])),
    )


def disc_layer(colour: float, radius: int = 40, gloss: float = 0.0) -> Layer:
    alpha = np.zeros((SIZE, SIZE), np.float32)
    cv2.circle(alpha, (128, 150), radius, 1.0, -1, lineType=cv2.LINE_AA)
    rgb = np.full((SIZE, SIZE, 3), colour, np.float32)
    return Layer(rgb=rgb, alpha=alpha, name="disc", category="test", gloss=gloss)


def assert_exact_mask(target: np.ndarray, out: np.ndarray, mask: np.ndarray) -> None:
    assert out.dtype == np.uint8 and out.shape == target.shape
    assert mask.dtype == np.uint8 and mask.shape == target.shape[:2]
    assert set(np.unique(mask)) <= {0, 255}
    changed = (out != target).any(axis=2)
    np.testing.assert_array_equal(mask == 255, changed)
    np.testing.assert_array_equal(out[mask == 0], target[mask == 0])


@pytest.mark.parametrize("seed", range(40))
def test_invariant_random_layers(seed: int) -> None:
    rng = np.random.default_rng([7, seed])
    target = random_target(rng)
    before = target.copy()
    layers = [random_layer(rng, f"l{i}") for i in range(int(rng.integers(0, 4)))]
    quality = int(rng.integers(30, 96)) if rng.random() < 0.4 else None
    scale = float(rng.choice([1.0, 0.6, 2.9]))
    out, mask, info = composite(target, layers, rng, jpeg_quality=quality, source_scale=scale)
    np.testing.assert_array_equal(target, before)  # the target is never modified
    assert_exact_mask(target, out, mask)
    assert len(info["layers"]) <= len(layers)


def test_no_layers_and_invisible_layer_change_nothing() -> None:
    rng = np.random.default_rng(0)
    target = random_target(rng)
    out, mask, _ = composite(target, [], rng)
    np.testing.assert_array_equal(out, target)
    assert not mask.any()
    faint = disc_layer(1.0)
    faint.alpha *= 1e-4  # rounds to no change anywhere: nothing is masked
    out, mask, _ = composite(target, [faint], rng)
    np.testing.assert_array_equal(out, target)
    assert not mask.any()


def test_shadow_and_soft_edges_are_masked_and_extend_past_the_object() -> None:
    rng = np.random.default_rng(3)
    target = np.full((SIZE, SIZE, 3), 180, np.uint8)
    layer = disc_layer(0.1)
    layer.contact = layer.alpha.copy()
    out, mask, info = composite(target, [layer], rng)
    assert_exact_mask(target, out, mask)
    # Feathering and the contact shadow darken pixels outside the hard object...
    outside = (layer.alpha == 0) & (mask == 255)
    assert outside.sum() > 200
    assert (out[outside].astype(int) <= target[outside]).all()
    # ...but the effect is local: far from the disc nothing changes.
    assert not mask[:60].any() and not mask[:, :60].any()
    assert info["layers"][0]["shadow"]["from_contact"]


def test_the_contact_shadow_falls_away_from_the_light() -> None:
    """A mask's rim casts its shadow on the side away from the light, not a dark ring: with
    the shadow's offset set to zero, the side facing the light still gets less of it."""
    import dataclasses

    from occlusion_synth.compose import _shadow, plan_layer

    target = np.full((SIZE, SIZE, 3), 180, np.uint8)
    layer = disc_layer(0.9)
    layer.contact = layer.alpha.copy()
    plan = plan_layer(layer, face_stats(target), np.random.default_rng(5), 1.0)
    plan = dataclasses.replace(plan, shadow_dist=0.0, shadow_sigma=2.0, shadow_strength=0.4)
    factor = _shadow(layer, plan, (0.0, -1.0))  # the light above
    dark = 1.0 - factor.mean(2)
    x0, y0 = plan.box[0], plan.box[1]
    col = 128 - x0
    below = dark[150 + 40 + 2 - y0 : 150 + 40 + 5 - y0, col].mean()  # under the lower rim
    above = dark[150 - 40 - 4 - y0 : 150 - 40 - 1 - y0, col].mean()  # over the upper rim
    assert below > 0.02 and above < 0.5 * below


def test_a_held_off_object_casts_its_shadow_clear_of_it() -> None:
    """A hand held in front of the face (``Layer.standoff``) darkens the skin a few pixels
    beyond its lower edge, where an object worn on the face leaves it almost untouched."""
    target = np.full((SIZE, SIZE, 3), 180, np.uint8)
    worn, held = disc_layer(0.5), disc_layer(0.5)
    held.standoff = 5.0
    band = (slice(150 + 40 + 5, 150 + 40 + 9), slice(118, 139))  # below the lower rim
    dark = {}
    for name, layer in (("worn", worn), ("held", held)):
        out, mask, _ = composite(target, [layer], np.random.default_rng(2))
        assert_exact_mask(target, out, mask)
        dark[name] = 180.0 - out[band].astype(float).mean()
    assert dark["held"] > 4.0 and dark["held"] > 3 * max(dark["worn"], 0.5)


def test_a_held_off_object_does_not_take_the_faces_local_shading() -> None:
    """The face's dark eye socket under a hand does not show through it as a dark patch:
    a held-off object takes only a little of the face's local shading."""
    target = np.full((SIZE, SIZE, 3), 190, np.uint8)
    target[125:175, 100:150] = 70  # a dark region of the face under the object
    inner = disc_layer(0.6).alpha > 0.99
    inner[:, :] &= np.abs(np.arange(SIZE) - 128)[None, :] < 30
    spread = {}
    for standoff in (0.0, 5.0):
        layer = disc_layer(0.6)
        layer.standoff = standoff
        out, _, _ = composite(target, [layer], np.random.default_rng(4))
        luma = out.astype(float).mean(2)
        row = luma[140:160][:, inner[150]].mean(0)  # across the disc, through the dark part
        spread[standoff] = float(row.max() - row.min())
    assert spread[5.0] < 0.6 * spread[0.0]


def test_gloss_adds_a_highlight_only_inside_the_mask() -> None:
    target = np.full((SIZE, SIZE, 3), 120, np.uint8)
    matte, _, _ = composite(target, [disc_layer(0.2, gloss=0.0)], np.random.default_rng(1))
    shiny, mask, _ = composite(target, [disc_layer(0.2, gloss=1.0)], np.random.default_rng(1))
    assert_exact_mask(target, shiny, mask)
    body = disc_layer(0.2).alpha > 0.99
    assert shiny[body].max() > matte[body].max() + 30
    assert np.median(shiny[body]) < np.median(matte[body]) + 10  # a highlight, not a wash


def test_jpeg_path_only_touches_masked_pixels() -> None:
    rng = np.random.default_rng(5)
    target = random_target(rng)
    layer = random_layer(rng)
    plain, _, _ = composite(target, [layer], np.random.default_rng(9))
    jpeg, mask, info = composite(target, [layer], np.random.default_rng(9), jpeg_quality=40)
    assert info["jpeg_quality"] == 40
    assert_exact_mask(target, jpeg, mask)
    assert (jpeg != plain).any()  # JPEG artefacts were really applied inside


def test_dark_face_darkens_a_white_mask_more_than_a_bright_face() -> None:
    means = {}
    for level in (60, 200):
        target = random_target(np.random.default_rng(2), level=level)
        out, _, _ = composite(target, [disc_layer(0.95)], np.random.default_rng(4))
        core = np.zeros((SIZE, SIZE), bool)
        cv2.circle(core.view(np.uint8), (128, 150), 30, 1, -1)
        means[level] = out[core].mean()
    assert means[60] < means[200] - 20
    assert means[200] > 180  # a white mask on a bright face stays white-ish


def test_black_object_stays_dark_and_white_stays_light_on_a_tinted_face() -> None:
    target = np.zeros((SIZE, SIZE, 3), np.uint8)
    target[:] = (190, 120, 90)  # a warm, well-lit face
    dark, _, _ = composite(target, [disc_layer(0.05)], np.random.default_rng(0))
    white, _, _ = composite(target, [disc_layer(0.95)], np.random.default_rng(0))
    assert dark[150, 128].max() < 40
    px = white[150, 128].astype(int)
    assert px.min() > 170 and px.max() - px.min() < 40  # warm-ish, not skin coloured


def test_noise_is_matched_to_the_photo() -> None:
    clean = np.full((SIZE, SIZE, 3), 128, np.uint8)
    noisy = np.clip(128 + np.random.default_rng(0).normal(0, 6, clean.shape), 0, 255)
    noisy = noisy.astype(np.uint8)
    assert noise_sigma(clean[..., 0].astype(np.float32)) < 0.5
    assert 3.4 < face_stats(noisy).noise_sigma < 4.6  # luma of sigma-6 RGB noise: 4.0
    layer = disc_layer(0.5)
    a, _, _ = composite(clean, [layer], np.random.default_rng(0))
    b, _, _ = composite(noisy, [layer], np.random.default_rng(0))
    assert a[135:165, 115:140].std(axis=(0, 1)).max() < 1.0
    assert b[135:165, 115:140].std(axis=(0, 1)).min() > 3.0


def test_layers_composite_in_order() -> None:
    target = np.full((SIZE, SIZE, 3), (128, 124, 120), np.uint8)
    red, blue = disc_layer(0.0), disc_layer(0.0)
    red.rgb[:] = (1, 0, 0)
    blue.rgb[:] = (0, 0, 1)
    red.name, blue.name = "red", "blue"
    out, _, info = composite(target, [red, blue], np.random.default_rng(0))
    assert out[150, 128, 2] > out[150, 128, 0]
    assert [layer["name"] for layer in info["layers"]] == ["red", "blue"]
    out, _, info = composite(target, [blue, red], np.random.default_rng(0))
    assert out[150, 128, 0] > out[150, 128, 2]
    assert [layer["name"] for layer in info["layers"]] == ["blue", "red"]


def test_same_seed_same_result() -> None:
    rng = np.random.default_rng(11)
    target = random_target(rng)
    layers = [random_layer(rng) for _ in range(2)]
    a = composite(target, layers, np.random.default_rng(1), jpeg_quality=80)
    b = composite(target, layers, np.random.default_rng(1), jpeg_quality=80)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]


def test_reshoot_through_a_low_resolution_source_softens_only_masked_pixels() -> None:
    rng = np.random.default_rng(8)
    target = random_target(rng)
    layer = disc_layer(0.9)
    layer.rgb[::4] = 0.1  # fine stripes: lost when re-shot through a 2.9x smaller source
    sharp, _, _ = composite(target, [layer], np.random.default_rng(2))
    soft, mask, info = composite(target, [layer], np.random.default_rng(2), source_scale=2.9)
    assert info["source_scale"] == 2.9
    assert_exact_mask(target, soft, mask)
    body = layer.alpha > 0.99
    assert soft[body].std() < 0.5 * sharp[body].std()


def test_a_greyscale_photo_gets_greyscale_occluders() -> None:
    grey = np.full((SIZE, SIZE, 3), 128, np.uint8)
    red = disc_layer(0.0)
    red.rgb[:] = (1, 0, 0)
    out, mask, _ = composite(grey, [red], np.random.default_rng(0))
    assert mask.any() and (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert np.array_equal(mask > 0, (out != grey).any(axis=2))  # the invariant holds
    tinted = np.full((SIZE, SIZE, 3), (128, 124, 120), np.uint8)
    out, _, _ = composite(tinted, [red], np.random.default_rng(0))
    assert (out[..., 0].astype(int) - out[..., 1]).max() > 40  # colour photos keep colour


def _tight_photo_face(rng: np.random.Generator):
    """A 200x170 photo framed so the 256 frame reaches past its bottom and right edges."""
    from occlusion_synth.compose import OutsideFill
    from occlusion_synth.faces import FILL_BLUR, FILL_FADE, warp_to_canonical

    photo = random_target(rng)[:170, :200]
    matrix = np.array([[1.1, 0.05, 10.0], [-0.05, 1.1, 20.0]])
    target = warp_to_canonical(photo, matrix)
    fill = OutsideFill.from_matrix(matrix, (200, 170), FILL_FADE, FILL_BLUR)
    assert fill is not None
    return target, fill


def striped_layer() -> Layer:
    """A sharp, high-contrast striped band across the lower frame (into the outside)."""
    alpha = np.zeros((SIZE, SIZE), np.float32)
    alpha[150:, 40:] = 1.0
    rgb = np.zeros((SIZE, SIZE, 3), np.float32)
    rgb[:, ::4] = 1.0
    return Layer(rgb=rgb, alpha=alpha, name="stripes", category="test")


def test_outside_of_the_photo_is_refilled_not_sharp() -> None:
    rng = np.random.default_rng(5)
    target, fill = _tight_photo_face(rng)
    for outside in (None, fill):
        out, mask, _ = composite(
            target, [striped_layer()], np.random.default_rng(1), outside=outside
        )
        assert_exact_mask(target, out, mask)
        far = fill.keep < 0.05  # well beyond the photo's edge
        detail = np.abs(np.diff(out.astype(np.float32), axis=1))[far[:, 1:]].mean()
        if outside is None:
            assert detail > 20  # the stripes stay sharp over the smeared border
        else:
            assert detail < 3  # now smeared like the border itself
    # inside the photo the stripes are untouched by the refill
    inside = fill.keep[150:, 40:] >= 1.0
    plain, _, _ = composite(target, [striped_layer()], np.random.default_rng(1))
    assert np.array_equal(
        out[150:, 40:][inside & ~fill.region[150:, 40:]],
        plain[150:, 40:][inside & ~fill.region[150:, 40:]],
    )


def test_outside_refill_leaves_far_pixels_alone() -> None:
    """An occluder far from the border changes nothing out there (bit for bit)."""
    rng = np.random.default_rng(6)
    target, fill = _tight_photo_face(rng)
    out, mask, _ = composite(target, [disc_layer(0.2, radius=20)], rng, outside=fill)
    assert_exact_mask(target, out, mask)
    assert not mask[fill.region].any()


def _upsampled_noisy(scale: float, sigma: float) -> np.ndarray:
    """A flat grey photo with sensor noise ``sigma`` at its own resolution, upsampled by
    ``scale`` into the frame (as CelebA's half-size faces are)."""
    side = int(round(SIZE / scale))
    small = 128 + np.random.default_rng(0).normal(0, sigma, (side, side, 3))
    small = np.clip(np.rint(small), 0, 255).astype(np.uint8)
    return cv2.resize(small, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)


def test_an_upsampled_photo_is_measured_at_its_source_resolution() -> None:
    up = _upsampled_noisy(2.88, 6.0)
    in_frame = face_stats(up)
    at_source = face_stats(up, source_scale=2.88)
    assert in_frame.noise_sigma < 1.5  # the grain spans pixels: read far too low here
    assert 3.0 < at_source.noise_sigma < 5.0 and at_source.source_scale == 2.88
    assert face_stats(up, source_scale=1.0).source_scale == 1.0


def test_an_occluder_on_an_upsampled_photo_carries_its_grain() -> None:
    """After re-shooting through the source resolution, a flat occluder is as grainy there
    as the photo (it was nearly clean when noise was matched in the upsampled frame)."""
    scale = 2.88
    up = _upsampled_noisy(scale, 6.0)
    layer = disc_layer(0.5, radius=70)
    out, mask, _ = composite(up, [layer], np.random.default_rng(0), None, source_scale=scale)
    assert_exact_mask(up, out, mask)

    def grain(img: np.ndarray) -> float:
        side = int(round(SIZE / scale))
        small = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
        c = side // 2
        return noise_sigma(small[c - 10 : c + 15, c - 12 : c + 12, 1])

    assert 0.5 * grain(up) < grain(out) < 1.3 * grain(up)


def test_grain_fades_on_white_and_black_objects() -> None:
    """The same photo's grain shows in full on a mid-grey object and far less on a white or
    black one (a white mask in mid-tone grain reads as knitted)."""
    scale = 2.88
    up = _upsampled_noisy(scale, 6.0)

    def grain(value: float) -> float:
        layer = disc_layer(value, radius=70)
        out, _, _ = composite(up, [layer], np.random.default_rng(0), None, source_scale=scale)
        side = int(round(SIZE / scale))
        small = cv2.resize(out, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
        c = side // 2
        return noise_sigma(small[c - 10 : c + 15, c - 12 : c + 12, 1])

    mid, white, black = grain(0.5), grain(0.8), grain(0.1)
    assert white < 0.75 * mid and black < 0.85 * mid, (mid, white, black)


def test_a_grey_object_takes_a_strong_stage_light_colour() -> None:
    """Under an orange stage light (a face far redder than skin under neutral light, and the
    rest of the frame orange too) a drawn object turns clearly warm; under neutral light it
    stays within a few percent of grey."""
    from occlusion_synth.realism import NEUTRAL_SKIN_CHROMA, colour_cast

    grey = np.full(3, 110.0)
    neutral = colour_cast(NEUTRAL_SKIN_CHROMA * 120.0, grey, 0.7)
    np.testing.assert_allclose(neutral, 1.0, atol=0.02)
    light = np.array([1.5, 0.9, 0.55])
    orange = colour_cast(NEUTRAL_SKIN_CHROMA * light * 120.0, grey * light, 0.7)
    assert orange[0] / orange[2] > 1.6 and orange[0] > orange[1] > orange[2]


def test_a_ruddy_face_in_a_neutral_scene_leaves_a_white_object_white() -> None:
    """A face redder than neutral skin in a grey scene is its complexion, not the light: no
    cast (a white mask tinted pink gave samples away); a cool scene with a warm face: none."""
    from occlusion_synth.realism import NEUTRAL_SKIN_CHROMA, colour_cast

    ruddy = NEUTRAL_SKIN_CHROMA * np.array([1.3, 0.92, 0.8]) * 120.0
    np.testing.assert_allclose(colour_cast(ruddy, np.full(3, 110.0), 0.8), 1.0, atol=0.01)
    cool = colour_cast(ruddy, np.array([90.0, 110.0, 140.0]), 0.8)
    np.testing.assert_allclose(cool, 1.0, atol=0.02)
    # the same face with a warm room around it: a warm cast, no stronger than the room's
    warm = colour_cast(ruddy, np.array([140.0, 110.0, 80.0]), 0.8)
    assert warm[0] > 1.05 > 0.95 > warm[2]
    assert warm[0] / warm[2] <= (140.0 / 80.0) ** 0.8 + 1e-4


def test_a_white_drawn_object_rolls_off_instead_of_clipping() -> None:
    """A white mask on a brightly lit face keeps its shading (a highlight shoulder)."""
    yy = np.mgrid[0:SIZE, 0:SIZE][0].astype(np.float32) / SIZE
    target = np.clip(200 + 40 * (1 - yy), 0, 255)[..., None].repeat(3, axis=2).astype(np.uint8)
    layer = disc_layer(0.97, radius=60)
    out, mask, _ = composite(target, [layer], np.random.default_rng(0))
    assert_exact_mask(target, out, mask)
    inside = out[110:190, 100:156].astype(np.float32)
    assert (inside >= 254).mean() < 0.05  # not a flat white patch
    assert inside.max() > 215  # but still white


def test_a_held_off_object_casts_its_silhouettes_shadow_not_its_contact_line() -> None:
    """A hand's contact map (where its fingertips would touch) draws no firm shadow line
    once it is held off the face: the shadow comes from its whole silhouette."""
    target = np.full((SIZE, SIZE, 3), 180, np.uint8)
    infos = {}
    for standoff in (0.0, 5.0):
        layer = disc_layer(0.5)
        layer.contact = np.zeros_like(layer.alpha)
        layer.contact[185:191, 120:136] = 1.0  # a contact patch at the lower rim
        layer.standoff = standoff
        _, _, info = composite(target, [layer], np.random.default_rng(2))
        infos[standoff] = info["layers"][0]["shadow"]
    assert infos[0.0]["from_contact"] and not infos[5.0]["from_contact"]


def _edge_width(profile: np.ndarray) -> float:
    """10-90 % rise (pixels) of a mean step profile, low side first."""
    lo, hi = profile[:6].mean(), profile[-6:].mean()
    p = np.maximum.accumulate(np.clip((profile - lo) / (hi - lo), 0, 1))
    xs = np.arange(len(p), dtype=float)
    return float(np.interp(0.9, p, xs) - np.interp(0.1, p, xs))


@pytest.mark.parametrize("optics", [0.0, 0.8])
def test_an_outline_on_an_upsampled_jpeg_face_is_as_sharp_as_the_photos_own_edges(optics):
    """On a face upsampled from a small JPEG source (CelebA at half size), an occluder's
    outline is about as wide as a step edge of the same photo: the source's JPEG and
    resampling, which the re-shoot applies again, are not also put into the feather (they
    were: 2.2x as wide for a sharp photo)."""
    n, scale = 89, SIZE / 89
    src = np.full((n, n, 3), 90, np.float32)
    src[:, n // 2 :] = 170
    if optics:
        src = cv2.GaussianBlur(src, (0, 0), optics)
    src += np.random.default_rng(0).normal(0, 3, src.shape)
    ok, buf = cv2.imencode(
        ".jpg", np.clip(src, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 75]
    )
    target = cv2.resize(
        cv2.imdecode(buf, cv2.IMREAD_COLOR), (SIZE, SIZE), interpolation=cv2.INTER_CUBIC
    )
    alpha = np.zeros((SIZE, SIZE), np.float32)
    cv2.rectangle(alpha, (30, 60), (100, 200), 1.0, -1)
    layer = Layer(
        rgb=np.full((SIZE, SIZE, 3), 0.95, np.float32), alpha=alpha, name="r", category="test"
    )
    out, mask, _ = composite(target, [layer], np.random.default_rng(1), 75, source_scale=scale)
    assert_exact_mask(target, out, mask)
    photo = _edge_width(target[100:160, 112:144].astype(float).mean(2).mean(0))
    outline = _edge_width(out[100:160, 84:116].astype(float).mean(2).mean(0)[::-1])
    assert outline < 1.6 * photo, (outline, photo)


def test_unshoulder_inverts_the_highlight_shoulder() -> None:
    """A colour read from the photo (past the camera's shoulder) is made ready to be lit
    again: ``_shoulder(unshoulder(v)) == v`` below the roll-off's top."""
    from occlusion_synth.compose import SHOULDER, _shoulder, unshoulder

    values = np.repeat(np.linspace(0, 250, 251, dtype=np.float32).reshape(1, -1, 1), 3, 2)
    raw = unshoulder(values).astype(np.float32)
    assert np.array_equal(raw[values <= SHOULDER], values[values <= SHOULDER])
    assert (raw[values > SHOULDER] > values[values > SHOULDER]).all()
    _shoulder(raw)
    np.testing.assert_allclose(raw, values, atol=0.02)


def test_each_finger_is_rounded_on_its_own() -> None:
    """Form shading rounds a narrow part (a finger) across its own width, bright along its
    middle and darker at its sides, not flat like a band along a broad palm's rim."""
    from occlusion_synth.compose import _form_shading

    solid = np.zeros((160, 160), np.uint8)
    solid[80:150, 30:130] = 1  # the palm
    for x in (34, 58, 82, 106):  # four fingers, 10 px wide
        solid[20:80, x : x + 10] = 1
    f = _form_shading(solid, (0.0, -1.0), 0.3)
    row = f[40, 58:68]  # across one finger
    assert row[4:6].mean() > row[[0, 9]].mean() + 0.1
    assert f[115, 80] > 0.99  # the palm's middle stays unshaded
