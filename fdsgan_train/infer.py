"""``fdsgan-infer``: de-occlude a user's own photo of any size with a trained checkpoint.

Pipeline for one photo and its mask (a PNG the size of the upright photo; any non-zero pixel
is occluded):

1. find the face with the builder's landmark code (MediaPipe Face Mesh, five points; in
   square windows of a wide or tall photo when the whole photo yields none) and compute
   the similarity transform to ``canonical.CANONICAL_POINTS``
   (``occlusion_synth.faces.alignment_matrix``), exactly as the dataset builder aligns faces;
2. warp the photo (``faces.warp_to_canonical``) and the mask (resampled the same way, any
   coverage counts as occluded) into the 256x256 frame;
3. run G1 then G2 (``Deoccluder``) and composite: Stage II inside the mask, input outside;
4. warp the result back with the inverse transform (bicubic) and paste it into the photo
   only where the original-resolution mask is non-zero. Masked pixels that fall outside the
   aligned 256x256 crop cannot be predicted and keep the photo's value (reported).

Output = photo where mask == 0, warped-back prediction where mask > 0.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from occlusion_synth.canonical import CANONICAL_SIZE
from occlusion_synth.errors import UserError
from occlusion_synth.imageio import IMAGE_SUFFIXES, MAX_PIXELS, Reject, read_rgb

from .baselines import StagePredictions, binary_mask, composite

#: ``NAME.mask.png`` is the mask of the photo ``NAME.*`` (here and in ``fdsgan-eval --real``).
MASK_SUFFIX = ".mask.png"


# --------------------------------------------------------------------------- the model


class Deoccluder:
    """G1 + G2 in eval mode: uint8 RGB inputs and masks in, ``StagePredictions`` out.

    Tensor convention (``fdsgan_train.data``): RGB scaled to [-1, 1], mask in {0, 1}; the
    forward pass is the trainer's ``train.predict`` (G1 on cat(input, mask), G2 on that
    concatenated with G1's output).
    """

    def __init__(self, g1, g2, device: str = "cpu", config: dict | None = None) -> None:
        self.g1 = g1.eval().to(device)
        self.g2 = g2.eval().to(device)
        self.device = device
        self.config = config or {}

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> Deoccluder:
        """Load the generators of a ``fdsgan-train`` checkpoint (UserError when unreadable or
        not finite: ``checkpoint.load_generators``)."""
        from .checkpoint import load_generators

        path = Path(path)
        if not path.is_file():
            raise UserError(f"checkpoint {path} does not exist")
        from .train import resolve_device

        try:
            device = str(resolve_device(device))
        except RuntimeError as exc:  # torch.device("gpu") and the like
            raise UserError(f"--device {device}: {exc}") from None
        try:
            g1, g2, config = load_generators(path, device)
        except UserError as exc:  # keep it to one line (torch's messages run to several)
            raise UserError(_checkpoint_line(path, exc.message)) from None
        except Exception as exc:  # noqa: BLE001 - any loading failure is the user's file
            raise UserError(_checkpoint_line(path, str(exc) or type(exc).__name__)) from None
        return cls(g1, g2, device, config)

    def predict(self, inputs: list[np.ndarray], masks: list[np.ndarray]) -> list[StagePredictions]:
        """Raw Stage I and Stage II outputs for a batch of 256x256 uint8 inputs and masks."""
        import torch

        from .train import predict

        x = torch.from_numpy(np.stack(inputs)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        m = torch.from_numpy(np.stack([binary_mask(k) for k in masks]) > 0).float()[:, None]
        with torch.inference_mode():
            out1, out2 = predict(self.g1, self.g2, x.to(self.device), m.to(self.device))
        if not (out1.isfinite().all() and out2.isfinite().all()):
            raise UserError("the model's output holds NaN or infinite values (damaged weights?)")
        return [
            StagePredictions(stage1=_to_uint8(a), stage2=_to_uint8(b))
            for a, b in zip(out1.float().cpu(), out2.float().cpu(), strict=True)
        ]


def _checkpoint_line(path: Path, message: str) -> str:
    """One line about an unreadable checkpoint; never torch's advice to load it unsafely."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()] or ["unknown error"]
    line = " ".join(lines[:2]) if lines[0].endswith(":") else lines[0]  # "Error(s) in ...:"
    if "weights_only" in line:
        return f"cannot read checkpoint {path}: not an fdsgan-train checkpoint (refused)"
    line = line if len(line) <= 300 else line[:297] + "..."
    return line if str(path) in line else f"cannot read checkpoint {path}: {line}"


