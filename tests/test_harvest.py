"""``occsynth occluders harvest``: real occluders cut from photos, as library assets.

Fixtures are made here: a drawn occluder pasted onto a demo face gives a photo with an exact
mask to harvest, so the round trip (harvest, then place back) can be measured.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from occlusion_synth import placement
from occlusion_synth.build import BuildOptions, run_build
from occlusion_synth.cli import main
from occlusion_synth.compose import LIT_FORM
from occlusion_synth.errors import UserError
from occlusion_synth.faces import FaceSource, demo_faces, load_aligned
from occlusion_synth.occluders import harmonise, matting
from occlusion_synth.occluders.harmonise import DEFAULT_STRENGTH
from occlusion_synth.occluders.harvest import harvest
from occlusion_synth.occluders.library import (
    OccluderLibrary,
    load_occluder,
    parse_source_weights,
    source_of,
)
from occlusion_synth.occluders.schema import Anchors
from occlusion_synth.placement import place, pose_fits, source_yaw
from occlusion_synth.sample import SampleOptions, harmonise_harvested, make_sample
from occlusion_synth.verify import verify_dataset

LICENCE = "CC0, made by the test"


@pytest.fixture(scope="module")
def faces():
    by_id = {s.id: s for s in demo_faces()}
    return [
        load_aligned(by_id[i], provider="mediapipe")
        for i in ("demo:astronaut", "demo:grace_hopper")
    ]


def _still(occ, **placement):
    """The occluder with no random jitter (and a fresh placement cache)."""
    return dataclasses.replace(
        occ, placement=dataclasses.replace(occ.placement, **placement), cache={}
    )


def _no_jitter(occ):
    pl = occ.placement
    fixed = {"scale_jitter": None, "rotation_jitter_deg": None, "offset_x": None, "offset_y": None}
    if pl.width_iod is not None:
        mid = (pl.width_iod[0] + pl.width_iod[1]) / 2
        fixed["width_iod"] = (mid, mid)
    return _still(occ, **fixed)


def _paste(face, occ) -> tuple[np.ndarray, np.ndarray]:
    """``occ`` placed without jitter on ``face``: the photo and its exact mask (alpha >= .5)."""
    layer = place(_no_jitter(occ), face.landmarks, np.random.default_rng(0))
    a = layer.alpha[..., None]
    img = np.rint(layer.rgb * 255 * a + face.image.astype(np.float32) * (1 - a))
    return img.astype(np.uint8), layer.alpha >= 0.5


def _write_photo(folder: Path, name: str, img: np.ndarray, mask: np.ndarray, sub=True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(folder / f"{name}.png")
    mdir = folder / "masks" if sub else folder
    mdir.mkdir(exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * 255).save(mdir / f"{name}.mask.png")
    return folder / f"{name}.png"


def _drawn(category: str, index: int = 0):
    return OccluderLibrary.load().by_category(category)[index]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _placed_back(occ, photo: Path) -> np.ndarray:
    """``occ`` placed (no jitter) on the face of ``photo`` as the harvest found it, in the
    photo's own pixels: the round trip. (The face's landmarks are those detected on the
    occluded photo; on a covered face they differ from the uncovered face's by several px.)"""
    face = load_aligned(FaceSource(id=photo.name, path=photo), provider="mediapipe")
    layer = place(_no_jitter(occ), face.landmarks, np.random.default_rng(0))
    back = cv2.warpAffine(layer.alpha, cv2.invertAffineTransform(face.matrix), (256, 256))
    return back >= 0.5


@pytest.fixture(scope="module")
def mask_photo(faces, tmp_path_factory):
    """A demo face wearing a drawn medical mask, with its exact mask."""
    folder = tmp_path_factory.mktemp("photos")
    img, mask = _paste(faces[0], _drawn("medical_mask", 2))
    _write_photo(folder, "astronaut_mask", img, mask)
    return folder, mask


@pytest.fixture(scope="module")
def harvested(mask_photo, tmp_path_factory):
    folder, _ = mask_photo
    out = tmp_path_factory.mktemp("lib")
    report = harvest([folder], "medical_mask", out, licence=LICENCE, matting_method="guided")
    assert len(report.assets) == 1 and not report.rejects
    return out, report.assets[0]


