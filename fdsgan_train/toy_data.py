"""Small shard sets in the DESIGN.md format, for tests, benchmarks and GPU smoke runs.

Faces are scikit-image's ``astronaut()`` (the demo face), jittered per sample (shift, scale,
flip, colour gain) so that samples differ; the occluder is a random rectangle of a flat noisy
colour. The invariant holds: outside the mask, input equals target bit for bit. This is not
the dataset builder (``occsynth build``), only a stand-in that needs nothing but installed
packages.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 256


def _demo_face() -> np.ndarray:
    from skimage import data

    img = Image.fromarray(data.astronaut())  # 512x512, face in the upper middle
    return np.asarray(img.crop((130, 10, 370, 250)).resize((SIZE, SIZE), Image.BICUBIC))


def make_sample(face: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """One (input, mask, target) triple of uint8 arrays."""
    scale = rng.uniform(1.0, 1.15)
    side = int(SIZE * scale)
    big = np.asarray(Image.fromarray(face).resize((side, side), Image.BILINEAR))
    x0, y0 = (int(rng.integers(0, side - SIZE + 1)) for _ in range(2))
    target = big[y0 : y0 + SIZE, x0 : x0 + SIZE].astype(np.float32)
    if rng.random() < 0.5:
        target = target[:, ::-1]
    target = np.clip(target * rng.uniform(0.85, 1.15, size=3), 0, 255).astype(np.uint8)
    h, w = (int(rng.integers(48, 112)) for _ in range(2))
    top, left = int(rng.integers(40, SIZE - h - 20)), int(rng.integers(20, SIZE - w - 20))
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[top : top + h, left : left + w] = 255
    colour = rng.integers(0, 256, size=3)
    patch = np.clip(colour + rng.normal(0, 12, size=(h, w, 3)), 0, 255).astype(np.uint8)
    inp = target.copy()
    inp[top : top + h, left : left + w] = patch
    return inp, mask, np.ascontiguousarray(target)


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def write_toy_shards(
    out: str | Path, splits: dict[str, int], shard_size: int = 8, seed: int = 0
) -> Path:
    """Write ``out/shards/<split>-NNNNNN.tar`` with ``splits[split]`` samples each."""
    out = Path(out)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    face = _demo_face()
    index = 0
    for split, n in splits.items():
        for shard in range((n + shard_size - 1) // shard_size):
            path = out / "shards" / f"{split}-{shard:06d}.tar"
            with tarfile.open(path, "w") as tar:
                for _ in range(min(shard_size, n - shard * shard_size)):
                    rng = np.random.default_rng([seed, index])
                    inp, mask, target = make_sample(face, rng)
                    key = f"{split}{index:07d}"
                    meta = {
                        "source": "demo:astronaut",
                        "categories": "rectangle",
                        "coverage": float((mask > 0).mean()),
                        "seed": seed,
                    }
                    _add(tar, f"{key}.input.png", _png(inp))
                    _add(tar, f"{key}.mask.png", _png(mask))
                    _add(tar, f"{key}.target.png", _png(target))
                    _add(tar, f"{key}.json", json.dumps(meta).encode())
                    index += 1
    (out / "dataset.json").write_text(
        json.dumps({"generator": "fdsgan_train.toy_data", "counts": splits, "seed": seed})
    )
    return out
