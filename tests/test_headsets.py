"""Headsets with a boom microphone: worn over the head, the boom ending beside the mouth."""

from __future__ import annotations

import numpy as np
import pytest

from occlusion_synth.canonical import MEAN_SHAPE, Landmarks
from occlusion_synth.categories import CATEGORIES
from occlusion_synth.drape import drape
from occlusion_synth.occluders.library import OccluderLibrary
from occlusion_synth.placement import estimate_yaw, place
from occlusion_synth.sample import SampleOptions, make_sample


@pytest.fixture(scope="module")
def lib() -> OccluderLibrary:
    return OccluderLibrary.load()


def _front() -> Landmarks:
    return Landmarks({k: tuple(v) for k, v in MEAN_SHAPE.items()}, provider="mean")


def _boom_side(occ) -> str:
    """The mouth corner the boom reaches: the side of the asset's capsule (its sidecar
    anchors name the earset's side; a banded headset's boom side is in its drawing)."""
    names = occ.anchors.points
    if "jaw_right" in names and "jaw_left" not in names:
        return "mouth_right"
    if "jaw_left" in names and "jaw_right" not in names:
        return "mouth_left"
    return ""


def test_every_headset_reaches_from_the_ear_to_beside_the_mouth(lib) -> None:
    lm = _front()
    iod = lm.inter_ocular
    occs = lib.by_category("headset")
    assert len(occs) >= 6
    for i, occ in enumerate(occs):
        layer = place(occ, lm, np.random.default_rng(i))
        solid = layer.alpha > 0.5
        ys, xs = np.nonzero(solid)
        # the capsule beside one mouth corner, within half an IOD of it
        d = {
            c: np.hypot(xs - lm[c][0], ys - lm[c][1]).min() / iod
            for c in ("mouth_left", "mouth_right")
        }
        near = min(d, key=d.get)
        assert d[near] < 0.5, occ.name
        if _boom_side(occ):
            assert near == _boom_side(occ), occ.name
        # ... and the boom runs back to the ear, beyond the face's outline on that side
        jaw = lm["jaw_right" if near == "mouth_right" else "jaw_left"][0]
        assert (
            (xs.max() > jaw + 0.1 * iod) if near == "mouth_right" else (xs.min() < jaw - 0.1 * iod)
        )
        # the face itself stays clear: eyes, nose tip and mouth middle
        for p in ("left_eye", "right_eye", "nose_tip"):
            x, y = np.round(lm[p]).astype(int)
            assert layer.alpha[y, x] == 0, (occ.name, p)


def test_a_banded_headset_arches_over_the_head(lib) -> None:
    lm = _front()
    banded = [o for o in lib.by_category("headset") if "forehead" in o.anchors.points]
    assert len(banded) >= 4
    for occ in banded:
        layer = place(occ, lm, np.random.default_rng(0))
        solid = layer.alpha > 0.5
        ys, xs = np.nonzero(solid)
        assert ys.min() < lm["forehead"][1] - 0.6 * lm.inter_ocular, occ.name  # over the head
        assert xs.min() < lm["jaw_left"][0] and xs.max() > lm["jaw_right"][0], occ.name
        x = int(round(lm["forehead"][0]))
        assert not solid[int(lm["forehead"][1]) :, x].any(), occ.name  # not across the face


def test_a_turned_face_hides_the_far_cup_but_not_the_band(lib) -> None:
    """The far ear cup is behind the head, the band over the top of it is not."""
    front = _front()
    pts = dict(front.points)
    x, y = pts["nose_tip"]
    pts["nose_tip"] = (x + 20.0, y)  # turned: the image-right side is the far side
    turned = Landmarks(pts, provider="mean")
    assert estimate_yaw(turned) > 0.5
    occ = next(o for o in lib.by_category("headset") if "office" in o.name)  # two cups
    flat = place(occ, front, np.random.default_rng(0)).alpha > 0.5
    cut = place(occ, turned, np.random.default_rng(0)).alpha > 0.5
    ear = (slice(125, 155), slice(int(front["jaw_right"][0]) + 5, None))
    assert flat[ear].any() and not cut[ear].any()  # the far cup is gone
    top = slice(0, int(front["brow_right"][1]) - 10)
    right = slice(int(front["nose_bridge"][0]) + 20, None)
    assert cut[top, right].sum() > 0.8 * flat[top, right].sum()  # the band's far half stays


def test_headsets_are_not_draped_like_fabric(lib) -> None:
    occ = lib.by_category("headset")[0]
    layer = place(occ, _front(), np.random.default_rng(0))
    assert layer.surface is not None  # placed like a mask, with a template surface
    before = layer.rgb.copy()
    drape(layer, (-0.5, -0.8), np.random.default_rng(0))
    assert "drape" not in layer.params and np.array_equal(before, layer.rgb)


def test_a_headset_never_shares_a_face_with_a_drink_or_a_handheld_mic() -> None:
    t = CATEGORIES
    assert not t["headset"].compatible([t["cup"]])
    assert not t["headset"].compatible([t["microphone"]])
    assert t["headset"].compatible([t["cap"], t["sunglasses"], t["medical_mask"], t["hand"]])


def test_headset_samples_keep_the_exact_mask_invariant(lib) -> None:
    from occlusion_synth.faces import demo_faces, load_aligned

    faces = [load_aligned(r, provider="mediapipe") for r in demo_faces()[:2]]
    options = SampleOptions(category_weights={"headset": 1.0}, max_occluders=1)
    for k, face in enumerate(faces):
        s = make_sample(face, lib, np.random.default_rng(k), options)
        assert s.meta["categories"] == "headset"
        m = s.mask > 0
        assert m.any()
        assert np.array_equal(s.input[~m], s.target[~m])  # untouched outside the mask
