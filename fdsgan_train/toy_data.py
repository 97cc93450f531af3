"""Small shard sets in the occsynth format (``occlusion_synth.shards``), for tests, benchmarks
and GPU smoke runs.

Faces are scikit-image's ``astronaut()`` (the demo face), jittered per sample (shift, scale,
flip, colour gain) so that samples differ; the occluder is a random rectangle of a flat noisy
colour. The invariant holds: outside the mask, input equals target bit for bit. This is not
the dataset builder (``occsynth build``), only a stand-in that needs nothing but installed
packages. It writes through :mod:`occlusion_synth.shards` (the one writer of the format), with
a ``manifest.parquet`` and a ``dataset.json`` carrying the columns and counts that
``occsynth verify`` checks, so a toy set verifies like a built one.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import numpy as np
from PIL import Image

from occlusion_synth import shards

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


def write_toy_shards(
    out: str | Path, splits: dict[str, int], shard_size: int = 8, seed: int = 0
) -> Path:
    """Write ``out/shards/<split>-NNNNNN.tar`` with ``splits[split]`` samples each.

    Also ``out/dataset.json`` and, where pyarrow is installed, ``out/manifest.parquet`` (one row
    per sample; the trainer and ``fdsgan-eval`` do not need it, ``occsynth verify`` reads it).
    """
    out = Path(out)
    (out / shards.SHARDS_DIR).mkdir(parents=True, exist_ok=True)
    face = _demo_face()
    rows: list[dict] = []
    index = 0
    for split, n in splits.items():
        for number in range((n + shard_size - 1) // shard_size):
            name = shards.shard_name(split, number)
            with shards.ShardWriter(out / shards.SHARDS_DIR / name) as writer:
                for _ in range(min(shard_size, n - number * shard_size)):
                    inp, mask, target = make_sample(face, np.random.default_rng([seed, index]))
                    key = f"{split}{index:07d}"
                    meta = {
                        "key": key,
                        "index": index,
                        "split": split,
                        "source_id": "demo:astronaut",
                        "categories": "rectangle",
                        "coverage": shards.mask_coverage(mask),
                        "seed": seed,
                    }
                    writer.add(shards.encode_sample(key, inp, mask, target, meta))
                    rows.append(meta | {"shard": name})
                    index += 1
    if find_spec("pyarrow") is not None:  # a trimmed GPU-check venv may lack it
        shards.write_table(rows, out / shards.MANIFEST)
    card = {
        "format": {"name": "occsynth-webdataset", "version": 1},
        "generator": "fdsgan_train.toy_data",
        "seed": seed,
        "counts": {"samples": index, "splits": {k: int(v) for k, v in splits.items()}},
    }
    shards.write_json_atomic(out / shards.DATASET_CARD, card)
    return out