def _to_uint8(t) -> np.ndarray:
    arr = ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    return np.ascontiguousarray(arr)


# --------------------------------------------------------------------------- files


def read_photo(path: Path) -> np.ndarray:
    """An (H, W, 3) uint8 RGB photo, EXIF orientation applied; UserError when unusable.

    The builder's reader (``imageio.read_rgb``): the header is checked before any pixel is
    decoded (at most ``imageio.MAX_PIXELS``), and the same photos are refused.
    """
    try:
        return read_rgb(path)[0]
    except Reject as exc:
        raise UserError(exc.reason) from None


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A (H, W) uint8 mask, 255 where occluded: any non-zero pixel (alpha if it has one).

    Its size is read from the header and must be the photo's before anything is decoded.
    """
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():  # a FIFO would block the open
        raise UserError(f"mask {path.name} is not a regular file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            w, h = im.size
            if (h, w) != tuple(shape):
                raise UserError(
                    f"mask {path.name} is {w}x{h} but the photo is {shape[1]}x{shape[0]} "
                    "(the mask must be the size of the photo)"
                )
            if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
                arr = np.asarray(im.convert("RGBA"))[..., 3]
            else:
                arr = np.asarray(im.convert("L"))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(f"mask {path.name} is too large (over {MAX_PIXELS:,} pixels)") from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise UserError(f"cannot read mask {path.name}: {exc}") from None
    return binary_mask(arr)


def list_photos(folder: Path) -> list[Path]:
    """The photos of a folder (regular files with an image suffix, not ``NAME.mask.png``)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.endswith(MASK_SUFFIX) and p.is_file()
    )


def mask_of(photo: Path, masks: Path) -> Path | None:
    """The mask of ``photo`` in the folder ``masks``, or None.

    ``NAME.mask.png`` always; in a folder of masks only (not the photo's own folder), also
    ``NAME.png`` or ``NAME.<any image suffix>``.
    """
    named = masks / (photo.stem + MASK_SUFFIX)
    if named.is_file():
        return named
    if masks.resolve() == photo.parent.resolve():
        return None  # a photo is never its own mask
    plain = [masks / (photo.stem + ext) for ext in sorted(IMAGE_SUFFIXES)]
    return next((p for p in plain if p.is_file()), None)


def pair_inputs(
    image: Path, mask: Path, out: Path
) -> tuple[list[tuple[Path, Path, Path]], list[str]]:
    """(photo, mask, output) triples, and one note per photo left out.

    One file each, or folders paired by name (``mask_of``): a folder of photos with a folder
    of masks, or one folder holding ``NAME.jpg`` and ``NAME.mask.png``.
    """
    if image.is_file():
        if not mask.is_file():
            raise UserError(f"--mask must be a file when --image is a file: {mask}")
        target = out / f"{image.stem}.png" if out.is_dir() or not out.suffix else out
        return [(image, mask, target)], []
    if not image.is_dir():
        raise UserError(f"--image: no such file or folder: {image}")
    if not mask.is_dir():
        raise UserError(f"--mask must be a folder when --image is a folder: {mask}")
    photos = list_photos(image)
    if not photos:
        raise UserError(f"--image: no photos in {image}")
    pairs: list[tuple[Path, Path, Path]] = []
    notes: list[str] = []
    taken: dict[str, Path] = {}
    for p in photos:
        m = mask_of(p, mask)
        if m is None:
            notes.append(f"skipped {p.name}: no mask ({p.stem}{MASK_SUFFIX}) in {mask}")
        elif p.stem in taken:
            notes.append(f"skipped {p.name}: its output {p.stem}.png is {taken[p.stem].name}'s")
        else:
            taken[p.stem] = p
            pairs.append((p, m, out / f"{p.stem}.png"))
    if not pairs:
        raise UserError(f"no photo in {image} has a mask of the same name in {mask}")
    return pairs, notes