# ------------------------------------------------------------------ face-worn round trip


def test_harvested_mask_sidecar(harvested) -> None:
    _, png = harvested
    occ = load_occluder(png)
    assert occ.name == "medical_mask_astronaut_mask" and occ.placement.rule == "face_warp"
    assert len(occ.anchors.points) >= 4 and {"nose_tip", "chin"} <= occ.anchors.points.keys()
    assert occ.harvest is not None
    assert occ.harvest.source == "astronaut_mask.png" and occ.harvest.licence == LICENCE
    assert occ.harvest.auto_masked is False and occ.harvest.kind == "face_photo"
    assert occ.harvest.face_lab is not None
    q = occ.harvest.quality
    assert q["matting"] == "guided" and q["area_px"] > 1000 and 0 < q["edge_softness_px"] < 4
    a = occ.rgba[..., 3]
    assert ((a > 0) & (a < 255)).any(), "the edge is a soft matte"
    assert LICENCE in occ.provenance


def test_round_trip_lands_on_the_same_pixels(harvested, mask_photo) -> None:
    _, png = harvested
    folder, source_mask = mask_photo
    iou = _iou(_placed_back(load_occluder(png), folder / "astronaut_mask.png"), source_mask)
    assert iou >= 0.95, iou


def test_on_another_face_it_follows_the_landmarks(harvested, faces) -> None:
    _, png = harvested
    occ = _no_jitter(load_occluder(png))
    b = faces[1]
    layer = place(occ, b.landmarks, np.random.default_rng(1))
    for name in ("nose_tip", "mouth_left", "mouth_right"):
        x, y = (int(round(v)) for v in b.landmarks[name])
        assert layer.alpha[y, x] > 0.5, name
    for name in ("left_eye", "right_eye"):
        x, y = (int(round(v)) for v in b.landmarks[name])
        assert layer.alpha[y, x] == 0, name
    on_a = place(occ, faces[0].landmarks, np.random.default_rng(1))
    assert _iou(on_a.alpha >= 0.5, layer.alpha >= 0.5) < 0.95  # it moved with the face


def test_eyewear_round_trip(faces, tmp_path) -> None:
    img, mask = _paste(faces[0], _drawn("sunglasses"))
    photo = _write_photo(tmp_path / "in", "shades", img, mask, sub=False)
    report = harvest([tmp_path / "in"], "sunglasses", tmp_path / "lib", matting_method="guided")
    occ = load_occluder(report.assets[0])
    # harvested glasses are warped like masks (face_warp), nearly the identity on their own
    # face (thin rims lose a little to resampling; the eyewear rule's arc gave 0.73)
    assert occ.placement.rule == "face_warp"
    assert _iou(_placed_back(occ, photo), mask) >= 0.9


def test_hand_from_a_face_photo_round_trip(faces, tmp_path) -> None:
    img, mask = _paste(faces[0], _drawn("hand", 1))
    photo = _write_photo(tmp_path / "in", "hand", img, mask)
    report = harvest([tmp_path / "in"], "hand", tmp_path / "lib", matting_method="guided")
    occ = load_occluder(report.assets[0])
    assert occ.placement.rule.startswith("from_") and occ.placement.flip is False
    assert _iou(_placed_back(occ, photo), mask) >= 0.95


@pytest.fixture(scope="module")
def harvested_hand(faces, tmp_path_factory):
    """A hand harvested from a demo face wearing a drawn hand (module-wide)."""
    folder = tmp_path_factory.mktemp("hand_in")
    img, mask = _paste(faces[0], _drawn("hand", 1))
    _write_photo(folder, "hand", img, mask)
    lib = tmp_path_factory.mktemp("hand_lib")
    report = harvest([folder], "hand", lib, matting_method="guided")
    assert len(report.assets) == 1
    return lib, load_occluder(report.assets[0])


