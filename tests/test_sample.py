"""One sample: occluder choice and compatibility, metadata, determinism, the invariant."""

from __future__ import annotations

import json

import numpy as np
import pytest

from occlusion_synth.categories import CATEGORIES, default_traits
from occlusion_synth.faces import demo_faces, load_aligned
from occlusion_synth.occluders.library import OccluderLibrary
from occlusion_synth.realism import face_stats
from occlusion_synth.sample import SampleOptions, cheek_colour, make_sample, skin_tone


def compatible(category: str, chosen: list[str]) -> bool:
    return default_traits(category).compatible([default_traits(c) for c in chosen])


@pytest.fixture(scope="module")
def faces():
    return [load_aligned(src, provider="mediapipe") for src in demo_faces()]


@pytest.fixture(scope="module")
def library():
    return OccluderLibrary.load()


def test_compatibility_rule() -> None:
    assert not compatible("eyeglasses", ["sunglasses"])
    assert not compatible("scarf", ["medical_mask"])
    assert not compatible("cup", ["cloth_mask"])
    assert compatible("sunglasses", ["medical_mask", "hand"])
    assert default_traits("my_own_thing").slot == "my_own_thing"
    assert not compatible("my_own_thing", ["my_own_thing"])


def test_invariant_on_demo_faces(faces, library) -> None:
    opts = SampleOptions(max_occluders=3)
    for i in range(40):
        face = faces[i % len(faces)]
        s = make_sample(face, library, np.random.default_rng([5, i]), opts)
        changed = (s.input != s.target).any(axis=2)
        np.testing.assert_array_equal(s.mask == 255, changed)
        np.testing.assert_array_equal(s.input[s.mask == 0], s.target[s.mask == 0])
        assert set(np.unique(s.mask)) <= {0, 255}
        np.testing.assert_array_equal(s.target, face.image)
        cats = [o["category"] for o in s.meta["occluders"]]
        assert 1 <= len(cats) <= 3
        assert all(compatible(c, cats[:k]) for k, c in enumerate(cats))
        depths = [CATEGORIES[c].depth for c in cats]
        assert depths == sorted(depths)  # worn items first, held objects in front


def test_meta_is_json_and_coverage_is_mask_mean(faces, library) -> None:
    opts = SampleOptions(max_occluders=2)
    s = make_sample(faces[0], library, np.random.default_rng(3), opts, key="k0001")
    meta = json.loads(json.dumps(s.meta, allow_nan=False))
    assert s.key == "k0001"
    assert meta["coverage"] == pytest.approx((s.mask == 255).mean())
    assert meta["source_id"] == faces[0].source.id
    lm = meta["landmarks"]
    assert lm["provider"] == faces[0].landmarks.provider
    assert lm["left_eye_x"] == pytest.approx(faces[0].landmarks.points["left_eye"][0])
    assert isinstance(lm["estimated"], list)
    for occ in meta["occluders"]:
        assert occ["category"] in library.categories
        assert occ["slot"] == CATEGORIES[occ["category"]].slot
        assert isinstance(occ["params"], dict)
    assert meta["categories"] == "+".join(o["category"] for o in meta["occluders"])
    assert len(meta["compose"]["layers"]) == len(meta["occluders"])


def test_same_seed_same_sample(faces, library) -> None:
    opts = SampleOptions(max_occluders=2)
    a = make_sample(faces[1], library, np.random.default_rng([9, 4]), opts)
    b = make_sample(faces[1], library, np.random.default_rng([9, 4]), opts)
    np.testing.assert_array_equal(a.input, b.input)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert json.dumps(a.meta) == json.dumps(b.meta)


def test_category_weights_are_respected(faces, library) -> None:
    opts = SampleOptions(category_weights={"sunglasses": 1.0})
    for i in range(5):
        s = make_sample(faces[0], library, np.random.default_rng([2, i]), opts)
        assert [o["category"] for o in s.meta["occluders"]] == ["sunglasses"]


def test_hands_take_a_skin_tone(faces, library) -> None:
    opts = SampleOptions(category_weights={"hand": 1.0}, face_skin=1.0)
    s = make_sample(faces[0], library, np.random.default_rng(1), opts)
    occ = s.meta["occluders"][0]
    assert occ["skin_from"] == "face"
    cheek = cheek_colour(faces[0])
    assert cheek[0] > cheek[2]  # a real face's cheek is redder than blue
    inside = (s.mask == 255) & (s.input != s.target).all(axis=2)
    hand = s.input[inside].astype(float).mean(axis=0)
    assert hand[0] > hand[2]