# --------------------------------------------------------------------------- geometry


@dataclass
class AlignedPhoto:
    """A photo's face in the model's frame: 256x256 ``image`` and ``mask``, 2x3 ``matrix``."""

    image: np.ndarray
    mask: np.ndarray
    matrix: np.ndarray


def align_photo(photo: np.ndarray, mask: np.ndarray) -> AlignedPhoto:
    """Find the face (:func:`find_five`), then warp photo and mask into the 256x256 frame."""
    from occlusion_synth.faces import MIN_INTER_OCULAR, alignment_matrix, warp_to_canonical

    five = find_five(photo)
    if _eye_gap(five) < MIN_INTER_OCULAR:
        raise UserError(f"the face is too small (eyes under {MIN_INTER_OCULAR:g} px apart)")
    matrix = alignment_matrix(five)
    return AlignedPhoto(
        image=warp_to_canonical(photo, matrix), mask=warp_mask(mask, matrix), matrix=matrix
    )


#: Face Mesh's detector sees a photo squeezed into a square (128 px): in a wide scene a face
#: may come out too small for it. When the whole photo yields no face, it is searched again in
#: square windows of the photo's shorter side, overlapping by half along its longer side.
WINDOW_OVERLAP = 0.5


def find_five(photo: np.ndarray) -> np.ndarray:
    """The face's five points (eyes, nose, mouth corners, image-left first) in photo pixels.

    Face Mesh as the builder runs it on the whole photo, then on the square windows of
    :func:`square_windows` (the face with the widest-set eyes wins). No face: a ``UserError``.
    """
    from occlusion_synth.landmarks import detect_points, get_detector

    found = detect_points(photo, get_detector())
    if found is not None:
        return found.five()
    best: np.ndarray | None = None
    for x, y, side in square_windows(*photo.shape[:2]):
        window = np.ascontiguousarray(photo[y : y + side, x : x + side])
        found = detect_points(window, get_detector())
        if found is not None:
            five = found.five() + (x, y)
            if best is None or _eye_gap(five) > _eye_gap(best):
                best = five
    if best is None:
        raise UserError("no face found in the photo")
    return best


def square_windows(height: int, width: int) -> list[tuple[int, int, int]]:
    """``(x, y, side)`` of the square windows of a photo's shorter side that cover its longer
    side, overlapping by :data:`WINDOW_OVERLAP` (none for a square photo)."""
    side, long = min(height, width), max(height, width)
    if long == side:
        return []
    count = int(np.ceil((long - side) / (side * (1 - WINDOW_OVERLAP)))) + 1
    starts = np.linspace(0, long - side, count).round().astype(int)
    if width > height:
        return [(int(s), 0, side) for s in starts]
    return [(0, int(s), side) for s in starts]


def _eye_gap(five: np.ndarray) -> float:
    return float(np.linalg.norm(five[1] - five[0]))


