"""Hair beside the face passes in front of ear loops, straps and glasses temples.

``realism.hair_cover`` estimates, once per face, where hair hangs beside the face (a colour
model of the hair above the face oval against skin and background); ``sample`` multiplies
the alpha of worn occluders by ``1 - hair`` there. Fixtures are drawn here: a skin-coloured
face oval at the mean shape, with or without dark hair hanging beside it.
"""

from __future__ import annotations

import numpy as np
import pytest

from occlusion_synth.canonical import MEAN_SHAPE, Landmarks
from occlusion_synth.faces import AlignedFace, FaceSource
from occlusion_synth.occluders.library import OccluderLibrary
from occlusion_synth.realism import face_oval, hair_cover
from occlusion_synth.sample import SampleOptions, make_sample

SKIN = (205, 160, 130)
HAIR = (45, 32, 25)
BACKGROUND = (120, 150, 190)


def _landmarks() -> Landmarks:
    return Landmarks(points=dict(MEAN_SHAPE), provider="celeba")


def _face(hair: bool, name: str) -> AlignedFace:
    rng = np.random.default_rng(3)
    img = np.empty((256, 256, 3), np.float32)
    img[:] = BACKGROUND
    lm = _landmarks()
    oval = face_oval(lm, (256, 256)).astype(bool)
    if hair:  # a head of long hair: above the face and hanging down both sides
        yy, xx = np.mgrid[0:256, 0:256]
        head = ((xx - 128) / 95.0) ** 2 + ((yy - 120) / 110.0) ** 2 <= 1.0
        img[head | ((abs(xx - 128) < 95) & (yy > 120))] = HAIR
    img[oval] = SKIN
    img += rng.normal(0, 3, img.shape)
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return AlignedFace(
        image=image,
        landmarks=lm,
        source=FaceSource(id=name, path=None),
        matrix=np.array([[1.0, 0, 0], [0, 1.0, 0]]),
    )


def test_hair_beside_the_face_is_found_and_the_face_itself_is_not() -> None:
    face = _face(True, "hair")
    lm = face.landmarks
    hair = hair_cover(face.image, lm)
    assert hair.dtype == np.float32 and hair.shape == (256, 256)
    assert hair.min() >= 0 and hair.max() <= 1
    oval = face_oval(lm, (256, 256)).astype(bool)
    assert hair[oval].max() == 0  # never over the face
    # beside the face at eye height, where ear loops and temples run
    eye_y = int(round(lm["left_eye"][1]))
    left = int(lm["jaw_left"][0]) - 20
    right = int(lm["jaw_right"][0]) + 20
    assert hair[eye_y, left] > 0.9 and hair[eye_y, right] > 0.9
    # not above the brows (caps and glasses sit on that hair) nor far from the face
    assert hair[: int(lm["brow_left"][1]) - 5].max() == 0
    assert np.array_equal(hair, hair_cover(face.image, lm))  # deterministic


def test_no_hair_no_cover() -> None:
    face = _face(False, "bald")
    assert not hair_cover(face.image, face.landmarks).any()


@pytest.fixture(scope="module")
def masks():
    lib = OccluderLibrary.load()
    return OccluderLibrary(lib.by_category("medical_mask"))


def test_ear_loops_go_behind_hair_and_the_mask_stays_exact(masks) -> None:
    opts = SampleOptions(category_weights={"medical_mask": 1.0})
    hidden = []
    for i in range(4):
        with_hair = make_sample(_face(True, "hair"), masks, np.random.default_rng([9, i]), opts)
        params = with_hair.meta["occluders"][0]["params"]
        hidden.append(params.get("under_hair", 0.0))
        changed = (with_hair.input != with_hair.target).any(axis=2)
        assert np.array_equal(changed, with_hair.mask == 255)  # the exact-mask invariant
        again = make_sample(_face(True, "hair"), masks, np.random.default_rng([9, i]), opts)
        assert np.array_equal(again.input, with_hair.input)
        bald = make_sample(_face(False, "bald"), masks, np.random.default_rng([9, i]), opts)
        assert "under_hair" not in bald.meta["occluders"][0]["params"]
    assert all(0 < h < 0.2 for h in hidden), hidden  # loops and edges, not the mask's body
