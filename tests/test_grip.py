"""Held props come in the hand that holds them: a tinted fist over the prop, never floating."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from occlusion_synth.canonical import MEAN_SHAPE, Landmarks
from occlusion_synth.faces import demo_faces, load_aligned
from occlusion_synth.grip import grip_point, hand_layer, hold, needs_hand
from occlusion_synth.occluders.library import OccluderLibrary
from occlusion_synth.occluders.schema import Harvest
from occlusion_synth.placement import place
from occlusion_synth.sample import SampleOptions, make_sample


@pytest.fixture(scope="module")
def lib() -> OccluderLibrary:
    return OccluderLibrary.load()


def mean_face() -> Landmarks:
    return Landmarks({k: tuple(v) for k, v in MEAN_SHAPE.items()}, provider="mean")


def test_which_props_need_a_hand(lib) -> None:
    assert all(needs_hand(o) for o in lib.by_category("cup") + lib.by_category("microphone"))
    phone = lib.by_category("phone")[0]
    assert not needs_hand(phone)  # drawn in its hand already
    assert needs_hand(dataclasses.replace(phone, harvest=Harvest(source="x.jpg")))
    assert not any(needs_hand(o) for o in lib.by_category("hand") + lib.by_category("cap"))


@pytest.mark.parametrize("category", ["cup", "microphone"])
def test_the_fist_grips_the_prop_in_the_frame(lib, category: str) -> None:
    lm = mean_face()
    for i, occ in enumerate(lib.by_category(category)):
        layer = place(occ, lm, np.random.default_rng(i))
        g = grip_point(occ, layer)
        assert g is not None and 0 <= g[0] < 256 and 0 <= g[1] < 256, (occ.name, g)
        gx, gy = np.round(g).astype(int)
        assert layer.alpha[gy, gx] > 0.5  # the grip lies on the prop (a glass: its juice)
        hand = hand_layer(occ, layer, lm, np.random.default_rng(i))
        assert hand.alpha[gy, gx] > 0.9  # ... and the fist covers it
        prop_alpha = layer.alpha.copy()
        hold(layer, hand, (0.0, -1.0))
        assert "held_by" in layer.params
        # the union of prop and hand, and the hand's colour on top where it is solid
        assert np.all(layer.alpha >= np.maximum(prop_alpha, hand.alpha) - 1e-5)
        solid = hand.alpha > 0.999
        assert np.allclose(layer.rgb[solid], hand.rgb[solid], atol=1e-4)
        # the arm runs on to the image's bottom edge: never a floating fist
        assert hand.alpha[-1].max() > 0.9


def test_samples_with_a_held_prop_keep_the_invariant() -> None:
    lib = OccluderLibrary.load()
    face = load_aligned(demo_faces()[0], provider="mediapipe")
    for cat in ("cup", "microphone"):
        s = make_sample(face, lib, np.random.default_rng(3), SampleOptions({cat: 1.0}))
        occ = s.meta["occluders"][0]
        assert "held_by" in occ["params"] and len(occ["hand_skin_tone"]) == 3
        changed = np.any(s.input != s.target, axis=2)
        assert np.array_equal(changed, s.mask == 255)
