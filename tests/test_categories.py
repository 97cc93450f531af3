"""The category registry: built-in traits, a user category's default and declared traits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from occlusion_synth.categories import CATEGORIES, DEFAULT_DEPTH, CategoryTraits, register
from occlusion_synth.errors import UserError
from occlusion_synth.faces import demo_faces, load_aligned
from occlusion_synth.occluders.library import REPO_ASSETS, OccluderLibrary
from occlusion_synth.sample import SampleOptions, make_sample


def _user_dir(tmp_path: Path, category: str, names=("a",), asset="hand/hand_flat_palm", **traits):
    """A user folder of copies of a bundled asset as category ``category``."""
    src = REPO_ASSETS / asset
    folder = tmp_path / "mine" / category
    folder.mkdir(parents=True)
    for name in names:
        shutil.copy(src.with_suffix(".png"), folder / f"{name}.png")
        meta = json.loads(src.with_suffix(".json").read_text())
        meta.update(category=category, name=f"{category}_{name}", **traits)
        (folder / f"{name}.json").write_text(json.dumps(meta))
    return tmp_path / "mine"


def test_builtin_slots_depths_and_exclusions() -> None:
    t = CATEGORIES
    assert not t["eyeglasses"].compatible([t["sunglasses"]])
    assert not t["scarf"].compatible([t["medical_mask"]])
    assert not t["cup"].compatible([t["cloth_mask"]])
    assert not t["cup"].compatible([t["microphone"]])
    assert t["sunglasses"].compatible([t["medical_mask"], t["hand"]])
    assert t["medical_mask"].depth < t["sunglasses"].depth < t["cup"].depth < t["hand"].depth
    assert [c for c, tr in t.items() if tr.skin_tint] == ["hand"]


def test_register_adds_a_category() -> None:
    try:
        traits = register("visor_test", CategoryTraits("eyes", 2, rules=("eyewear",)))
        assert CATEGORIES["visor_test"] is traits
        assert not traits.compatible([CATEGORIES["sunglasses"]])
    finally:
        CATEGORIES.pop("visor_test", None)


def test_user_category_gets_its_own_slot(tmp_path: Path) -> None:
    lib = OccluderLibrary.load([_user_dir(tmp_path, "glove")])
    traits = lib.traits("glove")
    assert (traits.slot, traits.depth, traits.skin_tint, traits.rules) == (
        "glove",
        DEFAULT_DEPTH,
        False,
        (),
    )


def test_user_category_declares_traits(tmp_path: Path) -> None:
    lib = OccluderLibrary.load([_user_dir(tmp_path, "paw", slot="hand", skin_tint=True)])
    traits = lib.traits("paw")
    assert (traits.slot, traits.depth, traits.skin_tint) == ("hand", CATEGORIES["hand"].depth, True)
    assert not traits.compatible([CATEGORIES["phone"]])
    face = load_aligned(demo_faces()[0], provider="mediapipe")
    opts = SampleOptions(category_weights={"paw": 1.0}, face_skin=1.0)
    s = make_sample(face, lib, np.random.default_rng(0), opts)
    (occ,) = s.meta["occluders"]
    assert occ["slot"] == "hand" and occ["skin_from"] == "face"


@pytest.mark.parametrize(
    ("traits", "message"),
    [
        ({"slot": "not an identifier"}, "slot must be an identifier"),
        ({"depth": 1.5}, "depth must be an integer"),
        ({"skin_tint": "yes"}, "skin_tint must be true or false"),
    ],
)
def test_bad_declared_traits(tmp_path: Path, traits: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        OccluderLibrary.load([_user_dir(tmp_path, "glove", **traits)])


def test_builtin_traits_cannot_be_redeclared(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="'hand' is built in"):
        OccluderLibrary.load([_user_dir(tmp_path, "hand", slot="eyes")])


def test_builtin_category_refuses_a_foreign_rule(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="placement.rule from_edge is not one of eyewear"):
        OccluderLibrary.load([_user_dir(tmp_path, "sunglasses")])


def test_builtin_category_defaults_its_rule(tmp_path: Path) -> None:
    folder = _user_dir(tmp_path, "hand")
    side = folder / "hand" / "a.json"
    meta = json.loads(side.read_text())
    del meta["placement"]["rule"]
    side.write_text(json.dumps(meta))
    lib = OccluderLibrary.load([folder])
    mine = next(o for o in lib.by_category("hand") if o.name == "hand_a")
    assert mine.placement.rule == CATEGORIES["hand"].rules[0]


def test_one_category_declares_one_set_of_traits(tmp_path: Path) -> None:
    folder = _user_dir(tmp_path, "glove", names=("a", "b"))
    side = folder / "glove" / "b.json"
    side.write_text(json.dumps({**json.loads(side.read_text()), "depth": 5}))
    with pytest.raises(UserError, match="declare different slot, depth or skin_tint"):
        OccluderLibrary.load([folder])
