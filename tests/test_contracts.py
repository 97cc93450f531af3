"""Contracts over every bundled asset, placement rule and category, one test id each, so one
failing asset does not hide the others: load, sidecar, anchors, placement, the invariant."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from occlusion_synth.categories import CATEGORIES, default_traits
from occlusion_synth.compose import composite
from occlusion_synth.errors import UserError
from occlusion_synth.faces import demo_faces, load_aligned
from occlusion_synth.occluders.library import OccluderLibrary, default_dir, load_occluder
from occlusion_synth.occluders.schema import RULES, parse_sidecar
from occlusion_synth.placement import RULES as PLACERS
from occlusion_synth.placement import place

ASSETS = sorted(default_dir().glob("*/*.png"))
#: For each rule, the anchors whose coincidence makes its transform degenerate.
RULE_ANCHORS = {
    "eyewear": ("left_eye", "right_eye"),
    "face_warp": ("nose_tip", "chin"),
    "from_edge": ("target", "entry"),
    "from_below": ("target", "entry"),
    "from_above": ("target", "entry"),
}


@pytest.fixture(scope="module")
def faces():
    return [load_aligned(src, provider="mediapipe") for src in demo_faces()]


@pytest.fixture(scope="module")
def library() -> OccluderLibrary:
    return OccluderLibrary.load()


def _sidecar(png: Path) -> dict:
    return json.loads(png.with_suffix(".json").read_text(encoding="utf-8"))


def _by_rule(rule: str) -> Path:
    return next(p for p in ASSETS if _sidecar(p)["placement"]["rule"] == rule)


def test_every_bundled_category_has_assets() -> None:
    assert {p.parent.name for p in ASSETS} <= CATEGORIES.keys()
    assert len({p.parent.name for p in ASSETS}) >= 10


@pytest.mark.parametrize("png", [pytest.param(p, id=p.stem) for p in ASSETS])
def test_asset_loads_and_its_anchors_lie_inside(png: Path) -> None:
    occ = load_occluder(png)
    assert occ.name == png.stem and occ.category == png.parent.name
    assert occ.rgba.dtype == np.uint8 and occ.rgba.ndim == 3 and occ.rgba.shape[2] == 4
    assert occ.traits == CATEGORIES[occ.category]
    assert occ.placement.rule in occ.traits.rules
    assert 0.0 <= occ.material.gloss <= 1.0
    h, w = occ.rgba.shape[:2]
    for name, (x, y) in occ.anchors.points.items():
        assert 0 <= x < w and 0 <= y < h, name


@pytest.mark.parametrize("index", [pytest.param(i, id=p.stem) for i, p in enumerate(ASSETS)])
def test_asset_places_and_composites_with_the_invariant(faces, library, index: int) -> None:
    occ = next(o for o in library.occluders if o.path == ASSETS[index])
    face = faces[index % len(faces)]
    rng = np.random.default_rng([11, index])
    layer = place(occ, face.landmarks, rng)
    assert layer.alpha.max() > 0.5, "empty layer"
    assert 0.0 <= layer.alpha.min() and layer.alpha.max() <= 1.0
    assert 0.0 <= layer.rgb.min() and layer.rgb.max() <= 1.0
    assert layer.params["rule"] == occ.placement.rule
    json.dumps(layer.params, allow_nan=False)
    inp, mask, _ = composite(face.image, [layer], rng, face.jpeg_quality)
    changed = (inp != face.image).any(axis=2)
    assert changed.any()
    np.testing.assert_array_equal(mask == 255, changed)  # every masked pixel changed
    np.testing.assert_array_equal(inp[mask == 0], face.image[mask == 0])  # bit for bit


@pytest.mark.parametrize("rule", RULES)
def test_every_rule_has_a_placer_and_an_asset(rule: str) -> None:
    assert rule in PLACERS
    assert load_occluder(_by_rule(rule)).placement.rule == rule


@pytest.mark.parametrize("rule", RULES)
def test_coinciding_anchors_are_refused(rule: str) -> None:
    png = _by_rule(rule)
    meta = _sidecar(png)
    a, b = RULE_ANCHORS[rule]
    meta["anchors"][b] = [meta["anchors"][a][0] + 0.5, meta["anchors"][a][1]]
    with pytest.raises(UserError, match=f"anchors .*{a}.* coincide") as info:
        parse_sidecar(meta, png.with_suffix(".json"))
    assert png.with_suffix(".json").name in str(info.value)
    assert "\n" not in str(info.value)


def test_collinear_face_warp_anchors_are_refused() -> None:
    png = _by_rule("face_warp")
    meta = _sidecar(png)
    meta["anchors"] = {k: [10.0 * i, 5.0 * i] for i, k in enumerate(meta["anchors"], start=1)}
    with pytest.raises(UserError, match="lie on one line"):
        parse_sidecar(meta, png.with_suffix(".json"))


@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_category_traits(category: str) -> None:
    traits = CATEGORIES[category]
    assert default_traits(category) is traits
    assert set(traits.rules) <= set(RULES)
    assert not traits.compatible([traits])  # one occluder per slot
    assert traits.slot.isidentifier() and isinstance(traits.depth, int)


@pytest.mark.parametrize("category", sorted({p.parent.name for p in ASSETS}))
def test_library_traits_are_the_registry(library, category: str) -> None:
    assert library.traits(category) == CATEGORIES[category]
    assert {o.placement.rule for o in library.by_category(category)} <= set(
        CATEGORIES[category].rules
    )