def warp_mask(mask: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``mask`` (H, W) in the 256x256 frame: 255 wherever any occluded pixel lands.

    Resampled exactly as the photo is (``faces.warp_to_canonical``, given three equal channels:
    it takes RGB), so beyond the photo's edge the mask continues as the image's fill does.
    """
    from occlusion_synth.faces import warp_to_canonical

    rgb = np.repeat(np.where(mask > 0, 255, 0).astype(np.uint8)[..., None], 3, axis=2)
    return np.where(warp_to_canonical(rgb, matrix)[..., 0] > 0, 255, 0).astype(np.uint8)


def paste_back(
    photo: np.ndarray, mask: np.ndarray, result: np.ndarray, matrix: np.ndarray
) -> tuple[np.ndarray, int]:
    """Warp ``result`` (256x256) back into ``photo`` where ``mask`` > 0.

    Returns the new photo and the number of masked pixels outside the aligned crop (kept).
    """
    from occlusion_synth.landmarks import invert_affine

    h, w = photo.shape[:2]
    inv = invert_affine(matrix)
    back = cv2.warpAffine(
        result, inv, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    ones = np.ones((CANONICAL_SIZE, CANONICAL_SIZE), np.float32)
    inside = (
        cv2.warpAffine(
            ones, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
        > 0.999
    )
    masked = mask > 0
    use = masked & inside
    out = photo.copy()
    out[use] = back[use]
    return out, int((masked & ~inside).sum())


def deocclude_photo(
    model: Deoccluder, photo: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, int]:
    """De-occlude one photo; returns the result (photo size) and masked pixels left as is."""
    aligned = align_photo(photo, mask)
    pred = model.predict([aligned.image], [aligned.mask])[0]
    result = composite(pred.stage2, aligned.image, aligned.mask)
    return paste_back(photo, mask, result, aligned.matrix)


def photo_outputs(image: Path, out: Path) -> list[tuple[Path, None, Path]]:
    """(photo, None, output) for a photo or a folder of photos (masks to be predicted)."""
    if image.is_file():
        return [(image, None, out / f"{image.stem}.png" if out.is_dir() or not out.suffix else out)]
    if not image.is_dir():
        raise UserError(f"--image: no such file or folder: {image}")
    photos = list_photos(image)
    if not photos:
        raise UserError(f"--image: no photos in {image}")
    return [(p, None, out / f"{p.stem}.png") for p in photos]


def infer(
    checkpoint: Path,
    image: Path,
    mask: Path | None,
    out: Path,
    device: str = "auto",
    segmenter: Path | None = None,
    mask_dilate: int = 0,
) -> list[Path]:
    """Run ``fdsgan-infer``; returns the files written. Single photos raise on failure;
    in folders a photo that fails is reported and skipped.

    Without ``mask``, ``segmenter`` (a segmenter checkpoint) predicts each photo's mask
    (grown by ``mask_dilate`` photo pixels), written beside the output as NAME.mask.png.
    """
    from PIL import Image
    from tqdm import tqdm

    if mask is None and segmenter is None:
        raise UserError("give --mask, or --segmenter S.pt to predict the mask")
    if mask is not None:
        pairs, notes = pair_inputs(image, mask, out)
    else:
        pairs, notes = photo_outputs(image, out), []
    for note in notes:
        tqdm.write(note, file=sys.stderr)
    model = Deoccluder.from_checkpoint(checkpoint, device)
    seg = None
    if mask is None:
        from .segmenter import Segmenter

        try:
            seg = Segmenter.from_checkpoint(segmenter, device)
        except UserError as exc:
            raise UserError(f"--segmenter: {_checkpoint_line(segmenter, exc.message)}") from None
    single = image.is_file()
    written: list[Path] = []
    for photo_path, mask_path, target in tqdm(
        pairs, desc="de-occluding", unit="photo", disable=single
    ):
        try:
            photo = read_photo(photo_path)
            if seg is not None:
                from .segmenter import photo_mask

                m = photo_mask(seg, photo, mask_dilate)
                written_mask = target.with_name(target.stem + MASK_SUFFIX)
                target.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(m).save(written_mask)
                written.append(written_mask)
            else:
                m = read_mask(mask_path, photo.shape[:2])
            result, outside = deocclude_photo(model, photo, m)
        except UserError as exc:
            if single:
                raise UserError(f"{photo_path.name}: {exc.message}") from None
            tqdm.write(f"skipped {photo_path.name}: {exc.message}", file=sys.stderr)
            continue
        if outside:
            tqdm.write(
                f"{photo_path.name}: {outside} masked pixels lie outside the face "
                "crop and were left unchanged",
                file=sys.stderr,
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(result).save(target)
        written.append(target)
    return written