def test_harvested_hand_in_a_sample_is_harmonised_lit_and_not_tinted(harvested_hand, faces) -> None:
    lib, occ = harvested_hand
    library = OccluderLibrary([occ])
    opts = SampleOptions(category_weights={"hand": 1.0}, face_skin=1.0)
    for i in range(3):
        s = make_sample(faces[1], library, np.random.default_rng([5, i]), opts)
        meta = s.meta["occluders"][0]
        assert "skin_tone" not in meta and "skin_from" not in meta  # real skin kept
        assert meta["harmonised"] == {"strength": DEFAULT_STRENGTH, "source_ref": True}
        info = s.meta["compose"]["layers"][0]
        assert info["lit"] is True and info["light_gain"] == 1.0
        assert info["cast"] == [1.0, 1.0, 1.0]
        assert 0.0 < info["form_depth"] <= 0.28 * LIT_FORM  # half the drawn ones' rounding
        changed = (s.input != s.target).any(axis=2)
        assert np.array_equal(changed, s.mask == 255)  # the exact-mask invariant
    # the layer is the harmonised placement: same geometry, colours moved to the face
    rng = np.random.default_rng(7)
    layer = place(occ, faces[1].landmarks, np.random.default_rng(7))
    note = harmonise_harvested(lay := place(occ, faces[1].landmarks, rng), occ, faces[1])
    assert note["harmonised"]["source_ref"] and lay.lit and not layer.lit
    assert np.array_equal(lay.alpha, layer.alpha)
    assert not np.array_equal(lay.rgb, layer.rgb)


