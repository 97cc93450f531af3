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

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

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
    annotation_problem,
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
    "Discovery",
    "FaceSource",
    "FacesError",
    "Reject",
    "check_face",
    "demo_faces",
    "discover",
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
    #: Why this image's CelebA landmark row is unusable (malformed), or None.
    annotation_problem: str | None = field(default=None, compare=False)
    #: Why this image's CelebA partition row is unusable (a value not 0/1/2), or None.
    partition_problem: str | None = field(default=None, compare=False)


@dataclass
class Discovery:
    """What ``--faces`` names: the usable-looking ``sources``, the ``skipped`` entries that are
    not readable image files (``(id, reason)``, for rejects.csv), and the ``listings``
    (annotation and partition files) the sources depend on."""

    sources: list[FaceSource]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    listings: list[Path] = field(default_factory=list)


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
    photo_size: tuple[int, int] | None = None  # (width, height) of the upright source photo


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


#: Image formats that are recognised but not read; such files get a rejects.csv row.
UNSUPPORTED_IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".gif", ".heic", ".heif", ".avif", ".jxl", ".jp2", ".j2k", ".ico", ".svg", ".psd"}
    | {".dng", ".cr2", ".nef", ".arw", ".raw"}
)


def display_id(text: str) -> str:
    """``text`` (a path, maybe holding undecodable bytes as ``surrogateescape`` surrogates)
    as a printable string: such bytes are written ``\\xff``. Valid names are unchanged."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _list_rows(path: Path) -> list[list[str]]:
    """The data rows of a CelebA list file (official whitespace format or the Kaggle CSV):
    rows whose first field names an image file; count and header lines are skipped."""
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError as exc:
        raise FacesError(f"cannot read {path} ({exc.strerror or exc})") from None
    csv = path.suffix.lower() == ".csv"
    rows = []
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")] if csv else line.split()
        if fields and Path(fields[0]).suffix.lower() in IMAGE_SUFFIXES:
            rows.append(fields)
    return rows


def _annotation_row(values: list[str]) -> tuple[np.ndarray | None, str | None]:
    """Five (x, y) points from a landmark row's ten numbers, or why the row is malformed."""
    if len(values) != 10:
        return None, f"malformed CelebA landmark row ({len(values)} numbers, expected 10)"
    try:
        five = np.array([float(v) for v in values], dtype=np.float64).reshape(5, 2)
    except ValueError:
        return None, "malformed CelebA landmark row (not a number)"
    if not np.isfinite(five).all():
        return None, "malformed CelebA landmark row (NaN or infinite value)"
    return five, None


def _annotations(root: Path) -> tuple[dict[str, np.ndarray], dict[str, str], Path | None]:
    """CelebA's landmark rows by file name, the malformed rows' reasons, and the file."""
    for name in ("list_landmarks_align_celeba.txt", "list_landmarks_align_celeba.csv"):
        path = root / name
        if path.is_file():
            points, problems = {}, {}
            for fields in _list_rows(path):
                five, problem = _annotation_row(fields[1:])
                if problem is None:
                    points[fields[0]] = five
                    problems.pop(fields[0], None)
                else:
                    problems[fields[0]] = problem
                    points.pop(fields[0], None)
            return points, problems, path
    return {}, {}, None


def _partitions(root: Path) -> tuple[dict[str, str], dict[str, str], Path | None]:
    """CelebA's partition (file name -> split), the unusable rows' reasons, and the file."""
    for name in ("list_eval_partition.txt", "list_eval_partition.csv"):
        path = root / name
        if path.is_file():
            splits, problems = {}, {}
            for fields in _list_rows(path):
                value = fields[1] if len(fields) == 2 else None
                if value is not None and value.isdigit() and int(value) in CELEBA_SPLITS:
                    splits[fields[0]] = CELEBA_SPLITS[int(value)]
                    problems.pop(fields[0], None)
                else:
                    shown = " ".join(fields[1:])[:20]
                    problems[fields[0]] = f"CelebA partition value {shown!r} is not 0, 1 or 2"
                    splits.pop(fields[0], None)
            return splits, problems, path
    return {}, {}, None


