"""Check a built dataset end to end: every shard, every sample, the manifest and the card.

``verify_dataset(root)`` never stops at the first problem: it returns every one it finds,
each as one line naming the shard and key.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import shards, storage
from .canonical import CANONICAL_SIZE

#: Largest allowed |coverage in manifest - coverage of the mask|.
COVERAGE_TOLERANCE = 1e-6


#: Largest allowed |landmark coordinate in the JSON - in the manifest| (pixels).
LANDMARK_TOLERANCE = 1e-6


@dataclass
class SampleInfo:
    """What the cross-checks need from a sample read in a shard."""

    shard: str
    split: str | None
    coverage: float | None
    source_id: str | None
    #: What the sample's JSON says that the manifest repeats (index, seed, categories,
    #: landmark coordinates as ``<name>_x``...), compared column by column.
    fields: dict[str, Any] = field(default_factory=dict)


#: Sample JSON fields the manifest repeats under the same name.
_SHARED_FIELDS = ("index", "seed", "categories")


def _meta_fields(meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON values that have a manifest column: ``_SHARED_FIELDS``, the landmark
    provider and every landmark coordinate (``landmarks.<name>_x`` -> ``<name>_x``)."""
    out = {k: meta[k] for k in _SHARED_FIELDS if k in meta}
    marks = meta.get("landmarks")
    if isinstance(marks, dict):
        for name, value in marks.items():
            if name == "provider":
                out["landmark_provider"] = value
            elif name.endswith(("_x", "_y")):
                out[name] = value
    return out


@dataclass
class VerifyReport:
    """The outcome of ``verify_dataset``: counts and every problem found."""

    root: storage.Location
    shards: int = 0
    samples: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        per_split = ", ".join(f"{k} {v}" for k, v in sorted(self.splits.items()))
        head = f"{self.samples} samples ({per_split or 'none'}) in {self.shards} shard(s)"
        if self.ok:
            return f"OK: {head} in {self.root}"
        return f"FAILED: {head} in {self.root}; {len(self.problems)} problem(s)"


