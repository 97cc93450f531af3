"""``fdsgan-infer``: de-occlude a user's own photo of any size with a trained checkpoint.

Pipeline for one photo and its mask (a PNG the size of the upright photo; any non-zero pixel
is occluded):

1. find the face with the builder's landmark code (MediaPipe Face Mesh, five points) and
   compute the similarity transform to ``canonical.CANONICAL_POINTS``
   (``occlusion_synth.faces.alignment_matrix``), exactly as the dataset builder aligns faces;
2. warp the photo (``faces.warp_to_canonical``) and the mask (same transform, bilinear, any
   coverage counts as occluded) into the 256x256 frame;
3. run G1 then G2 (``Deoccluder``) and composite: Stage II inside the mask, input outside;
4. warp the result back with the inverse transform (bicubic) and paste it into the photo
   only where the original-resolution mask is non-zero. Masked pixels that fall outside the
   aligned 256x256 crop cannot be predicted and keep the photo's value (reported).

Output = photo where mask == 0, warped-back prediction where mask > 0.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from occlusion_synth.canonical import CANONICAL_SIZE
from occlusion_synth.errors import UserError
from occlusion_synth.imageio import IMAGE_SUFFIXES

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
        """Load the generators of a ``fdsgan-train`` checkpoint (UserError when unreadable)."""
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
            raise UserError(exc.format_message().strip().splitlines()[0]) from None
        except Exception as exc:  # noqa: BLE001 - any loading failure is the user's file
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UserError(f"cannot read checkpoint {path}: {first}") from None
        return cls(g1, g2, device, config)

    def predict(self, inputs: list[np.ndarray], masks: list[np.ndarray]) -> list[StagePredictions]:
        """Raw Stage I and Stage II outputs for a batch of 256x256 uint8 inputs and masks."""
        import torch

        from .train import predict

        x = torch.from_numpy(np.stack(inputs)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        m = torch.from_numpy(np.stack([binary_mask(k) for k in masks]) > 0).float()[:, None]
        with torch.inference_mode():
            out1, out2 = predict(self.g1, self.g2, x.to(self.device), m.to(self.device))
        return [
            StagePredictions(stage1=_to_uint8(a), stage2=_to_uint8(b))
            for a, b in zip(out1.float().cpu(), out2.float().cpu(), strict=True)
        ]


def _to_uint8(t) -> np.ndarray:
    arr = ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    return np.ascontiguousarray(arr)


# --------------------------------------------------------------------------- files


def read_photo(path: Path) -> np.ndarray:
    """An (H, W, 3) uint8 RGB photo, EXIF orientation applied; UserError when unreadable."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return np.ascontiguousarray(np.asarray(im.convert("RGB")))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise UserError(f"cannot read image {path}: {exc}") from None


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A (H, W) uint8 mask, 255 where occluded: any non-zero pixel (alpha if it has one)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
                arr = np.asarray(im.convert("RGBA"))[..., 3]
            else:
                arr = np.asarray(im.convert("L"))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise UserError(f"cannot read mask {path}: {exc}") from None
    if arr.shape != tuple(shape):
        raise UserError(
            f"mask {path.name} is {arr.shape[1]}x{arr.shape[0]} but the photo is "
            f"{shape[1]}x{shape[0]} (the mask must be the size of the photo)"
        )
    return binary_mask(arr)


# --------------------------------------------------------------------------- geometry


@dataclass
class AlignedPhoto:
    """A photo's face in the model's frame: 256x256 ``image`` and ``mask``, 2x3 ``matrix``."""

    image: np.ndarray
    mask: np.ndarray
    matrix: np.ndarray


def align_photo(photo: np.ndarray, mask: np.ndarray) -> AlignedPhoto:
    """Find the face, then warp photo and mask into the canonical 256x256 frame."""
    from occlusion_synth.faces import MIN_INTER_OCULAR, alignment_matrix, warp_to_canonical
    from occlusion_synth.landmarks import detect_points, get_detector

    found = detect_points(photo, get_detector())
    if found is None:
        raise UserError("no face found in the photo")
    five = found.five()
    if float(np.linalg.norm(five[1] - five[0])) < MIN_INTER_OCULAR:
        raise UserError(f"the face is too small (eyes under {MIN_INTER_OCULAR:g} px apart)")
    matrix = alignment_matrix(five)
    image = warp_to_canonical(photo, matrix)
    soft = warp_to_canonical((mask > 0).astype(np.float32), matrix)
    return AlignedPhoto(
        image=image, mask=np.where(soft > 1e-3, 255, 0).astype(np.uint8), matrix=matrix
    )


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


def pair_inputs(image: Path, mask: Path, out: Path) -> list[tuple[Path, Path, Path]]:
    """(photo, mask, output) triples: one file each, or folders paired by file stem.

    In a mask folder, ``NAME.png`` or ``NAME.mask.png`` masks the photo ``NAME.*``.
    """
    if image.is_file():
        if not mask.is_file():
            raise UserError(f"--mask must be a file when --image is a file: {mask}")
        target = out / f"{image.stem}.png" if out.is_dir() or not out.suffix else out
        return [(image, mask, target)]
    if not image.is_dir():
        raise UserError(f"--image: no such file or folder: {image}")
    if not mask.is_dir():
        raise UserError(f"--mask must be a folder when --image is a folder: {mask}")
    masks: dict[str, Path] = {}
    for p in sorted(mask.iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            stem = p.name[: -len(MASK_SUFFIX)] if p.name.endswith(MASK_SUFFIX) else p.stem
            masks.setdefault(stem, p)
    photos = sorted(
        p
        for p in image.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.endswith(MASK_SUFFIX)
    )
    if not photos:
        raise UserError(f"--image: no photos in {image}")
    pairs = [(p, masks[p.stem], out / f"{p.stem}.png") for p in photos if p.stem in masks]
    if not pairs:
        raise UserError(f"no photo in {image} has a mask of the same name in {mask}")
    return pairs


def infer(checkpoint: Path, image: Path, mask: Path, out: Path, device: str = "auto") -> list[Path]:
    """Run ``fdsgan-infer``; returns the files written. Single photos raise on failure;
    in folders a photo that fails is reported and skipped."""
    from PIL import Image
    from tqdm import tqdm

    pairs = pair_inputs(image, mask, out)
    model = Deoccluder.from_checkpoint(checkpoint, device)
    single = image.is_file()
    written: list[Path] = []
    for photo_path, mask_path, target in tqdm(
        pairs, desc="de-occluding", unit="photo", disable=single
    ):
        try:
            photo = read_photo(photo_path)
            m = read_mask(mask_path, photo.shape[:2])
            result, outside = deocclude_photo(model, photo, m)
        except UserError as exc:
            if single:
                raise UserError(f"{photo_path.name}: {exc.format_message()}") from None
            tqdm.write(f"skipped {photo_path.name}: {exc.format_message()}")
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
