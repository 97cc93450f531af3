"""Which split a face belongs to, and which face each sample uses (both deterministic)."""

from __future__ import annotations

import hashlib

import numpy as np

from .errors import UserError
from .shards import SPLITS

#: CelebA's ``list_eval_partition.txt`` codes.
_PARTITION = {"0": "train", "1": "val", "2": "test"}

#: Spawn key of the face-order stream: distinct from every per-sample ``[seed, i]`` stream.
FACE_ORDER_STREAM = (0xFACE,)


def parse_split(text: str) -> tuple[float, float, float]:
    """``"0.8,0.1,0.1"`` -> fractions for train/val/test (normalised to sum to 1)."""
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        raise UserError(f"--split takes three numbers like 0.8,0.1,0.1, got {text!r}") from None
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise UserError(f"--split takes three non-negative numbers like 0.8,0.1,0.1: {text!r}")
    total = sum(parts)
    return (parts[0] / total, parts[1] / total, parts[2] / total)


def hash_unit(source_id: str) -> float:
    """A stable number in [0, 1) from a source id (SHA-1; the same on every machine)."""
    digest = hashlib.sha1(source_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


#: Fractions for faces with no partition when ``--split`` is not given.
DEFAULT_SPLIT: tuple[float, float, float] = (0.8, 0.1, 0.1)


def split_of(
    source_id: str, partition: object, fractions: tuple[float, float, float] | None
) -> str:
    """The split of a source image.

    ``fractions`` None (no ``--split``): the face's partition (CelebA's, or a demo face's own)
    when it has one, else ``DEFAULT_SPLIT`` by hash of its id. Given fractions override any
    partition. Whole source images go to one split, so no face appears in two splits.
    """
    if fractions is None:
        known = partition_split(partition)
        if known is not None:
            return known
        fractions = DEFAULT_SPLIT
    u = hash_unit(source_id)
    edge = 0.0
    for name, frac in zip(SPLITS, fractions, strict=True):
        edge += frac
        if u < edge:
            return name
    return next(
        name for name, frac in zip(reversed(SPLITS), reversed(fractions), strict=True) if frac > 0
    )


def partition_split(partition: object) -> str | None:
    """The split named by a partition value (``0/1/2``, ``train``, ``validation``...), or None."""
    if partition is None:
        return None
    text = str(partition).strip().lower()
    if text in SPLITS:
        return text
    if text in _PARTITION:
        return _PARTITION[text]
    return "val" if text == "validation" else None


def face_order(n_sources: int, seed: int) -> np.ndarray:
    """The seeded order in which sources are tried and assigned to samples."""
    ss = np.random.SeedSequence(seed, spawn_key=FACE_ORDER_STREAM)
    return np.random.default_rng(ss).permutation(n_sources)


def assign_shards(splits: list[str], shard_size: int) -> tuple[list[int], dict[str, int]]:
    """Shard number of every sample (per split, filled in index order) and split counts."""
    counts = dict.fromkeys(SPLITS, 0)
    shard_of = []
    for split in splits:
        shard_of.append(counts[split] // shard_size)
        counts[split] += 1
    return shard_of, counts