def check_sample(
    key: str, members: dict[str, bytes], shard_split: str | None
) -> tuple[list[str], SampleInfo]:
    """Problems of one sample (members, decoding, sizes, modes, mask, invariant, metadata)."""
    problems: list[str] = []
    if "." in key or "/" in key:
        problems.append("key contains a dot or a slash")
    missing = [m for m in shards.MEMBERS if m not in members]
    extra = sorted(set(members) - set(shards.KNOWN_MEMBERS))
    if missing:
        problems.append(f"missing member(s): {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected member(s): {', '.join(extra)}")
    images: dict[str, np.ndarray] = {}
    modes = (("input.png", "RGB"), ("mask.png", "L"), ("object.png", "L"), ("target.png", "RGB"))
    for name, mode in modes:
        if name not in members:
            continue
        try:
            arr = shards.decode_png(members[name], mode)
        except Exception as exc:  # noqa: BLE001 - any decoding failure is a finding
            problems.append(f"{name} does not decode as a {mode} PNG ({exc})")
            continue
        if arr.shape[:2] != (CANONICAL_SIZE, CANONICAL_SIZE):
            problems.append(f"{name} is {arr.shape[1]}x{arr.shape[0]}, expected 256x256")
            continue
        images[name] = arr
    mask = images.get("mask.png")
    if mask is not None:
        grey = np.count_nonzero((mask != 0) & (mask != 255))
        if grey:
            problems.append(f"mask has {grey} pixel(s) that are neither 0 nor 255")
    obj = images.get("object.png")
    if obj is not None:
        grey = np.count_nonzero((obj != 0) & (obj != 255))
        if grey:
            problems.append(f"object mask has {grey} pixel(s) that are neither 0 nor 255")
        if mask is not None and (n := int(np.count_nonzero((obj != 0) & (mask == 0)))):
            problems.append(f"object mask reaches {n} pixel(s) outside the mask")
    if mask is not None and "input.png" in images and "target.png" in images:
        outside = mask == 0
        differs = np.any(images["input.png"] != images["target.png"], axis=-1) & outside
        n = int(np.count_nonzero(differs))
        if n:
            problems.append(f"input differs from target at {n} pixel(s) outside the mask")
    meta: dict[str, Any] = {}
    if "json" in members:
        try:
            meta = json.loads(members["json"].decode("utf-8"))
            if not isinstance(meta, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(f"json does not parse ({exc})")
            meta = {}
    if meta:
        if meta.get("key", key) != key:
            problems.append(f"json key {meta.get('key')!r} differs from the member key")
        if shard_split is not None and meta.get("split") != shard_split:
            problems.append(f"json split {meta.get('split')!r} in a {shard_split} shard")
    coverage = None if mask is None else shards.mask_coverage(mask)
    if coverage is not None and isinstance(meta.get("coverage"), (int, float)):
        if abs(meta["coverage"] - coverage) > COVERAGE_TOLERANCE:
            problems.append(f"json coverage {meta['coverage']} but the mask covers {coverage}")
    info = SampleInfo(
        shard="",
        split=meta.get("split"),
        coverage=coverage,
        source_id=meta.get("source_id"),
        fields=_meta_fields(meta),
    )
    return problems, info


def check_shard(path: storage.Location) -> tuple[list[str], dict[str, SampleInfo]]:
    """Problems of one shard file (local or at a URL) and what its samples say, by key."""
    shard = storage.name(path)
    parsed = shards.parse_shard_name(shard)
    split = parsed[0] if parsed else None
    problems: list[str] = []
    seen: dict[str, SampleInfo] = {}
    try:
        for key, members in shards.read_shard(path):
            found, info = check_sample(key, members, split)
            problems.extend(f"{shard}: {key}: {p}" for p in found)
            info.shard = shard
            seen[key] = info
    except shards.ShardError as exc:
        problems.append(f"{shard}: {exc}")
    return problems, seen


def _leftovers(root: storage.Location) -> list[str]:
    problems = []
    for prefix in ("", shards.SHARDS_DIR):
        for name in storage.listdir(storage.join(root, prefix) if prefix else root):
            relative = f"{prefix}/{name}" if prefix else name
            if name.endswith(shards.TMP_SUFFIX):
                problems.append(f"leftover partial file {relative}")
            elif prefix and not shards.parse_shard_name(name):
                problems.append(f"unexpected file {relative}")
    if storage.exists(storage.join(root, ".partial")):
        problems.append("unfinished build (.partial/ present): rerun the build with --resume")
    return problems


def _map(fn: Callable, items: list, workers: int) -> Iterator:
    if workers <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(min(workers, len(items))) as pool:
        yield from pool.imap(fn, items)


def verify_dataset(
    root: storage.Location, workers: int = 1, progress: Callable[[int], None] | None = None
) -> VerifyReport:
    """Read every shard and check every sample, the manifest and ``dataset.json`` (of a
    dataset in a folder or at a URL, whose shards are streamed)."""
    root = storage.location(root)
    report = VerifyReport(root=root)
    if not storage.isdir(root):
        report.problems.append(f"{root} is not a folder")
        return report
    report.problems.extend(_leftovers(root))
    paths = shards.list_shards(root)
    report.shards = len(paths)
    if not paths:
        report.problems.append(f"no shards in {storage.join(root, shards.SHARDS_DIR)}")
    samples: dict[str, SampleInfo] = {}
    for shard_problems, seen in _map(check_shard, paths, workers):
        report.problems.extend(shard_problems)
        for key, info in seen.items():
            if key in samples:
                report.problems.append(
                    f"{info.shard}: {key}: duplicate key (also in {samples[key].shard})"
                )
                continue
            samples[key] = info
            split = shards.parse_shard_name(info.shard)[0]
            report.splits[split] = report.splits.get(split, 0) + 1
        if progress is not None:
            progress(1)
    report.samples = len(samples)
    report.problems.extend(_check_manifest(root, samples))
    report.problems.extend(_check_card(root, report))
    return report


def _check_manifest(root: storage.Location, samples: dict[str, SampleInfo]) -> list[str]:
    try:
        manifest = shards.load_manifest(root)  # a FIFO is refused, not read forever
    except (OSError, shards.ShardError) as exc:  # a missing or broken manifest is a finding
        return [f"{shards.MANIFEST}: cannot read ({exc})"]
    problems = []
    needed = {"key", "split", "shard", "source_id", "categories", "coverage", "seed"}
    lacking = sorted(needed - set(manifest.columns))
    if lacking:
        return [f"{shards.MANIFEST}: lacks column(s) {', '.join(lacking)}"]
    keys = manifest["key"].astype(str)
    for key in sorted(keys[keys.duplicated()].unique()):
        problems.append(f"{shards.MANIFEST}: key {key} appears twice")
    rows = manifest.drop_duplicates("key").set_index("key")
    for key in sorted(set(rows.index) - set(samples)):
        problems.append(f"{shards.MANIFEST}: {key} is in the manifest but in no shard")
    for key in sorted(set(samples) - set(rows.index)):
        problems.append(f"{samples[key].shard}: {key}: not in the manifest")
    for key in sorted(set(samples) & set(rows.index)):
        info, row = samples[key], rows.loc[key]
        where = f"{info.shard}: {key}"
        if row["shard"] != info.shard:
            problems.append(f"{where}: manifest says shard {row['shard']}")
        if info.split is not None and row["split"] != info.split:
            problems.append(f"{where}: manifest split {row['split']} but json says {info.split}")
        if info.source_id is not None and row["source_id"] != info.source_id:
            problems.append(
                f"{where}: manifest source {row['source_id']} but json says {info.source_id}"
            )
        if info.coverage is not None and not _close(
            row["coverage"], info.coverage, COVERAGE_TOLERANCE
        ):
            problems.append(
                f"{where}: manifest coverage {row['coverage']} but the mask covers {info.coverage}"
            )
        for name, value in info.fields.items():
            if name not in row.index:
                continue
            column = row[name]
            if name.endswith(("_x", "_y")):
                same = _close(column, value, LANDMARK_TOLERANCE)
            else:
                same = _plain(column) == value
            if not same:
                problems.append(f"{where}: manifest {name} {column!r} but json says {value!r}")
    return problems


def _plain(value: Any) -> Any:
    """A manifest cell as a plain Python value (numpy scalars unwrapped)."""
    return value.item() if isinstance(value, np.generic) else value


def _close(a: Any, b: Any, tolerance: float) -> bool:
    """Whether two numbers agree within ``tolerance``; anything not a number never does."""
    try:
        return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=tolerance)
    except (TypeError, ValueError):
        return False


