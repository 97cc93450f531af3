"""Which split a face belongs to, and which face each sample uses (both deterministic)."""

from __future__ import annotations

import hashlib
import math

import numpy as np

from .errors import UserError
from .shards import SPLITS

#: CelebA's ``list_eval_partition.txt`` codes.
_PARTITION = {"0": "train", "1": "val", "2": "test"}

#: Spawn key of the face-order stream: distinct from every per-sample ``[seed, i]`` stream.
FACE_ORDER_STREAM = (0xFACE,)


def parse_split(text: str) -> tuple[float, float, float]:
    """``"0.8,0.1,0.1"`` -> fractions for train/val/test, normalised to sum to 1 (so
    ``8,1,1`` works too; see ``split_note`` for telling the user)."""
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise UserError(f"--split takes three numbers like 0.8,0.1,0.1, got {text!r}") from None
    if len(parts) != 3:
        raise UserError(f"--split takes three numbers like 0.8,0.1,0.1, got {text!r}")
    check_fractions(parts)  # type: ignore[arg-type]
    total = sum(parts)
    return (parts[0] / total, parts[1] / total, parts[2] / total)


def check_fractions(parts: tuple[float, float, float]) -> tuple[float, float, float]:
    """Three finite, non-negative split weights with a positive sum, normalised to sum to 1
    unless they already do (within 1e-9: then kept exactly, so checking twice changes
    nothing)."""
    shown = ",".join(f"{p:g}" for p in parts)
    if len(parts) != 3 or not all(math.isfinite(p) for p in parts):
        raise UserError(f"--split takes three finite numbers like 0.8,0.1,0.1, got {shown}")
    if any(p < 0 for p in parts) or sum(parts) <= 0:
        raise UserError(
            f"--split takes three non-negative numbers with a positive sum, got {shown}"
        )
    total = sum(parts)
    if abs(total - 1.0) <= 1e-9:
        return (parts[0], parts[1], parts[2])  # already fractions: kept exactly
    return (parts[0] / total, parts[1] / total, parts[2] / total)


def split_note(text: str) -> str | None:
    """A note when ``--split`` weights do not sum to 1 and were normalised, else None."""
    parts = [float(p) for p in text.split(",")]
    total = math.fsum(parts)
    if abs(total - 1.0) <= 1e-6:
        return None
    fractions = ",".join(f"{p / total:.3g}" for p in parts)
    return f"note: --split {text} sums to {total:g}; normalised to {fractions}"


def hash_unit(source_id: str) -> float:
    """A stable number in [0, 1) from a source id (SHA-1; the same on every machine)."""
    # surrogateescape: a name holding undecodable bytes hashes as those bytes (os.fsencode)
    digest = hashlib.sha1(source_id.encode("utf-8", "surrogateescape")).digest()
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
    codes = np.array([SPLITS.index(s) for s in splits], np.int8)
    shard_of, counts = shard_numbers(codes, shard_size)
    return shard_of.tolist(), counts


def shard_numbers(codes: np.ndarray, shard_size: int) -> tuple[np.ndarray, dict[str, int]]:
    """Shard number (int32) of every sample from its split code (index into ``SPLITS``):
    each split's samples fill its shards in index order. Also the samples per split."""
    shard_of = np.empty(len(codes), np.int32)
    counts = dict.fromkeys(SPLITS, 0)
    for code, split in enumerate(SPLITS):
        where = np.flatnonzero(codes == code)
        shard_of[where] = np.arange(len(where)) // shard_size
        counts[split] = int(len(where))
    return shard_of, counts