@pytest.mark.parametrize(
    ("category", "held"), [("hand", True), ("cup", True), ("medical_mask", False)]
)
def test_held_objects_stand_off_the_face_and_worn_ones_do_not(
    faces, library, category, held
) -> None:
    """Hands and held props are composited as held in front of the face (their shadow falls
    clear of them); a mask is worn on it."""
    opts = SampleOptions(category_weights={category: 1.0})
    s = make_sample(faces[0], library, np.random.default_rng(3), opts)
    layer = s.meta["compose"]["layers"][0]
    assert layer["category"] == category
    assert (layer.get("standoff_px", 0.0) > 0) == held


def test_category_strata_follow_the_weights_closely():
    """The build's low-discrepancy category choice tracks the weights at any n."""
    from occlusion_synth.occluders.library import OccluderLibrary
    from occlusion_synth.sample import category_stratum

    library = OccluderLibrary.load()
    weights = {"sunglasses": 2.0, "hand": 1.0, "cup": 1.0, "scarf": 0.5}
    total = sum(weights.values())
    rng = np.random.default_rng(0)
    for n in (200, 2000):
        counts = dict.fromkeys(weights, 0)
        for i in range(n):
            counts[library.choose(rng, weights, u=category_stratum(7, i)).category] += 1
        for cat, w in weights.items():
            assert abs(counts[cat] - n * w / total) <= 3, (n, cat, counts)
    assert category_stratum(7, 5) == category_stratum(7, 5) != category_stratum(8, 5)


def test_photo_size_comes_from_the_face_not_the_file(faces, monkeypatch) -> None:
    import PIL.Image

    from occlusion_synth import sample as sample_mod

    for face in faces:
        with PIL.Image.open(face.source.path) as im:
            assert face.photo_size == im.size
    tight = [f for f in faces if f.outside > 0]
    assert tight  # grace_hopper's frame reaches a little past the photo

    def no_open(*a, **k):
        raise AssertionError("the photo's header is not read")

    monkeypatch.setattr(PIL.Image, "open", no_open)
    sample_mod._FILL_CACHE.clear()
    for face in faces:
        assert sample_mod.photo_size(face) == face.photo_size
    assert sample_mod.outside_fill(tight[0]) is not None


@pytest.mark.parametrize("name", ["phone_gold", "phone_white", "phone_blue_case"])
def test_a_drawn_phone_hand_takes_the_skin_tone_and_the_phone_keeps_its_colour(
    faces, library, name
) -> None:
    from occlusion_synth.placement import place
    from occlusion_synth.sample import drawn_hand_colour, tint_drawn_hand

    occ = next(o for o in library.by_category("phone") if o.name == name)
    layer = place(occ, faces[0].landmarks, np.random.default_rng(4))
    before = layer.rgb.copy()
    tone = np.array([90.0, 60.0, 45.0], np.float32)  # a dark skin
    tint_drawn_hand(layer, occ, tone)
    solid = layer.alpha > 0.99
    moved = np.abs(layer.rgb - before).max(axis=2) > 0.02
    M = layer.transform
    for anchor, tinted in (("entry", True), ("target", False)):
        x, y = np.rint(M[:, :2] @ np.asarray(occ.anchors[anchor]) + M[:, 2]).astype(int)
        if not (0 <= x < 256 and 0 <= y < 256):
            continue  # the wrist may lie beyond the frame
        assert solid[y, x] and moved[y, x] == tinted, anchor
    hand = solid & moved
    assert hand.sum() > 100
    ref, _, _ = drawn_hand_colour(occ)
    # the hand's skin now has the tone's chromaticity (its shading kept)
    mean = layer.rgb[hand].mean(axis=0)
    np.testing.assert_allclose(mean / mean.sum(), tone / tone.sum(), atol=0.03)
    assert ref.shape == (3,)


