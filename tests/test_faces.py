"""Face sources, the two alignments, and the providers on demo faces and CelebA layouts."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from occlusion_synth import faces
from occlusion_synth.canonical import CANONICAL_POINTS, FIVE_POINTS, POINT_NAMES
from occlusion_synth.imageio import estimate_jpeg_quality, read_rgb
from occlusion_synth.landmarks import apply_affine, invert_affine


def _blob_image(h: int, w: int, at: tuple[float, float], sigma: float) -> np.ndarray:
    """A colour image with one soft bright dot centred on ``at`` (pixel-centre coords)."""
    yy, xx = np.mgrid[0:h, 0:w]
    dot = np.exp(-((xx - at[0]) ** 2 + (yy - at[1]) ** 2) / (2 * sigma**2))
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.round(255 * dot).astype(np.uint8)
    img[..., 1] = 40
    img[..., 2] = 90
    return img


def _centroid(img: np.ndarray) -> np.ndarray:
    weight = img[..., 0].astype(np.float64)
    weight[weight < 30] = 0
    yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    return np.array([(xx * weight).sum(), (yy * weight).sum()]) / weight.sum()


@pytest.mark.parametrize("size", [(178, 218), (89, 109), (356, 436)])
def test_celeba_transform_maps_image_and_points_alike(size: tuple[int, int]) -> None:
    w, h = size
    point = (0.41 * w, 0.47 * h)
    img = _blob_image(h, w, point, sigma=w / 60)
    matrix = faces.celeba_matrix(w, h)
    out = faces.warp_to_canonical(img, matrix)
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    expected = apply_affine(matrix, np.array([point]))[0]
    assert np.linalg.norm(_centroid(out) - expected) < 0.35
    # the crop keeps the 178x178 square starting 30/218 of the way down
    assert np.allclose(apply_affine(matrix, np.array([[-0.5, 30 * w / 178 - 0.5]])), -0.5)


@pytest.mark.parametrize(("scale", "angle"), [(0.3, 12.0), (2.5, -20.0), (1.0, 0.0)])
def test_similarity_alignment_maps_image_and_points_alike(scale: float, angle: float) -> None:
    # build source points: the canonical five, rotated/scaled into a bigger or smaller photo
    a = np.deg2rad(angle)
    inv = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) / scale
    five = (CANONICAL_POINTS - 128) @ inv.T + 128 / scale + 7
    side = int(300 / scale)
    dot = five[2] + (3.3, -2.1)
    img = _blob_image(side, side, tuple(dot), sigma=2.0 / scale)
    matrix = faces.alignment_matrix(five)
    assert np.allclose(apply_affine(matrix, five), CANONICAL_POINTS, atol=1e-6)
    out = faces.warp_to_canonical(img, matrix)
    expected = apply_affine(matrix, dot[None])[0]
    assert np.linalg.norm(_centroid(out) - expected) < 0.35


def test_downscaling_is_antialiased() -> None:
    # a 1-pixel checkerboard shrunk 4x must average to grey, not alias into stripes
    board = (np.indices((1024, 1024)).sum(axis=0) % 2 * 255).astype(np.uint8)
    rgb = np.repeat(board[..., None], 3, axis=2)
    matrix = np.array([[0.25, 0.0, -0.375], [0.0, 0.25, -0.375]])
    out = faces.warp_to_canonical(rgb, matrix)
    assert abs(out.mean() - 127.5) < 2 and out.std() < 3


def test_discover_demo_faces() -> None:
    sources = faces.discover_faces("demo")
    ids = [s.id for s in sources]
    assert ids == ["demo:astronaut", "demo:camera", "demo:grace_hopper"]
    # one person per split, so that a demo build has train, val and test samples
    assert [s.split for s in sources] == ["train", "val", "test"]
    assert all(s.kind == "demo" and s.path.is_file() for s in sources)


def test_demo_greyscale_face_is_admitted_only_as_a_demo(tmp_path: Path) -> None:
    camera = next(s for s in faces.discover_faces("demo") if s.id == "demo:camera")
    face = faces.load_aligned(camera)
    assert face.image.shape == (256, 256, 3)
    copy = tmp_path / "camera.png"
    copy.write_bytes(camera.path.read_bytes())
    with pytest.raises(faces.Reject, match="greyscale"):
        faces.load_aligned(faces.discover_faces(str(copy))[0])


@pytest.mark.parametrize("name", ["demo:astronaut", "demo:grace_hopper"])
@pytest.mark.parametrize("provider", ["mediapipe", "auto"])
def test_mediapipe_on_demo_faces(name: str, provider: str) -> None:
    src = next(s for s in faces.discover_faces("demo") if s.id == name)
    face = faces.load_aligned(src, provider=provider)
    lm = face.landmarks
    assert face.image.shape == (256, 256, 3) and face.image.dtype == np.uint8
    assert lm.provider == "mediapipe" and lm.estimated == frozenset()
    assert set(lm.points) == set(POINT_NAMES)
    assert lm.dense is not None and lm.dense.shape == (468, 2)
    # aligned: the eyes sit on their canonical places, image-left eye on the left
    assert np.abs(lm.array(FIVE_POINTS[:2]) - CANONICAL_POINTS[:2]).max() < 4
    assert lm["left_eye"][0] < lm["right_eye"][0]
    assert lm["brow_left"][1] < lm["left_eye"][1] < lm["nose_tip"][1] < lm["chin"][1]
    assert lm["forehead"][1] < lm["brow_left"][1]
    # the matrix maps the source points onto the reported landmarks
    assert np.allclose(apply_affine(face.matrix, face.found.five()), lm.array(FIVE_POINTS))
    if name == "demo:grace_hopper":
        assert face.jpeg_quality is not None and 1 <= face.jpeg_quality <= 100


def test_jpeg_quality_estimate(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (80, 80, 3), dtype=np.uint8)
    for q in (35, 60, 90):
        Image.fromarray(rgb).save(tmp_path / "q.jpg", quality=q)
        with Image.open(tmp_path / "q.jpg") as im:
            assert estimate_jpeg_quality(im) == q


# --------------------------------------------------------------- synthetic CelebA roots


@pytest.fixture(scope="module")
def celeba_like() -> tuple[np.ndarray, np.ndarray]:
    """A 178x218 CelebA-layout image made from the astronaut, and its five points."""
    src = next(s for s in faces.discover_faces("demo") if s.id == "demo:astronaut")
    face = faces.load_aligned(src, provider="mediapipe")
    back = invert_affine(faces.celeba_matrix(178, 218))
    img = cv2.warpAffine(
        face.image, back, (178, 218), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    five = apply_affine(back, face.landmarks.array(FIVE_POINTS))
    return img, five


def _write_celeba_root(root: Path, img: np.ndarray, five: np.ndarray, csv: bool) -> None:
    (root / "img_align_celeba").mkdir(parents=True)
    names = ["000001.jpg", "000002.jpg", "000003.jpg"]
    for n in names:
        Image.fromarray(img).save(root / "img_align_celeba" / n, quality=95)
    rows = names[:2]  # 000003.jpg has no annotation row
    cols = [
        "lefteye_x",
        "lefteye_y",
        "righteye_x",
        "righteye_y",
        "nose_x",
        "nose_y",
        "leftmouth_x",
        "leftmouth_y",
        "rightmouth_x",
        "rightmouth_y",
    ]
    vals = " ".join(f"{v:.1f}" for v in five.ravel())
    if csv:
        lines = ["image_id," + ",".join(cols)] + [f"{n}," + vals.replace(" ", ",") for n in rows]
        (root / "list_landmarks_align_celeba.csv").write_text("\n".join(lines) + "\n")
        part = ["image_id,partition", "000001.jpg,0", "000002.jpg,2", "000003.jpg,1"]
        (root / "list_eval_partition.csv").write_text("\n".join(part) + "\n")
    else:
        lines = [str(len(rows)), " ".join(cols)] + [f"{n}  {vals}" for n in rows]
        (root / "list_landmarks_align_celeba.txt").write_text("\n".join(lines) + "\n")
        part = ["000001.jpg 0", "000002.jpg 2", "000003.jpg 1"]
        (root / "list_eval_partition.txt").write_text("\n".join(part) + "\n")


@pytest.mark.parametrize("csv", [False, True], ids=["official", "kaggle-csv"])
def test_celeba_root_and_providers(tmp_path: Path, celeba_like, csv: bool) -> None:
    img, five = celeba_like
    _write_celeba_root(tmp_path, img, five, csv)
    sources = faces.discover_faces(str(tmp_path))
    assert [s.id for s in sources] == [
        "img_align_celeba/000001.jpg",
        "img_align_celeba/000002.jpg",
        "img_align_celeba/000003.jpg",
    ]
    assert [s.split for s in sources] == ["train", "test", "val"]
    assert all(s.kind == "celeba" for s in sources)
    assert np.allclose(sources[0].annotation, np.round(five, 1))
    assert sources[2].annotation is None

    matrix = faces.celeba_matrix(178, 218)
    celeba = faces.load_aligned(sources[0], provider="celeba")
    assert celeba.landmarks.provider == "celeba"
    assert celeba.landmarks.estimated == frozenset(POINT_NAMES[5:])
    assert np.allclose(celeba.matrix, matrix)
    assert np.allclose(
        celeba.landmarks.array(FIVE_POINTS), apply_affine(matrix, sources[0].annotation)
    )
    # estimated points are plausible: brows above eyes, chin below mouth
    lm = celeba.landmarks
    assert lm["brow_left"][1] < lm["left_eye"][1] and lm["chin"][1] > lm["mouth_left"][1]

    # MediaPipe on the same image agrees with the annotation
    mp = faces.load_aligned(sources[0], provider="mediapipe")
    err = np.linalg.norm(mp.landmarks.array(FIVE_POINTS) - lm.array(FIVE_POINTS), axis=1)
    assert err.mean() / lm.inter_ocular < 0.1
    assert np.array_equal(mp.image, celeba.image)  # same fixed crop whatever the provider

    # a missing annotation row: auto falls back to detection, celeba rejects
    assert faces.load_aligned(sources[2], provider="auto").landmarks.provider == "mediapipe"
    with pytest.raises(faces.Reject, match="no CelebA annotation"):
        faces.load_aligned(sources[2], provider="celeba")


def test_img_align_folder_itself_is_a_celeba_root(tmp_path: Path, celeba_like) -> None:
    img, five = celeba_like
    _write_celeba_root(tmp_path, img, five, csv=False)
    sources = faces.discover_faces(str(tmp_path / "img_align_celeba"))
    assert sources[0].kind == "celeba" and sources[0].annotation is not None


def test_plain_folder_is_recursive_sorted_and_skips_hidden(tmp_path: Path) -> None:
    rgb = np.zeros((70, 70, 3), np.uint8)
    for rel in ["b/2.png", "a.JPG", "b/1.jpeg", ".hidden/x.png", "notes.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith("txt"):
            (tmp_path / rel).write_text("x")
        else:
            Image.fromarray(rgb).save(tmp_path / rel, format="PNG")
    ids = [s.id for s in faces.discover_faces(str(tmp_path))]
    assert ids == ["a.JPG", "b/1.jpeg", "b/2.png"]
    assert all(s.kind == "folder" and s.split is None for s in faces.discover_faces(tmp_path))


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_missing_or_empty_faces_folder(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "nope" if kind == "missing" else tmp_path
    with pytest.raises(faces.FacesError) as info:
        faces.discover_faces(str(target))
    assert info.value.exit_code == 2 and "\n" not in info.value.message


# --------------------------------------------------------------- the development sample


def test_celeba_small_layout(shared_data: Path) -> None:
    sources = faces.discover_faces(str(shared_data / "celeba_small"))
    by_name = {s.path.name: s for s in sources}
    first, unannotated = by_name["000033.jpg"], by_name["000331.jpg"]
    assert first.split == "train" and first.annotation is not None
    assert unannotated.annotation is None
    assert sum(s.annotation is not None for s in sources) == 298
    face = faces.load_aligned(first)
    assert face.landmarks.provider == "celeba" and face.image.shape == (256, 256, 3)
    assert np.allclose(
        face.landmarks["left_eye"], apply_affine(face.matrix, first.annotation[:1])[0]
    )
    fallback = faces.load_aligned(unannotated, provider="auto")
    assert fallback.landmarks.provider == "mediapipe"
    assert np.abs(fallback.landmarks.array(FIVE_POINTS[:2]) - CANONICAL_POINTS[:2]).max() < 12


def test_read_rgb_gives_upright_rgb(tmp_path: Path) -> None:
    rgb = np.zeros((100, 80, 3), np.uint8)
    rgb[:10] = (255, 0, 0)  # red band at the top
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90 degrees clockwise
    im.save(tmp_path / "r.jpg", exif=exif, quality=95)
    out, quality = read_rgb(tmp_path / "r.jpg")
    assert out.shape == (80, 100, 3) and quality == 95
    assert out[:, -5:, 0].mean() > 200  # the red band is now on the right


def test_frame_beyond_the_photo_is_filled_softly_and_measured() -> None:
    rng = np.random.default_rng(5)
    photo = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    shift = np.array([[1.0, 0.0, 64.25], [0.0, 1.0, 64.0]])  # photo in the middle quarter
    assert faces.outside_fraction(photo.shape, shift) == pytest.approx(0.75, abs=1e-6)
    mirrored = np.array([[-1.0, 0.0, 191.75], [0.0, 1.0, 64.0]])  # same place, flipped
    assert faces.outside_fraction(photo.shape, mirrored) == pytest.approx(0.75, abs=1e-6)
    # CelebA's crop of a square photo: a square of its width from 30/178 down runs off the foot
    celeba = faces.celeba_matrix(128, 128)
    assert faces.outside_fraction(photo.shape, celeba) == pytest.approx(30 / 178, abs=1e-6)
    assert faces.outside_fraction((218, 178), faces.celeba_matrix(178, 218)) == 0.0
    out = faces.warp_to_canonical(photo, shift)
    plain = cv2.warpAffine(
        photo, shift, (256, 256), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    assert np.array_equal(out[70:186, 70:186], plain[70:186, 70:186])  # photo untouched
    # far from the photo the repeated edge is smoothed: neighbouring columns barely differ
    far = out[:20].astype(int)
    assert np.abs(np.diff(far, axis=1)).mean() < np.abs(np.diff(plain[:20].astype(int), 1)).mean()