def _images_under(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Image files under ``folder`` (recursively, hidden entries left out, sorted by relative
    path), and the entries that look like images but cannot be read, with the reason."""
    found, skipped = [], []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            if path.is_file():
                found.append(path)
            elif path.is_symlink() and not path.exists():
                skipped.append((path, "broken link (it points to a missing file)"))
            elif not path.is_dir():
                skipped.append((path, "not a regular file (a FIFO, socket or device)"))
        elif suffix in UNSUPPORTED_IMAGE_SUFFIXES and not path.is_dir():
            formats = ", ".join(sorted(s[1:] for s in IMAGE_SUFFIXES))
            skipped.append((path, f"unsupported image format {suffix} (readable: {formats})"))

    def rel_key(p: Path) -> str:
        return p.relative_to(folder).as_posix()

    return sorted(found, key=rel_key), sorted(
        ((p, r) for p, r in skipped), key=lambda pr: rel_key(pr[0])
    )


def _celeba_discovery(root: Path) -> Discovery:
    annotations, bad_rows, landmark_file = _annotations(root)
    partitions, bad_partitions, partition_file = _partitions(root)
    images, skipped = _images_under(root / CELEBA_IMAGES)
    sources = [
        FaceSource(
            id=display_id(p.relative_to(root).as_posix()),
            path=p,
            kind="celeba",
            split=partitions.get(p.name),
            annotation=annotations.get(p.name),
            annotation_problem=bad_rows.get(p.name),
            partition_problem=bad_partitions.get(p.name),
        )
        for p in images
    ]
    return Discovery(
        sources=sources,
        skipped=[(display_id(p.relative_to(root).as_posix()), r) for p, r in skipped],
        listings=[f for f in (landmark_file, partition_file) if f is not None],
    )


def source_problem(src: FaceSource, provider: str, split_given: bool) -> str | None:
    """Why ``src`` is refused before it is read: a malformed CelebA landmark row (when the
    provider uses annotations) or an unusable partition value (when no ``--split`` overrides
    the partition). None when neither applies."""
    if src.annotation_problem is not None and provider in ("celeba", "auto"):
        return src.annotation_problem
    if src.partition_problem is not None and not split_given:
        return src.partition_problem
    return None


def discover(spec: str | Path) -> Discovery:
    """Every face source named by ``spec`` (see the module docstring), in a stable order,
    with the entries skipped and the list files used."""
    if str(spec) == "demo":
        return Discovery(demo_faces())
    root = Path(spec).expanduser()
    if root.is_file():
        if root.suffix.lower() not in IMAGE_SUFFIXES:
            raise FacesError(f"--faces {spec}: not an image file or folder")
        return Discovery([FaceSource(id=display_id(root.name), path=root, kind="folder")])
    if not root.is_dir():
        raise FacesError(f"--faces folder not found: {spec}")
    if root.name == CELEBA_IMAGES and not (root / CELEBA_IMAGES).is_dir():
        if any(
            (root.parent / f"list_landmarks_align_celeba{s}").is_file() for s in (".txt", ".csv")
        ):
            root = root.parent
    if (root / CELEBA_IMAGES).is_dir():
        found = _celeba_discovery(root)
    else:
        images, skipped = _images_under(root)
        found = Discovery(
            sources=[
                FaceSource(id=display_id(p.relative_to(root).as_posix()), path=p, kind="folder")
                for p in images
            ],
            skipped=[(display_id(p.relative_to(root).as_posix()), r) for p, r in skipped],
        )
    if not found.sources:
        exts = ", ".join(sorted(IMAGE_SUFFIXES))
        more = f"; {len(found.skipped)} unreadable entries" if found.skipped else ""
        raise FacesError(f"--faces {spec}: no images found (looked for {exts}{more})")
    return found


def discover_faces(spec: str | Path) -> list[FaceSource]:
    """Every face source named by ``spec`` (see the module docstring), in a stable order."""
    return discover(spec).sources


def fingerprint(found: Discovery) -> tuple[dict[str, object], list[list[object]]]:
    """A cheap fingerprint of the sources: ``{"sha256", "count"}`` over every source's id,
    size and mtime (and the CelebA list files'), plus the entries it was made from (so that a
    difference can be described). Nothing is read but the files' metadata."""
    entries: list[list[object]] = []
    for src in found.sources:
        entries.append([src.id, *_size_mtime(src.path)])
    for path in found.listings:
        entries.append([f"<list> {path.name}", *_size_mtime(path)])
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(json.dumps(entry, ensure_ascii=True).encode("ascii") + b"\n")
    return {"sha256": digest.hexdigest(), "count": len(found.sources)}, entries


def _size_mtime(path: Path | None) -> tuple[int, int]:
    if path is None:
        return -1, -1
    try:
        st = path.stat()
    except OSError:
        return -1, -1
    return int(st.st_size), int(st.st_mtime_ns)


def describe_change(before: list[list[object]], after: list[list[object]]) -> str:
    """``8 sources gone, 0 new, 1 changed`` between two ``fingerprint`` entry lists."""
    old = {str(e[0]): tuple(e[1:]) for e in before}
    new = {str(e[0]): tuple(e[1:]) for e in after}
    gone = [k for k in old if k not in new]
    added = [k for k in new if k not in old]
    changed = [k for k in old if k in new and old[k] != new[k]]
    lists = [k[len("<list> ") :] for k in gone + added + changed if k.startswith("<list> ")]
    n_gone, n_added, n_changed = (
        sum(not k.startswith("<list> ") for k in keys) for keys in (gone, added, changed)
    )
    parts = [f"{n_gone} sources gone", f"{n_added} new", f"{n_changed} changed"]
    if lists:
        parts.append(f"{' and '.join(lists)} changed")
    return ", ".join(parts)


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
    if provider not in ("celeba", "auto"):
        return None
    if src.annotation_problem is not None:
        raise Reject(src.annotation_problem)
    if src.annotation is None:
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


def _checked(
    src: FaceSource,
    provider: str,
    detector: Detector | None,
    cache: LandmarkCache | None,
    points: SourcePoints | None,
    max_outside: float | None,
) -> tuple[np.ndarray, int | None, SourcePoints, np.ndarray, float]:
    """``load_aligned`` up to the warp: (rgb, JPEG quality, points, matrix, outside)."""
    rgb, quality = read_rgb(_source_path(src), allow_grey=src.kind == "demo")
    h, w = rgb.shape[:2]
    if points is not None:
        found = _with_face(points)
    else:
        found = locate(src, rgb, provider, detector, cache)
    five = found.five()
    if found.provider == "celeba":
        problem = annotation_problem(five, w, h)
        if problem is not None:
            raise Reject(problem)
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
    return rgb, quality, found, matrix, outside


def check_face(
    src: FaceSource,
    provider: str = "auto",
    detector: Detector | None = None,
    cache: LandmarkCache | None = None,
    points: SourcePoints | None = None,
    max_outside: float | None = None,
) -> SourcePoints:
    """The source-pixel points ``load_aligned`` would use, after every check it makes
    (``Reject`` when unusable), without warping the face into the frame: what a build's
    face pool needs to know."""
    return _checked(src, provider, detector, cache, points, max_outside)[2]


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
    rgb, quality, found, matrix, outside = _checked(
        src, provider, detector, cache, points, max_outside
    )
    h, w = rgb.shape[:2]
    return AlignedFace(
        image=warp_to_canonical(rgb, matrix),
        landmarks=to_canonical(found, matrix),
        source=src,
        matrix=matrix,
        jpeg_quality=quality,
        found=found,
        outside=outside,
        photo_size=(int(w), int(h)),
    )