def test_drawn_phones_in_a_sample_record_their_hand_tone(faces, library) -> None:
    opts = SampleOptions(category_weights={"phone": 1.0}, face_skin=1.0)
    s = make_sample(faces[0], library, np.random.default_rng(2), opts)
    occ = s.meta["occluders"][0]
    assert occ["category"] == "phone" and occ["skin_from"] == "face"
    assert len(occ["skin_tone"]) == 3


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_hand_from_the_face_is_lit_back_to_the_cheeks_colour(faces, index):
    """A face-coloured hand, once the compositor lights it like any drawn object (its gain,
    colour cast and highlight shoulder: ``compose.lit_colour``), has the
    cheekbones' colour times its drawn shade (``HAND_SHADE``, per channel +-3 %): never
    brighter (it read as washed out), and no second colour cast (it read as grey or cool)."""
    from occlusion_synth.compose import lit_colour
    from occlusion_synth.sample import HAND_SHADE

    face = faces[index]
    stats = face_stats(face.image)
    cheek = cheek_colour(face)
    for seed in range(20):
        tone, origin = skin_tone(face, stats, np.random.default_rng(seed), 1.0)
        assert origin == "face"
        rng = np.random.default_rng(seed)
        rng.random()
        shade = rng.uniform(*HAND_SHADE) * rng.uniform(0.97, 1.03, 3)
        lit = lit_colour(tone, stats)
        np.testing.assert_allclose(lit, np.clip(cheek * shade, 20, 250), rtol=2e-3)


def test_object_mask_is_the_occluders_own_pixels(faces, library) -> None:
    """``object_mask``: where a layer covers >= 0.5, within the mask; shadows and soft rims
    are in the mask only, so over several samples the object is clearly smaller."""
    import occlusion_synth.sample as sample_mod

    seen = []
    real_composite = sample_mod.composite

    def spy(target, layers, rng, *args, **kwargs):
        seen.append(layers)
        return real_composite(target, layers, rng, *args, **kwargs)

    opts = SampleOptions(category_weights={"medical_mask": 1.0, "hand": 1.0}, max_occluders=2)
    ratios = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sample_mod, "composite", spy)
        for i in range(6):
            s = make_sample(faces[i % len(faces)], library, np.random.default_rng([8, i]), opts)
            covered = np.zeros(s.mask.shape, bool)
            for layer in seen[-1]:
                covered |= layer.alpha >= 0.5
            np.testing.assert_array_equal(s.object_mask == 255, covered & (s.mask == 255))
            assert set(np.unique(s.object_mask)) <= {0, 255}
            assert s.meta["object_coverage"] == pytest.approx((s.object_mask == 255).mean())
            ratios.append((s.object_mask == 255).sum() / (s.mask == 255).sum())
    assert all(r > 0.3 for r in ratios)  # the object is most of what changed...
    assert np.median(ratios) < 0.95  # ...but not all of it: its shadow is in the mask only


def test_drawn_masks_go_only_on_faces_they_can_wrap(library) -> None:
    """Past ``max_yaw`` a drawn mask does not fit the face: a sample that may also take a
    hand takes the hand; one that may take only masks still gets a mask."""
    from occlusion_synth.canonical import MEAN_SHAPE, Landmarks
    from occlusion_synth.categories import CATEGORIES
    from occlusion_synth.placement import estimate_yaw, pose_fits
    from occlusion_synth.sample import _choose_categories

    front = Landmarks(dict(MEAN_SHAPE), provider="test")
    pts = dict(MEAN_SHAPE)
    x, y = pts["nose_tip"]
    pts["nose_tip"] = (x + 0.3 * (pts["right_eye"][0] - pts["left_eye"][0]), y)
    turned = Landmarks(pts, provider="test")
    limit = CATEGORIES["medical_mask"].max_yaw
    assert limit is not None and abs(estimate_yaw(turned)) > limit >= abs(estimate_yaw(front))
    mask = library.by_category("medical_mask")[0]
    hand = library.by_category("hand")[0]
    assert pose_fits(mask, front) and not pose_fits(mask, turned) and pose_fits(hand, turned)

    def drawn(weights: dict[str, float], lm) -> set[str]:
        opts = SampleOptions(category_weights=weights)
        got = set()
        for i in range(16):
            rng = np.random.default_rng([4, i])
            got |= {o.category for o in _choose_categories(library, rng, opts, None, fits(lm))}
        return got

    def fits(lm):
        return lambda occ: pose_fits(occ, lm)

    both = {"medical_mask": 3.0, "hand": 1.0}
    assert drawn(both, turned) == {"hand"}
    assert drawn(both, front) == {"medical_mask", "hand"}
    assert drawn({"medical_mask": 1.0}, turned) == {"medical_mask"}