def _check_card(root: storage.Location, report: VerifyReport) -> list[str]:
    """``dataset.json``'s counts against the shards; a card that cannot be read, or whose
    fields have the wrong type, is a finding, never a crash."""
    name = shards.DATASET_CARD
    try:
        card = shards.read_dataset_card(root)
    except (OSError, shards.ShardError) as exc:
        return [f"{name}: cannot read ({exc})"]
    counts = card.get("counts")
    if not isinstance(counts, dict):
        return [f"{name}: 'counts' is {type(counts).__name__}, expected an object"]
    problems = []
    samples = counts.get("samples")
    if not isinstance(samples, int) or isinstance(samples, bool):
        problems.append(f"{name}: counts.samples is {samples!r}, expected a whole number")
    elif samples != report.samples:
        problems.append(f"{name}: says {samples} samples, shards hold {report.samples}")
    splits = counts.get("splits")
    if not isinstance(splits, dict):
        problems.append(f"{name}: counts.splits is {type(splits).__name__}, expected an object")
        splits = {}
    for split, n in sorted(splits.items()):
        if not isinstance(n, int) or isinstance(n, bool):
            problems.append(f"{name}: counts.splits.{split} is {n!r}, expected a whole number")
        elif report.splits.get(split, 0) != n:
            problems.append(
                f"{name}: says {n} {split} samples, shards hold {report.splits.get(split, 0)}"
            )
    for key, kind in (("seed", int), ("options", dict), ("format", dict)):
        if key in card and not isinstance(card[key], kind):
            problems.append(
                f"{name}: {key} is {type(card[key]).__name__}, expected {kind.__name__}"
            )
    return problems