def test_harvested_hand_runs_on_only_along_its_entry_path(harvested_hand, faces, monkeypatch):
    """No streaks: beyond its own silhouette a harvested hand reaches only along its entry
    direction (its arm), to the image edge, never along the asset's other borders."""
    _, occ = harvested_hand
    assert occ.placement.extend
    calls = []
    real = placement._warp_affine

    def spy(o, M, extend, params):
        calls.append((M.copy(), dict(params)))
        return real(o, M, extend, params)

    monkeypatch.setattr(placement, "_warp_affine", spy)
    for seed in range(4):
        layer = place(occ, faces[1].landmarks, np.random.default_rng(seed))
        M, params = calls[-1]
        body = real(occ, M, False, dict(params)).alpha > 0
        d = np.asarray(occ.anchors["entry"]) - np.asarray(occ.anchors["target"])
        d = M[:, :2] @ d
        d /= np.linalg.norm(d)
        swept = np.zeros(body.shape, np.uint8)
        for t in range(0, 2 * 256):  # the silhouette swept along its entry direction
            shift = np.float32([[1, 0, d[0] * t], [0, 1, d[1] * t]])
            swept |= cv2.warpAffine(body.astype(np.uint8), shift, (256, 256), flags=0)
        band = cv2.dilate(swept, np.ones((7, 7), np.uint8)) > 0
        a = layer.alpha
        assert not (a[~band] > 0).any(), seed
        # the arm reaches the image edge
        rim = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
        assert (rim > 0.5).sum() >= 5, seed
        # and is solid where it runs on beyond the cut (no seam, no fading)
        solid = cv2.erode((a > 0.5).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        run_on = solid & ~body
        assert not run_on.any() or a[run_on].min() > 0.9, seed


def test_drawn_layers_are_not_lit(faces) -> None:
    layer = place(_drawn("hand", 1), faces[0].landmarks, np.random.default_rng(0))
    assert layer.lit is False


@pytest.mark.skipif(not matting.pymatting_available(), reason="pymatting is not installed")
def test_pymatting_matte(mask_photo, tmp_path) -> None:
    folder, source_mask = mask_photo
    report = harvest([folder], "medical_mask", tmp_path, matting_method="pymatting")
    occ = load_occluder(report.assets[0])
    assert occ.harvest.quality["matting"] == "pymatting"
    assert _iou(_placed_back(occ, folder / "astronaut_mask.png"), source_mask) >= 0.95


# ------------------------------------------------------------------ cut-outs and COCO


def test_rgba_cutout_prop(tmp_path, faces) -> None:
    cup = _drawn("cup", 1).rgba.copy()
    cup[..., 3] = np.where(cup[..., 3] > 127, 255, 0)  # a hard cut-out, as many are
    (tmp_path / "in").mkdir()
    Image.fromarray(cup, "RGBA").save(tmp_path / "in" / "mug.png")
    report = harvest([tmp_path / "in"], "cup", tmp_path / "lib", matting_method="guided")
    occ = load_occluder(report.assets[0])
    assert occ.harvest.kind == "cutout" and occ.harvest.face_lab is None
    assert occ.harvest.grip is not None and occ.harvest.quality["anchors_estimated"]
    t, e = occ.anchors["target"], occ.anchors["entry"]
    assert t[1] < e[1]  # rim up, base down
    a = occ.rgba[..., 3]
    assert ((a > 0) & (a < 255)).any()
    layer = place(occ, faces[1].landmarks, np.random.default_rng(0))
    assert layer.alpha.max() > 0.9


def _coco_file(path: Path, img_name: str, mask: np.ndarray, rle: bool) -> None:
    h, w = mask.shape
    if rle:
        from pycocotools import mask as cmask

        enc = cmask.encode(np.asfortranarray(mask.astype(np.uint8)))
        seg = {"size": [h, w], "counts": enc["counts"].decode("ascii")}
    else:
        contours, _ = cv2.findContours(
            mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
        )
        seg = [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]
    ys, xs = np.nonzero(mask)
    doc = {
        "images": [{"id": 7, "file_name": img_name, "width": w, "height": h}],
        "categories": [{"id": 1, "name": "face_mask"}, {"id": 2, "name": "person"}],
        "annotations": [
            {
                "id": 70,
                "image_id": 7,
                "category_id": 1,
                "segmentation": seg,
                "area": float(mask.sum()),
                "bbox": [float(xs.min()), float(ys.min()), float(np.ptp(xs)), float(np.ptp(ys))],
                "iscrowd": 0,
            }
        ],
    }
    path.write_text(json.dumps(doc), encoding="utf-8")


@pytest.mark.parametrize("rle", [False, True], ids=["polygon", "rle"])
def test_coco_import(mask_photo, tmp_path, faces, rle) -> None:
    pytest.importorskip("pycocotools")
    folder, source_mask = mask_photo
    ann = tmp_path / "instances.json"
    _coco_file(ann, "astronaut_mask.png", source_mask, rle)
    report = harvest(
        [folder],
        "medical_mask",
        tmp_path / "lib",
        coco=ann,
        coco_categories=["face_mask"],
        matting_method="guided",
    )
    assert [p.name for p in report.assets] == ["medical_mask_astronaut_mask_70.png"]
    occ = load_occluder(report.assets[0])
    assert occ.harvest.kind == "coco"
    from pycocotools.coco import COCO

    coco = COCO(str(ann))  # the instance as COCO rasterises it (polygons: pixel edges)
    drawn = coco.annToMask(coco.loadAnns([70])[0]).astype(bool)
    assert _iou(drawn, source_mask) > 0.85
    assert _iou(_placed_back(occ, folder / "astronaut_mask.png"), drawn) >= 0.95


# ------------------------------------------------------------------ bad inputs


def _cli(*args: str):
    return CliRunner().invoke(main, ["occluders", "harvest", *args])


def _assets(out: Path) -> list[Path]:
    return sorted(out.rglob("*.png")) + sorted(out.glob(".harvest-tmp-*"))


def _bad(tmp_path: Path, name: str, img: np.ndarray | bytes, mask: np.ndarray | None) -> Path:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    if isinstance(img, bytes):
        (folder / f"{name}.jpg").write_bytes(img)
    else:
        Image.fromarray(img).save(folder / f"{name}.jpg", quality=95)
    if mask is not None:
        Image.fromarray(mask).save(folder / f"{name}.mask.png")
    return folder


@pytest.mark.parametrize(
    "case, expected",
    [
        ("size", "is 200x200, the photo 256x256"),
        ("empty", "empty mask"),
        ("full", "mask covers 100% of the photo"),
        ("no_face", "face cannot be aligned: no face found"),
        ("unreadable", "not an image"),
        ("bad_mask", "unreadable mask"),
    ],
)
def test_bad_input_is_one_line_and_nothing_is_written(faces, tmp_path, case, expected) -> None:
    face = faces[0].image
    m = np.zeros((256, 256), np.uint8)
    m[150:220, 80:180] = 255
    folder = tmp_path / "in"
    if case == "size":
        _bad(tmp_path, case, face, np.zeros((200, 200), np.uint8) + 255)
    elif case == "empty":
        _bad(tmp_path, case, face, np.zeros((256, 256), np.uint8))
    elif case == "full":
        _bad(tmp_path, case, face, np.full((256, 256), 255, np.uint8))
    elif case == "no_face":
        rng = np.random.default_rng(0)
        noise = cv2.GaussianBlur(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8), (0, 0), 4)
        _bad(tmp_path, case, noise, m)
    elif case == "unreadable":
        _bad(tmp_path, case, b"this is not a jpeg" * 20, m)
    else:
        _bad(tmp_path, case, face, None)
        (folder / f"{case}.mask.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "lib"
    res = _cli("--from", str(folder), "--category", "medical_mask", "--out", str(out))
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert lines[0].startswith(f"rejected {case}.jpg: ") and expected in lines[0], lines
    assert lines[-1].startswith("Error: nothing harvested: 1 source(s) rejected")
    assert len(lines) == 2 and "Traceback" not in res.output
    assert _assets(out) == []
    rows = (out / "rejects.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "source,category,reason" and rows[1].startswith(f"{case}.jpg,medical_mask,")


def test_unknown_coco_category_is_one_line(mask_photo, tmp_path) -> None:
    pytest.importorskip("pycocotools")
    folder, source_mask = mask_photo
    ann = tmp_path / "instances.json"
    _coco_file(ann, "astronaut_mask.png", source_mask, rle=False)
    out = tmp_path / "lib"
    res = _cli(
        "--from", str(folder), "--category", "medical_mask", "--out", str(out),
        "--coco", str(ann), "--coco-category", "unicorn",
    )  # fmt: skip
    assert res.exit_code == 2
    assert res.output.strip() == (
        "Error: COCO category 'unicorn' is not in instances.json (it has: face_mask, person)"
    )
    assert not out.exists()


def test_missing_pycocotools_names_the_install(mask_photo, tmp_path, monkeypatch) -> None:
    folder, _ = mask_photo
    monkeypatch.setitem(sys.modules, "pycocotools", None)
    monkeypatch.setitem(sys.modules, "pycocotools.coco", None)
    res = _cli(
        "--from", str(folder), "--category", "medical_mask", "--out", str(tmp_path / "lib"),
        "--coco", str(tmp_path / "x.json"), "--coco-category", "a",
    )  # fmt: skip
    assert res.exit_code == 2
    assert res.output.strip() == "Error: --coco needs pycocotools: pip install pycocotools"


def test_good_and_bad_sources_together(mask_photo, faces, tmp_path) -> None:
    folder, _ = mask_photo
    mixed = tmp_path / "in"
    mixed.mkdir()
    for p in folder.rglob("*.png"):
        dest = mixed / p.relative_to(folder)
        dest.parent.mkdir(exist_ok=True)
        dest.write_bytes(p.read_bytes())
    _bad(tmp_path, "blank", faces[0].image, np.zeros((256, 256), np.uint8))
    res = _cli(
        "--from", str(mixed), "--category", "medical_mask", "--out", str(tmp_path / "lib"),
        "--matting", "guided", "--licence", LICENCE,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "rejected blank.jpg: empty mask" in res.output
    assert "harvested 1 medical_mask occluder(s)" in res.output
    assert len(list((tmp_path / "lib").rglob("*.png"))) == 1


def test_sheet_command_still_works_and_shows_harvested(harvested, tmp_path) -> None:
    out, _ = harvested
    res = CliRunner().invoke(
        main, ["occluders", "--occluders-dir", str(out), "--out", str(tmp_path / "s.png")]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "s.png").is_file()
    help_text = CliRunner().invoke(main, ["occluders", "--help"]).output
    assert "harvest" in help_text


# ------------------------------------------------------------------ in a build


def _hashes(root: Path) -> dict[str, str]:
    files = sorted((root / "shards").glob("*.tar")) + [root / "manifest.parquet"]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_build_with_harvested_occluders(mask_photo, tmp_path) -> None:
    folder, _ = mask_photo
    lib = tmp_path / "lib"
    harvest([folder], "real_mask", lib, matting_method="guided")  # a category of its own
    runs = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        opts = BuildOptions(
            faces="demo",
            n=6,
            out=out,
            workers=workers,
            shard_size=3,
            categories="real_mask",
            occluders_dir=str(lib),
            landmark_cache=str(tmp_path / "lm.parquet"),
        )
        run_build(opts, progress=False)
        runs[workers] = _hashes(out)
        assert verify_dataset(out).ok
    assert runs[1] == runs[2]


# ------------------------------------------------------------------ matting and harmonising


def test_matte_is_soft_only_in_the_band_and_edge_colours_are_clean() -> None:
    yy, xx = np.mgrid[0:80, 0:80]
    disc = (xx - 40) ** 2 + (yy - 40) ** 2 <= 20**2
    soft = cv2.GaussianBlur(disc.astype(np.float32), (0, 0), 1.2)
    red, green = np.array([0.9, 0.1, 0.1]), np.array([0.1, 0.8, 0.1])
    img = (soft[..., None] * red + (1 - soft[..., None]) * green).astype(np.float32)
    for method in ("guided", *(("pymatting",) if matting.pymatting_available() else ())):
        a = matting.refine(img, disc, band=2, method=method)
        far = cv2.dilate(disc.astype(np.uint8), np.ones((7, 7))) == 0
        deep = cv2.erode(disc.astype(np.uint8), np.ones((7, 7))) > 0
        assert (a[far] == 0).all() and (a[deep] == 1).all()
        assert ((a > 0) & (a < 1)).sum() > 50
        fg = matting.decontaminate(img, a, method)
        band = (a > 0.1) & (a < 0.9)
        assert fg[band][:, 1].mean() < 0.35, method  # little green spill at the edge


def test_harmonise_moves_the_cast_and_keeps_what_is_outside() -> None:
    rgb = np.full((20, 20, 3), 0.8, np.float32)
    alpha = np.zeros((20, 20), np.float32)
    alpha[5:15, 5:15] = 1.0
    src = harmonise.SkinRef((60.0, 12.0, 15.0), (10.0, 4.0, 5.0))
    same = harmonise.harmonise(rgb, alpha, src, src)
    assert np.allclose(same, rgb, atol=2e-3)
    warm = harmonise.SkinRef((60.0, 20.0, 28.0), (10.0, 4.0, 5.0))
    out = harmonise.harmonise(rgb, alpha, warm, src, strength=1.0)
    assert out[10, 10, 0] > out[10, 10, 2] + 0.05  # redder than blue now
    assert np.array_equal(out[0, 0], rgb[0, 0])
    dark = harmonise.SkinRef((40.0, 12.0, 15.0), (10.0, 4.0, 5.0))
    assert harmonise.harmonise(rgb, alpha, dark, src)[10, 10].mean() < 0.75


def test_a_harvested_mask_in_a_sample_gets_ear_loops(harvested, faces) -> None:
    _, png = harvested
    library = OccluderLibrary([load_occluder(png)])
    opts = SampleOptions(category_weights={"medical_mask": 1.0})
    s = make_sample(faces[1], library, np.random.default_rng(3), opts)
    loops = s.meta["occluders"][0]["params"]["ear_loops"]
    assert loops["sides"] and loops["width_px"] > 1.0
    assert np.array_equal((s.input != s.target).any(axis=2), s.mask == 255)


@pytest.mark.parametrize("category", ["medical_mask", "cloth_mask"])
def test_a_drawn_mask_gets_cords_back_to_both_ears(faces, category) -> None:
    """A drawn mask's loops run on from its stubs to the ears (a review called masks with
    no visible loops pasted on): on a frontal face both sides get cords, in the mask."""
    library = OccluderLibrary([_drawn(category)])
    opts = SampleOptions(category_weights={category: 1.0})
    s = make_sample(faces[0], library, np.random.default_rng(3), opts)
    assert s.meta["occluders"][0]["params"]["ear_loops"]["sides"] == ["left", "right"]
    assert np.array_equal((s.input != s.target).any(axis=2), s.mask == 255)


# ------------------------------------------------------------------ pose matching


def _turned(occ, dx: float):
    """``occ`` with its source face's nose tip moved ``dx`` inter-ocular distances across."""
    pts = dict(occ.anchors.points)
    iod = float(np.linalg.norm(np.subtract(pts["right_eye"], pts["left_eye"])))
    x, y = pts["nose_tip"]
    pts["nose_tip"] = (x + dx * iod, y)
    return dataclasses.replace(occ, name=f"{occ.name}_turned", anchors=Anchors(pts), cache={})


def test_source_yaw_reads_the_harvested_face_pose(harvested) -> None:
    occ = load_occluder(harvested[1])
    frontal = source_yaw(occ)
    assert frontal is not None and abs(frontal) < 0.2
    assert source_yaw(_turned(occ, 0.2)) > frontal + 0.4
    assert source_yaw(_turned(occ, -0.2)) < frontal - 0.4
    assert source_yaw(_drawn("medical_mask")) is None


def test_a_harvested_mask_goes_only_on_a_face_turned_like_its_own(harvested, faces) -> None:
    occ = load_occluder(harvested[1])
    lm = faces[0].landmarks
    assert pose_fits(occ, lm) and pose_fits(_drawn("medical_mask"), lm)
    turned = _turned(occ, 0.3)
    assert not pose_fits(turned, lm)
    library = OccluderLibrary([turned, occ])
    picks = {
        library.choose(
            np.random.default_rng(s), {"medical_mask": 1.0}, fits=lambda o: pose_fits(o, lm)
        ).name
        for s in range(20)
    }
    assert picks == {occ.name}
    only_turned = OccluderLibrary([turned])  # nothing fits: the category is still drawn from
    assert only_turned.choose(np.random.default_rng(0), {"medical_mask": 1.0}, fits=lambda o: False)


def test_source_weights_pick_variants_by_where_they_come_from(harvested, tmp_path) -> None:
    """``--source-weights``: within a category, harvested and drawn variants are picked in
    proportion to their source's weight; a category with none of positive weight falls back
    to all its variants; a bad source name is one clear line."""
    occ = load_occluder(harvested[1])
    drawn = OccluderLibrary.load().by_category("medical_mask")
    library = OccluderLibrary([*drawn, occ])
    weights = {"medical_mask": 1.0}

    def harvested_share(sources: dict[str, float] | None, n: int = 400) -> float:
        rng = np.random.default_rng(0)
        picks = [library.choose(rng, weights, sources=sources) for _ in range(n)]
        return sum(source_of(p) == "harvested" for p in picks) / n

    even = 1 / (len(drawn) + 1)
    assert abs(harvested_share(None) - even) < 0.06
    assert harvested_share(parse_source_weights("harvested:0")) == 0.0
    assert harvested_share(parse_source_weights("drawn:0")) == 1.0
    # harvested:N against N drawn variants of weight 1: half the picks
    assert abs(harvested_share(parse_source_weights(f"harvested:{len(drawn)}")) - 0.5) < 0.08
    only_drawn = OccluderLibrary(drawn)
    assert only_drawn.choose(np.random.default_rng(0), weights, sources={"drawn": 0.0})
    with pytest.raises(UserError, match="unknown occluder source 'harvest'"):
        parse_source_weights("harvest:2")
    result = CliRunner().invoke(
        main,
        ["build", "--faces", "demo", "--n", "2", "--out", str(tmp_path / "x")]
        + ["--source-weights", "a:1"],
    )
    assert result.exit_code == 2 and "unknown occluder source 'a'" in result.output
    assert not (tmp_path / "x").exists()  # refused before anything is written
