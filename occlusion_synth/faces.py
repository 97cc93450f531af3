"""Face sources (CelebA root, any image folder, bundled demo faces) and alignment to 256x256.

Sources
    ``discover_faces(spec)`` accepts a CelebA root (a folder with ``img_align_celeba/`` and,
    when present, ``list_landmarks_align_celeba.txt`` / ``.csv`` and
    ``list_eval_partition.txt`` / ``.csv``), the ``img_align_celeba`` folder itself, any
    folder of images (searched recursively, sorted by relative path), a single image file,
    or ``demo``: real face photos shipped inside installed packages (scikit-image's
    astronaut, matplotlib's Grace Hopper), so every command works with no data of its own.

Alignment
    CelebA-layout images (in ``img_align_celeba/``, 178:218 aspect, any size) use the fixed
    crop of ``canonical.celeba_crop_box`` resized to 256x256. Every other photo is aligned
    by the least-squares similarity transform taking its five points to
    ``canonical.CANONICAL_POINTS`` (eyes weighted most, see ``alignment_matrix``). Pixel
    coordinates follow the pixel-centre convention (pixel (0, 0) is centred on (0.0, 0.0))
    in source, matrix and output alike. Downscaling first area-averages (no aliasing);
    areas outside the photo repeat its edge pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .canonical import (
    CANONICAL_POINTS,
    CANONICAL_SIZE,
    CELEBA_ALIGNED_SIZE,
    FIVE_POINTS,
    Landmarks,
    celeba_crop_box,
)
from .errors import UserError
from .imageio import IMAGE_SUFFIXES, Reject, read_rgb
from .landmark_cache import LandmarkCache, normalise
from .landmarks import (
    NO_FACE,
    Detector,
    FaceMeshDetector,
    SourcePoints,
    apply_affine,
    check_provider,
    detect_points,
    get_detector,
    invert_affine,
    similarity,
    to_canonical,
)

__all__ = [
    "AlignedFace",
    "FaceSource",
    "FacesError",
    "Reject",
    "demo_faces",
    "discover_faces",
    "load_aligned",
    "locate",
]

CELEBA_IMAGES = "img_align_celeba"
CELEBA_SPLITS = {0: "train", 1: "val", 2: "test"}
#: A detected face whose eyes are closer than this (source pixels) is too small to use.
MIN_INTER_OCULAR = 10.0
#: Least-squares weights of the five points (eyes, nose, mouth corners) in the alignment.
ALIGN_WEIGHTS = np.array([10.0, 10.0, 1.0, 1.0, 1.0])


class FacesError(UserError):
    """``--faces`` names nothing usable (missing folder, no images)."""


@dataclass(frozen=True)
class FaceSource:
    """One face photo. ``id`` is stable: the path relative to the root, or ``demo:<name>``.

    ``kind`` is ``celeba`` (an image of a CelebA root), ``folder`` or ``demo``. ``path`` is
    the file to read (for demo faces, the file inside the package that carries it).
    ``annotation`` holds CelebA's five points in source pixels when the root has a row.
    """

    id: str
    path: Path | None
    kind: str = "folder"
    split: str | None = None
    annotation: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass
class AlignedFace:
    """A face in the canonical frame; ``matrix`` maps source pixels to it (2x3)."""

    image: np.ndarray
    landmarks: Landmarks
    source: FaceSource
    matrix: np.ndarray
    jpeg_quality: int | None = None
    found: SourcePoints | None = None  # source-pixel points (what a cache stores)
    outside: float = 0.0  # fraction of the frame beyond the photo (filled, see warp)


# --------------------------------------------------------------------------- discovery


#: The demo faces: every usable face photo that the installed packages ship (name ->
#: package, file inside its data folder, split). Three people, one per split, so that a demo
#: build has train, val and test samples; the cameraman is a greyscale photo, admitted (as
#: three equal channels) for the demo only.
DEMO_FACES: dict[str, tuple[str, str, str]] = {
    "astronaut": ("skimage", "astronaut.png", "train"),
    "camera": ("skimage", "camera.png", "val"),
    "grace_hopper": ("matplotlib", "sample_data/grace_hopper.jpg", "test"),
}


def _data_folder(package: str) -> Path | None:
    """The data folder of an installed package (None when it is not installed)."""
    try:
        if package == "skimage":
            import skimage.data

            return Path(skimage.data.__file__).parent
        import matplotlib

        return Path(matplotlib.get_data_path())
    except ImportError:  # pragma: no cover - both are dependencies
        return None


def demo_faces() -> list[FaceSource]:
    """The bundled demo faces (ids ``demo:<name>``), each with its fixed split."""
    faces = []
    for name, (package, rel, split) in DEMO_FACES.items():
        folder = _data_folder(package)
        if folder is not None and (folder / rel).is_file():
            faces.append(FaceSource(id=f"demo:{name}", path=folder / rel, kind="demo", split=split))
    if not faces:
        raise FacesError("no demo faces found (scikit-image / matplotlib data files missing)")
    return faces


def _read_table(path: Path, official_skip: int) -> pd.DataFrame:
    """A CelebA list file: official whitespace format, or the Kaggle CSV variant."""
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    return pd.read_csv(path, sep=r"\s+", skiprows=official_skip, header=None)


def _annotations(root: Path) -> dict[str, np.ndarray]:
    for name in ("list_landmarks_align_celeba.txt", "list_landmarks_align_celeba.csv"):
        path = root / name
        if path.is_file():
            try:
                table = _read_table(path, official_skip=2)
                values = table.iloc[:, 1:11].to_numpy(dtype=np.float64)
            except (ValueError, IndexError, pd.errors.ParserError) as exc:
                raise FacesError(f"cannot read CelebA landmarks {path}: {exc}") from None
            files = table.iloc[:, 0].astype(str)
            return {f: v.reshape(5, 2) for f, v in zip(files, values, strict=True)}
    return {}


def _partitions(root: Path) -> dict[str, str]:
    for name in ("list_eval_partition.txt", "list_eval_partition.csv"):
        path = root / name
        if path.is_file():
            try:
                table = _read_table(path, official_skip=0)
                splits = table.iloc[:, 1].astype(int).map(CELEBA_SPLITS)
            except (ValueError, IndexError, pd.errors.ParserError) as exc:
                raise FacesError(f"cannot read CelebA partition {path}: {exc}") from None
            return dict(zip(table.iloc[:, 0].astype(str), splits, strict=True))
    return {}


def _images_under(folder: Path) -> list[Path]:
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _celeba_sources(root: Path) -> list[FaceSource]:
    annotations, partitions = _annotations(root), _partitions(root)
    images = root / CELEBA_IMAGES
    return [
        FaceSource(
            id=p.relative_to(root).as_posix(),
            path=p,
            kind="celeba",
            split=partitions.get(p.name),
            annotation=annotations.get(p.name),
        )
        for p in _images_under(images)
    ]


def discover_faces(spec: str | Path) -> list[FaceSource]:
    """Every face source named by ``spec`` (see the module docstring), in a stable order."""
    if str(spec) == "demo":
        return demo_faces()
    root = Path(spec).expanduser()
    if root.is_file():
        if root.suffix.lower() not in IMAGE_SUFFIXES:
            raise FacesError(f"--faces {spec}: not an image file or folder")
        return [FaceSource(id=root.name, path=root, kind="folder")]
    if not root.is_dir():
        raise FacesError(f"--faces folder not found: {spec}")
    if root.name == CELEBA_IMAGES and not (root / CELEBA_IMAGES).is_dir():
        if any(
            (root.parent / f"list_landmarks_align_celeba{s}").is_file() for s in (".txt", ".csv")
        ):
            root = root.parent
    if (root / CELEBA_IMAGES).is_dir():
        sources = _celeba_sources(root)
    else:
        sources = [
            FaceSource(id=p.relative_to(root).as_posix(), path=p, kind="folder")
            for p in _images_under(root)
        ]
    if not sources:
        exts = ", ".join(sorted(IMAGE_SUFFIXES))
        raise FacesError(f"--faces {spec}: no images found (looked for {exts})")
    return sources


# --------------------------------------------------------------------------- alignment


def celeba_matrix(width: int, height: int) -> np.ndarray:
    """The fixed CelebA transform (2x3, pixel centres) for an aligned image of this size."""
    left, top, right, _ = celeba_crop_box(width, height)
    s = CANONICAL_SIZE / (right - left)
    return np.array([[s, 0.0, s * (0.5 - left) - 0.5], [0.0, s, s * (0.5 - top) - 0.5]])


def is_celeba_layout(src: FaceSource, width: int, height: int) -> bool:
    """True when the fixed CelebA crop applies (a CelebA-root image with CelebA's aspect)."""
    aspect = CELEBA_ALIGNED_SIZE[0] / CELEBA_ALIGNED_SIZE[1]
    return src.kind == "celeba" and abs(width / height - aspect) < 0.01


def alignment_matrix(five: np.ndarray) -> np.ndarray:
    """Similarity transform (2x3) taking five source points to ``CANONICAL_POINTS``.

    Weighted least squares with the eyes weighted ``ALIGN_WEIGHTS``: the eyes land on
    their canonical places (faces' proportions vary, and occluders hang on the eyes)
    while nose and mouth still temper the scale of turned heads.
    """
    return similarity(five, CANONICAL_POINTS, ALIGN_WEIGHTS)


def _pixel_aligned_crop(shape: tuple[int, ...], matrix: np.ndarray) -> tuple[int, int, int] | None:
    """(left, top, side) when ``matrix`` is a pure scale of a whole-pixel square inside the
    image (then cropping and resizing is the same mapping as warping), else None."""
    s = matrix[0, 0]
    if s <= 0 or matrix[0, 1] != 0 or matrix[1, 0] != 0 or abs(matrix[1, 1] - s) > 1e-9:
        return None
    left = (-0.5 - matrix[0, 2]) / s + 0.5
    top = (-0.5 - matrix[1, 2]) / s + 0.5
    side = CANONICAL_SIZE / s
    vals = np.array([left, top, side])
    if np.abs(vals - np.round(vals)).max() > 1e-6:
        return None
    x0, y0, n = (int(round(v)) for v in vals)
    if x0 < 0 or y0 < 0 or x0 + n > shape[1] or y0 + n > shape[0]:
        return None
    return x0, y0, n


#: Blur (Gaussian sigma, output pixels) of the repeated edge pixels that fill the frame
#: outside the photo, and the width over which the fill fades in from the photo's edge.
FILL_BLUR = 8.0
FILL_FADE = 3.0


def outside_fraction(shape: tuple[int, ...], matrix: np.ndarray) -> float:
    """Fraction of the 256x256 frame that lies outside the photo under ``matrix``."""
    h, w = shape[:2]
    photo = apply_affine(
        matrix, np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    )
    e = CANONICAL_SIZE - 0.5
    frame = np.array([[-0.5, -0.5], [e, -0.5], [e, e], [-0.5, e]], np.float32)
    if np.linalg.det(matrix[:, :2]) < 0:
        photo = photo[::-1]
    area, _ = cv2.intersectConvexConvex(photo.astype(np.float32), frame)
    return float(np.clip(1.0 - area / CANONICAL_SIZE**2, 0.0, 1.0))


def warp_to_canonical(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Resample ``rgb`` into the 256x256 frame through ``matrix`` without aliasing.

    When the transform shrinks the photo, it is first area-averaged to about the output
    scale, so the final warp only interpolates. Where the frame reaches past the photo, its
    edge pixels are repeated and blurred (``FILL_BLUR``), fading in from the edge; the
    photo's own pixels are never altered (reflection would mirror whole faces in).
    """
    crop = _pixel_aligned_crop(rgb.shape, matrix)
    size = (CANONICAL_SIZE, CANONICAL_SIZE)
    if crop is not None:  # e.g. CelebA's fixed crop: a plain resize, ~40x faster
        x0, y0, side = crop
        interp = cv2.INTER_AREA if side > CANONICAL_SIZE else cv2.INTER_CUBIC
        return cv2.resize(rgb[y0 : y0 + side, x0 : x0 + side], size, interpolation=interp)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    image, m = rgb, matrix
    if scale < 0.8:
        h, w = rgb.shape[:2]
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        image = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        rx, ry = nw / w, nh / h
        pre = np.array([[rx, 0.0, 0.5 * rx - 0.5], [0.0, ry, 0.5 * ry - 0.5]])
        m = matrix @ np.vstack([invert_affine(pre), [0.0, 0.0, 1.0]])
    out = cv2.warpAffine(image, m, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    if outside_fraction(image.shape, m) == 0.0:
        return out
    inside = cv2.warpAffine(
        np.ones(image.shape[:2], np.float32),
        m,
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )
    near = cv2.GaussianBlur(inside, (0, 0), FILL_FADE)
    keep = np.maximum(inside, np.clip(2.0 * near, 0.0, 1.0))[..., None]
    blurred = cv2.GaussianBlur(out, (0, 0), FILL_BLUR).astype(np.float32)
    mixed = out.astype(np.float32) * keep + blurred * (1.0 - keep)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- loading


def _source_path(src: FaceSource) -> Path:
    if src.path is None:
        raise Reject("no file for this source")
    return src.path


def annotated_points(src: FaceSource, provider: str) -> SourcePoints | None:
    """The CelebA annotation of ``src`` when ``provider`` uses it: annotations beat the
    landmark cache and detection whenever they exist (``auto``) or are asked for (``celeba``).
    """
    if provider not in ("celeba", "auto") or src.annotation is None:
        return None
    return SourcePoints(
        provider="celeba",
        points={
            n: (float(x), float(y)) for n, (x, y) in zip(FIVE_POINTS, src.annotation, strict=True)
        },
    )


def locate(
    src: FaceSource,
    rgb: np.ndarray,
    provider: str = "auto",
    detector: Detector | None = None,
    cache: LandmarkCache | None = None,
) -> SourcePoints:
    """The source-pixel points of ``src`` from its annotation, the cache, or detection."""
    check_provider(provider)
    annotated = annotated_points(src, provider)
    if annotated is not None:
        return annotated
    if provider == "celeba":
        raise Reject("no CelebA annotation for this image")
    path = _source_path(src)
    name = detector.name if detector is not None else FaceMeshDetector.name
    if cache is not None:
        hit = cache.get(path, name)
        if hit is not None:
            return _with_face(hit)
    detector = detector or get_detector()
    h, w = rgb.shape[:2]
    if is_celeba_layout(src, w, h):
        # CelebA faces are small: detect on the upscaled crop, then map back
        matrix = celeba_matrix(w, h)
        found = detect_points(warp_to_canonical(rgb, matrix), detector)
        if found is not None:
            found = _mapped(found, invert_affine(matrix))
        else:  # borderline faces: the whole photo sometimes works where the crop did not
            found = detect_points(rgb, detector)
    else:
        found = detect_points(rgb, detector)
    found = NO_FACE if found is None else normalise(found)
    if cache is not None:
        cache.put(path, detector.name, found)  # "no face" is remembered too
    return _with_face(found)


def _with_face(found: SourcePoints) -> SourcePoints:
    if not found.has_face:
        raise Reject("no face found")
    return found


def _mapped(found: SourcePoints, matrix: np.ndarray) -> SourcePoints:
    names = list(found.points)
    pts = apply_affine(matrix, np.array([found.points[n] for n in names]))
    dense = None if found.dense is None else apply_affine(matrix, found.dense).astype(np.float32)
    return SourcePoints(
        provider=found.provider,
        points={n: (float(x), float(y)) for n, (x, y) in zip(names, pts, strict=True)},
        dense=dense,
    )


#: Default ``max_outside`` of builds and previews (``--max-outside``).
DEFAULT_MAX_OUTSIDE = 0.5


def load_aligned(
    src: FaceSource,
    provider: str = "auto",
    detector: Detector | None = None,
    cache: LandmarkCache | None = None,
    points: SourcePoints | None = None,
    max_outside: float | None = None,
) -> AlignedFace:
    """Read, validate and align one face; raises ``Reject`` when it cannot be used.

    ``points`` (e.g. from a ``LandmarkCache`` read in a parent process) skips landmark
    lookup entirely; otherwise ``locate`` finds them (``cache`` is consulted and updated).
    ``max_outside`` rejects a face when more than that fraction of its frame lies beyond the
    photo (tight crops, whose outside is filled from the photo's edge).
    """
    rgb, quality = read_rgb(_source_path(src), allow_grey=src.kind == "demo")
    h, w = rgb.shape[:2]
    if points is not None:
        found = _with_face(points)
    else:
        found = locate(src, rgb, provider, detector, cache)
    five = found.five()
    if is_celeba_layout(src, w, h):
        matrix = celeba_matrix(w, h)
    else:
        eyes = float(np.linalg.norm(five[1] - five[0]))
        if eyes < MIN_INTER_OCULAR:
            raise Reject(f"face too small (eyes {eyes:.0f} px apart)")
        try:
            matrix = alignment_matrix(five)
        except ValueError:
            raise Reject("degenerate landmarks") from None
    outside = outside_fraction(rgb.shape, matrix)
    if max_outside is not None and outside > max_outside:
        raise Reject(
            f"face cropped too tightly: {outside:.0%} of the 256x256 frame lies outside "
            f"the photo (limit --max-outside {max_outside:g})"
        )
    return AlignedFace(
        image=warp_to_canonical(rgb, matrix),
        landmarks=to_canonical(found, matrix),
        source=src,
        matrix=matrix,
        jpeg_quality=quality,
        found=found,
        outside=outside,
    )
