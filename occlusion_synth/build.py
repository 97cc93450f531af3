"""The parallel, deterministic, resumable dataset build behind ``occsynth build``.

A build is planned, then executed:

1. **Faces** (``recipe.resolve_faces``). Sources are tried in a seeded order; the first
   ``min(n, sources)`` usable ones form the pool (landmarks from the CelebA annotation, the
   landmark cache or detection in worker processes); unusable files go to ``rejects.csv``.
2. **Plan** (:class:`BuildPlan`). Sample ``i`` uses face ``pool[i % len(pool)]``; its split
   is the face's split, and it goes to shard ``rank // shard_size`` of that split, ``rank``
   counting the split's samples in index order. The plan depends only on the options and the
   sources, never on ``--workers``.
3. **Execute.** The distributor (``distribute.py``: ``local`` worker processes, or one
   ``ray`` task per shard) makes the samples through ``Recipe.encoded`` (sample ``i`` draws
   only from ``default_rng([seed, i])``) and writes each shard under a temporary name,
   renaming it when complete, after writing the shard's manifest rows to
   ``.partial/<shard>.parquet``.
4. **Finish.** The part files merge into ``manifest.parquet``; ``dataset.json``,
   ``rejects.csv`` and ``preview.png`` are written and ``.partial/`` is removed.

With ``--partition I/K`` (``partition.py``) a build writes only its share of the shards and
records what it did in ``.partial/``; :func:`merge` does stage 4 once all K are done.

A build that fails before its first sample leaves ``--out`` as it found it (except for
``rejects.csv`` when no face was usable). ``--resume`` repeats stages 1-2 (cheap with the
cache), keeps every shard whose tar and part file exist, and produces only the missing
shards, so it ends with the same bytes as an uninterrupted run.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import shards, storage
from .distribute import (  # noqa: F401  (WorkerPool: part of this module's interface)
    DISTRIBUTORS,
    ShardTarget,
    WorkerPool,
    make_distributor,
    part_name,
)
from .errors import UserError
from .exclude import leave_out
from .faces import DEFAULT_MAX_OUTSIDE, Discovery, describe_change, discover, fingerprint
from .partition import Partition, differences, parse_record_name
from .progress import Progress
from .recipe import FaceOptions, NoUsableFace, PoolFace, Recipe, resolve_faces
from .splits import shard_numbers

PARTIAL_DIR = ".partial"
PLAN_FILE = "plan.json"
#: The source list a build started from (``faces.fingerprint`` entries), for --resume.
SOURCES_FILE = "sources.json"
#: The lock a writing build holds in ``--out`` (JSON: pid, host, token).
LOCK_FILE = ".occsynth-build.lock"
#: Most samples one build makes (planning holds a few bytes per sample; the manifest is
#: merged in memory at the end). Build larger sets in parts, with different seeds.
MAX_SAMPLES = 10_000_000
#: Largest --seed: the manifest stores it as a signed 64-bit integer.
MAX_SEED = 2**63 - 1
#: --workers above this many per core are capped (each worker holds a recipe and a face).
WORKERS_PER_CORE = 4
PREVIEW = "preview.png"
PREVIEW_SAMPLES = 8
#: Everything a build writes; ``--overwrite`` removes exactly these.
OUTPUTS = (
    shards.SHARDS_DIR,
    PARTIAL_DIR,
    shards.MANIFEST,
    shards.DATASET_CARD,
    shards.REJECTS,
    PREVIEW,
)
#: Options that change the bytes of a build (a resume must match them).
PLAN_KEYS = (
    "faces",
    "n",
    "seed",
    "shard_size",
    "categories",
    "max_occluders",
    "occluders_dir",
    "source_weights",
    "landmarks",
    "split",
    "max_outside",
    "exclude",
)


class BuildInterrupted(Exception):
    """Ctrl-C during a build; the folder is consistent and ``--resume`` continues it."""


@dataclass
class BuildOptions:
    """Resolved options of one build (what ``dataset.json`` records)."""

    faces: str
    n: int
    out: storage.Location  # a folder, or an fsspec URL (s3://bucket/prefix)
    seed: int = 0
    workers: int = 0  # 0: all cores
    shard_size: int = 1000
    categories: str | None = None
    max_occluders: int = 1
    occluders_dir: str | None = None
    source_weights: str | None = None  # "drawn:1,harvested:3": variants weighed by source
    landmarks: str = "auto"
    #: None: CelebA's partition (or a demo face's split) wins, else 0.8/0.1/0.1 by hash;
    #: given: these fractions for every face.
    split: tuple[float, float, float] | None = None
    max_outside: float = DEFAULT_MAX_OUTSIDE  # reject faces mostly beyond the photo
    exclude: str | None = None  # a list of faces to leave out (occlusion_synth.exclude)
    resume: bool = False
    overwrite: bool = False
    landmark_cache: str | None = "default"  # a path, "default", or None for no cache
    face_landmarker_task: str | None = None
    distributor: str = "local"  # see distribute.DISTRIBUTORS
    ray_address: str | None = None  # --distributor ray: a cluster; None: a local runtime
    partition: Partition | None = None  # build only these shards; occsynth merge finishes
    command: list[str] = field(default_factory=list)

    def face_options(self) -> FaceOptions:
        return FaceOptions(
            faces=self.faces,
            landmarks=self.landmarks,
            max_outside=self.max_outside,
            face_landmarker_task=self.face_landmarker_task,
            split=self.split,
        )

    def plan_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: d[k] for k in PLAN_KEYS}

    def card_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        d["split"] = None if self.split is None else list(self.split)
        d["partition"] = None if self.partition is None else str(self.partition)
        del d["command"]
        return d


@dataclass
class BuildResult:
    """What a build did (also printed as the final summary)."""

    out: storage.Location
    counts: dict[str, int]
    produced: int
    kept_shards: int
    rejects: int
    seconds: float

    @property
    def samples(self) -> int:
        return sum(self.counts.values())


# --------------------------------------------------------------------------- folder


def _is_lock(name: str) -> bool:
    """Whether ``name`` is a build's lock (or a lock being taken): never a build's output."""
    return name.startswith(LOCK_FILE[: -len(".lock")])


def _build_entries(out: storage.Location) -> tuple[list[str], list[str]]:
    """The names in ``out`` and those of them a build wrote (a URL: listed in the bucket)."""
    entries = [name for name in storage.listdir(out) if not _is_lock(name)]
    return entries, [e for e in entries if e in OUTPUTS]


def check_out(out: storage.Location, resume: bool, overwrite: bool) -> None:
    """Check ``out`` without changing it: a folder holding a build needs ``--resume`` or
    ``--overwrite``. A folder holding only the ``rejects.csv`` of a build that found no
    usable face counts as empty."""
    if storage.isfile(out) or (storage.exists(out) and not storage.isdir(out)):
        raise UserError(f"--out {out} exists and is not a folder")
    entries, ours = _build_entries(out)
    if entries == [shards.REJECTS]:
        return
    if entries and overwrite:
        if not ours:
            raise UserError(
                f"--out {out} is not empty and holds no occsynth build; "
                "refusing to overwrite it (choose a new folder)"
            )
    elif entries and not resume:
        raise UserError(
            f"--out {out} is not empty: add --resume to continue a build there, "
            "or --overwrite to replace it"
        )
    elif entries and resume and not ours:
        raise UserError(f"--out {out} holds no occsynth build to resume")


def check_partition_out(
    out: storage.Location, partition: Partition, resume: bool, overwrite: bool
) -> None:
    """``check_out`` for ``--partition``: other partitions may be writing in ``out``; this
    partition's own earlier start needs ``--resume`` or ``--overwrite``."""
    if storage.isfile(out) or (storage.exists(out) and not storage.isdir(out)):
        raise UserError(f"--out {out} exists and is not a folder")
    entries, ours = _build_entries(out)
    if not entries or entries == [shards.REJECTS]:
        return
    if not ours:
        raise UserError(
            f"--out {out} is not empty and holds no occsynth build; choose a new folder"
        )
    if shards.DATASET_CARD in entries and PARTIAL_DIR not in entries:
        raise UserError(f"--out {out} holds a finished build; build partitions into a new folder")
    started = storage.isfile(storage.join(out, PARTIAL_DIR, partition.record))
    if started and not (resume or overwrite):
        raise UserError(
            f"partition {partition} was already started in {out}: add --resume to continue it, "
            "or --overwrite to redo it"
        )


def _check_partners(out: storage.Location, options: BuildOptions, record: dict[str, Any]) -> None:
    """Refuse to start a partition beside partitions of another split (K) or other options,
    or in the folder of a single build with other options."""
    mine = options.partition
    single = _read_json(storage.join(out, PARTIAL_DIR, PLAN_FILE))
    if isinstance(single, dict):
        plan = {"plan": {k: single.get(k) for k in PLAN_KEYS}, "sources": single.get("sources")}
        diff = differences(dict(plan, occluder_library=record["occluder_library"]), record)
        if diff:
            raise UserError(
                f"--partition {mine}: {out} holds a build with other options ({diff}); "
                "use the same options, or a new --out"
            )
    for other, theirs in sorted(_partition_records(out).items(), key=lambda kv: kv[0].index):
        if other == mine or theirs is None:
            continue
        if mine is not None and other.count != mine.count:
            raise UserError(
                f"--partition {mine}: {out} holds partition {other} of another split into "
                f"{other.count}; use the same K for every partition, or a new --out"
            )
        diff = differences(theirs, record)
        if diff:
            raise UserError(
                f"--partition {mine}: partition {other} in {out} was built with other "
                f"options ({diff}); use the same options, or a new --out"
            )


def _clear_partition(out: storage.Location, partition: Partition, own: set[str]) -> None:
    """Remove what an earlier run of this partition wrote (``--overwrite --partition``)."""
    folder, parts = storage.join(out, shards.SHARDS_DIR), storage.join(out, PARTIAL_DIR)
    for name in storage.listdir(folder):
        if name.removesuffix(shards.TMP_SUFFIX) in own:
            storage.remove(storage.join(folder, name))
    own_parts = {part_name(s) for s in own}
    for name in storage.listdir(parts):
        if name.removesuffix(shards.TMP_SUFFIX) in own_parts:
            storage.remove(storage.join(parts, name))
    storage.remove(storage.join(parts, partition.record))


def _clear_outputs(out: storage.Location) -> None:
    """Remove what a previous build wrote in ``out`` (``--overwrite``)."""
    for name in _build_entries(out)[1]:
        storage.remove_tree(storage.join(out, name))


def _read_json(path: storage.Location) -> Any:
    """A JSON file of a previous build, or None when it is missing or unreadable."""
    try:
        return json.loads(storage.read_bytes(path).decode("utf-8"))
    except (OSError, ValueError):
        return None


def _partition_records(out: storage.Location) -> dict[Partition, Any]:
    """The partition records in ``out/.partial`` (None for an unreadable one)."""
    parts = storage.join(out, PARTIAL_DIR)
    found = {}
    for name in storage.listdir(parts):
        partition = parse_record_name(name)
        if partition is not None:
            record = _read_json(storage.join(parts, name))
            found[partition] = record if isinstance(record, dict) else None
    return found


def _check_plan(out: storage.Location, options: BuildOptions) -> None:
    """Refuse to resume a build made with other options (the plan of a single build, this
    partition's record, or else any partition's record)."""
    plan = json.loads(json.dumps(options.plan_dict()))
    path = storage.join(out, PARTIAL_DIR, PLAN_FILE)
    card = storage.join(out, shards.DATASET_CARD)
    own = None
    if options.partition is not None:
        own = storage.join(out, PARTIAL_DIR, options.partition.record)
    previous = None
    if own is not None and storage.isfile(own):
        previous = (_read_json(own) or {}).get("plan")
    elif storage.isfile(path):
        previous = _read_json(path)
    elif storage.isfile(card):
        previous = (_read_json(card) or {}).get("options")
    else:
        records = [r for r in _partition_records(out).values() if isinstance(r, dict)]
        previous = records[0].get("plan") if records else None
    if not isinstance(previous, dict):
        previous = None
    if previous is not None and any(previous.get(k) != plan[k] for k in PLAN_KEYS):
        diff = ", ".join(
            f"--{k.replace('_', '-')} {previous.get(k)!r} -> {plan[k]!r}"
            for k in PLAN_KEYS
            if previous.get(k) != plan[k]
        )
        raise UserError(f"cannot resume: options differ from the build in {out} ({diff})")


def _check_sources(
    out: storage.Location, options: BuildOptions, sources: dict[str, Any], entries: list
) -> None:
    """Refuse to resume when the faces changed since the build started (a resumed build over
    other sources would mix two face orders: duplicate keys, faces in two splits)."""
    previous = _read_json(storage.join(out, PARTIAL_DIR, PLAN_FILE))
    before = previous.get("sources") if isinstance(previous, dict) else None
    if not isinstance(before, dict) or before.get("sha256") == sources["sha256"]:
        return  # a plan of an older version holds no fingerprint: nothing to compare
    old_entries = _read_json(storage.join(out, PARTIAL_DIR, SOURCES_FILE))
    if isinstance(old_entries, list):
        what = describe_change(old_entries, entries)
    else:
        what = f"{before.get('count')} sources then, {sources['count']} now"
    raise UserError(
        f"cannot resume: --faces {options.faces} changed since the build in {out} started "
        f"({what}); restore them, or rebuild with --overwrite or into a new --out"
    )


def _start_folder(
    out: storage.Location,
    options: BuildOptions,
    sources: dict,
    entries: list,
    record: dict[str, Any] | None = None,
) -> None:
    """Create the build's folders and record its plan (the first write of a build); a
    partition writes its ``record`` instead (partitions share the folder)."""
    storage.makedirs(storage.join(out, shards.SHARDS_DIR))
    storage.makedirs(storage.join(out, PARTIAL_DIR))
    if options.partition is not None and record is not None:
        shards.write_json_atomic(storage.join(out, PARTIAL_DIR, options.partition.record), record)
        return
    plan = dict(options.plan_dict(), sources=sources)
    if not storage.isfile(storage.join(out, PARTIAL_DIR, SOURCES_FILE)):
        shards.write_json_atomic(storage.join(out, PARTIAL_DIR, SOURCES_FILE), entries)
    shards.write_json_atomic(storage.join(out, PARTIAL_DIR, PLAN_FILE), plan)


# --------------------------------------------------------------------------- lock


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):
        return False
    return True


class BuildLock:
    """``--out``'s writer lock (``LOCK_FILE``, JSON with the holder's pid, host and a token).

    Taken when a build is about to write, released when it ends (whatever the outcome). A
    second writer is refused in one line; a lock left by a dead process on this host is
    taken over. Locks of other hosts are never judged stale (their pids mean nothing here).
    """

    def __init__(self, out: Path, name: str = LOCK_FILE) -> None:
        self.path = out / name
        self.token = uuid.uuid4().hex
        self.held = False

    def _holder(self) -> dict[str, Any] | None:
        data = _read_json(self.path)
        return data if isinstance(data, dict) else None

    def acquire(self) -> BuildLock:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "token": self.token}
        tmp = self.path.with_name(f"{self.path.name}.{self.token}")
        tmp.write_text(json.dumps(me) + "\n", encoding="utf-8")
        try:
            for _ in range(3):
                try:
                    os.link(tmp, self.path)  # atomic: fails when the lock exists
                    self.held = True
                    return self
                except FileExistsError:
                    pass
                holder = self._holder()
                if holder is None:  # released meanwhile, or unreadable junk
                    try:
                        age = time.time() - self.path.stat().st_mtime
                    except FileNotFoundError:
                        continue
                    if age < 60:
                        raise UserError(
                            f"--out {self.path.parent} is locked by another build "
                            f"({self.path} is unreadable; delete it if no build runs there)"
                        )
                elif not self._stale(holder):
                    raise self._busy(holder)
                self._take_over(holder)
            raise UserError(f"--out {self.path.parent}: could not take the lock {self.path}")
        finally:
            tmp.unlink(missing_ok=True)

    def check(self) -> None:
        """Refuse early (before the landmark stage) when a live build holds the lock;
        takes nothing (``acquire`` decides, just before the first write)."""
        holder = self._holder()
        if holder is not None and not self._stale(holder):
            raise self._busy(holder)

    def _busy(self, holder: dict[str, Any]) -> UserError:
        return UserError(
            f"--out {self.path.parent} is in use by another build (pid "
            f"{holder.get('pid')} on {holder.get('host')}); wait for it to end, "
            f"or delete {self.path} if that process is gone"
        )

    @staticmethod
    def _stale(holder: dict[str, Any]) -> bool:
        pid = holder.get("pid")
        return (
            holder.get("host") == socket.gethostname()
            and isinstance(pid, int)
            and not _pid_alive(pid)
        )

    def _take_over(self, holder: dict[str, Any] | None) -> None:
        """Move the stale lock aside; put it back if it turns out to be another's fresh one."""
        aside = self.path.with_name(f"{self.path.name}.stale-{self.token}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        moved = _read_json(aside)
        if holder is not None and isinstance(moved, dict) and moved != holder:
            try:
                os.link(aside, self.path)  # someone else took it over meanwhile: theirs
            except FileExistsError:
                pass
        aside.unlink(missing_ok=True)

    def release(self) -> None:
        if self.held:
            holder = self._holder()
            if holder is not None and holder.get("token") == self.token:
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> BuildLock:
        return self.acquire()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.release()


# --------------------------------------------------------------------------- full disks

#: errno values that mean "the disk (or the user's quota) is full".
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _device_of(path: Path) -> str:
    """The mount point holding ``path`` (the nearest existing folder above it)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return str(p)


def write_error(exc: OSError, out: Path, writing: Path | None = None) -> UserError | None:
    """The one-line ``UserError`` for a write failure of a build (a full disk, a read-only
    or forbidden folder), or None when ``exc`` is no such failure."""
    where = exc.filename or writing or out
    if exc.errno in _DISK_FULL:
        return UserError(
            f"no space left on {_device_of(Path(where))} while writing {where}; "
            "free space and rerun with --resume"
        )
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return UserError(f"cannot write {where} ({exc.strerror}); fix that and rerun with --resume")
    return None


def _discard_partial(out: storage.Location, own: set[str] | None = None) -> set[str]:
    """Remove temporary files and unfinished parts; return the names of finished shards
    (for a URL, from a listing of the bucket). ``own``: touch only these shards (a
    partition's), leaving other partitions' files alone."""
    folder = storage.join(out, shards.SHARDS_DIR)
    parts = storage.join(out, PARTIAL_DIR)

    def mine(name: str, suffix: str) -> bool:
        base = name.removesuffix(shards.TMP_SUFFIX)
        return own is None or base.removesuffix(suffix) + ".tar" in own

    in_folder = [n for n in storage.listdir(folder) if mine(n, ".tar")]
    in_parts = [n for n in storage.listdir(parts) if n.endswith(".parquet") or n.endswith(".tmp")]
    in_parts = [n for n in in_parts if mine(n, ".parquet") and not parse_record_name(n)]
    for where, names in ((folder, in_folder), (parts, in_parts)):
        for name in names:
            if name.endswith(shards.TMP_SUFFIX):
                storage.remove(storage.join(where, name))
    finished = set()
    for name in in_folder:
        path = storage.join(folder, name)
        if name.endswith(shards.TMP_SUFFIX):
            continue
        if shards.parse_shard_name(name) and part_name(name) in in_parts:
            finished.add(name)
        elif storage.isfile(path):
            storage.remove(path)  # a tar without its manifest part: redo it
    for name in in_parts:
        if name.endswith(".parquet") and name[: -len(".parquet")] + ".tar" not in finished:
            storage.remove(storage.join(parts, name))
    return finished


def _write_rejects(out: storage.Location, rejects: list[tuple[str, str]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["source", "reason"])
    writer.writerows(rejects)
    storage.makedirs(out)
    shards.write_bytes_atomic(storage.join(out, shards.REJECTS), text.getvalue().encode("utf-8"))


# --------------------------------------------------------------------------- plan


@dataclass
class BuildPlan:
    """What a build will write: the recipe of every sample, the shards and what is left.

    Per sample it holds one byte (split) and four (shard number), so planning the largest
    build (``MAX_SAMPLES``) takes about 50 MB; ``todo`` is an index array.
    """

    recipe: Recipe
    rejects: list[tuple[str, str]]
    splits: np.ndarray  # index into shards.SPLITS, per sample (int8)
    shard_of: np.ndarray  # shard number within its split, per sample (int32)
    counts: dict[str, int]  # samples per split
    sizes: dict[str, int]  # shard name -> planned samples
    todo: np.ndarray  # sample indices still to make, ascending (int64)

    def shard_name(self, i: int) -> str:
        return shards.shard_name(shards.SPLITS[self.splits[i]], int(self.shard_of[i]))


def plan_shards(n: int, pool: list[PoolFace], shard_size: int, finished: set[str]):
    """Split codes, shard numbers, counts, sizes and the samples not in ``finished`` shards
    (numpy arrays: no Python object per sample)."""
    splits, shard_of, counts, sizes = plan_layout(n, pool, shard_size)
    return splits, shard_of, counts, sizes, samples_todo(splits, shard_of, sizes, finished)


def plan_layout(n: int, pool: list[PoolFace], shard_size: int):
    """Split codes and shard numbers per sample, samples per split, and every shard's size
    (in plan order: train, val, test; then by number)."""
    face_split = np.array([shards.SPLITS.index(e.split) for e in pool], np.int8)
    splits = np.empty(n, np.int8)
    period = len(pool)
    for start in range(0, n, period):  # splits[i] = face_split[i % period], without arange(n)
        stop = min(n, start + period)
        splits[start:stop] = face_split[: stop - start]
    shard_of, counts = shard_numbers(splits, shard_size)
    sizes: dict[str, int] = {}
    for split in shards.SPLITS:
        count = counts[split]
        for number in range(-(-count // shard_size)):
            sizes[shards.shard_name(split, number)] = min(shard_size, count - number * shard_size)
    return splits, shard_of, counts, sizes


def samples_todo(
    splits: np.ndarray, shard_of: np.ndarray, sizes: dict[str, int], skip: set[str]
) -> np.ndarray:
    """The sample indices (ascending) of every shard not in ``skip``."""
    n = len(splits)
    done: list[int] = []  # skipped shards as code + 3 * number
    for name in skip:
        parsed = shards.parse_shard_name(name)
        if parsed is not None and name in sizes:
            done.append(shards.SPLITS.index(parsed[0]) + len(shards.SPLITS) * parsed[1])
    if done:
        ids = splits.astype(np.int64) + len(shards.SPLITS) * shard_of.astype(np.int64)
        todo = np.flatnonzero(~np.isin(ids, np.asarray(done, np.int64)))
    else:
        todo = np.arange(n, dtype=np.int64)
    return todo


def _load_library(options: BuildOptions) -> Any:
    from .occluders.library import OccluderLibrary

    return OccluderLibrary.load([options.occluders_dir] if options.occluders_dir else None)


def _sample_options(options: BuildOptions, library: Any) -> Any:
    from .occluders.library import parse_category_weights, parse_source_weights
    from .sample import SampleOptions

    weights = None
    if options.categories:
        weights = parse_category_weights(options.categories, library.categories)
    sources = parse_source_weights(options.source_weights) if options.source_weights else None
    return SampleOptions(
        category_weights=weights, source_weights=sources, max_occluders=options.max_occluders
    )


def open_cache(spec: str | None) -> Any:
    """The landmark cache named by ``--landmark-cache`` (``"default"``: the user's), or None."""
    from .landmark_cache import LandmarkCache

    return None if spec is None else LandmarkCache(None if spec == "default" else spec)


def make_recipe(
    options: BuildOptions,
    pool_map: Callable[[list[Any]], Iterator[Any]],
    progress: bool = True,
    make: Callable | None = None,
    found: Discovery | None = None,
) -> tuple[Recipe, list[tuple[str, str]]]:
    """Stage 1: resolve the face pool and return the build's recipe and its rejects
    (``found``: ``faces.discover(options.faces)`` when the caller has it)."""
    library = _load_library(options)
    sample_options = _sample_options(options, library)
    faces = options.face_options()
    cache = open_cache(options.landmark_cache)
    bar = Progress(options.n, "landmarks", "face", enabled=progress)
    try:
        pool, rejects = resolve_faces(
            faces, options.n, options.seed, pool_map, cache, bar, found=found
        )
    finally:
        bar.close()
        if cache is not None:
            cache.save()
    extra = {} if make is None else {"make_fn": make}
    recipe = Recipe(pool, library, sample_options, options.seed, faces, **extra)
    return recipe, rejects


def _validate(options: BuildOptions, echo: Callable[[str], None] = print) -> None:
    """Refuse bad options before anything is read or written, one line each; cap --workers."""
    if not isinstance(options.n, int) or options.n < 1:
        raise UserError(f"--n must be at least 1, got {options.n}")
    if options.n > MAX_SAMPLES:
        raise UserError(
            f"--n {options.n} is over the limit of {MAX_SAMPLES:,} samples per build; "
            "build in parts (different --seed and --out)"
        )
    if not isinstance(options.seed, int) or not 0 <= options.seed <= MAX_SEED:
        raise UserError(f"--seed must be between 0 and 2**63-1, got {options.seed}")
    if options.shard_size < 1:
        raise UserError("--shard-size must be at least 1")
    if options.workers < 0:
        raise UserError(f"--workers must be 0 (all cores) or more, got {options.workers}")
    if options.categories is not None and not options.categories.strip(" ,"):
        raise UserError("--categories is empty: leave it out to use every category")
    if options.source_weights is not None:
        from .occluders.library import parse_source_weights

        parse_source_weights(options.source_weights)  # a bad spec fails before any work
    if options.split is not None:
        from .splits import check_fractions

        options.split = check_fractions(options.split)
    if options.distributor not in DISTRIBUTORS:
        raise UserError(
            f"--distributor must be one of {', '.join(DISTRIBUTORS)}, got {options.distributor!r}"
        )
    if isinstance(options.partition, str):
        options.partition = Partition.parse(options.partition)
    cores = os.cpu_count() or 1
    cap = WORKERS_PER_CORE * cores
    if options.workers > cap:
        echo(f"note: --workers {options.workers} capped at {cap} ({WORKERS_PER_CORE} per core)")
        options.workers = cap
    options.workers = options.workers or cores


def run_build(
    options: BuildOptions,
    make: Callable | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> BuildResult:
    """Run a build (see the module docstring). ``make`` replaces ``sample.make_sample``.

    Raises ``UserError`` for bad input and ``BuildInterrupted`` on Ctrl-C (after leaving a
    consistent folder).
    """
    t0 = time.perf_counter()
    out = options.out = storage.location(options.out)
    _validate(options, echo)
    partition = options.partition
    distributor = make_distributor(options.distributor, options.workers, options.ray_address)
    if partition is None:
        check_out(out, options.resume, options.overwrite)
    else:
        check_partition_out(out, partition, options.resume, options.overwrite)
    if options.resume:
        _check_plan(out, options)
    done = _already_done(out, options, t0, echo) if options.resume else None
    if done is not None:
        return done

    lock_folder = storage.local_shadow(out) if storage.is_remote(out) else out
    lock_name = LOCK_FILE if partition is None else partition.lock_file
    _check_locks(lock_folder, lock_name)
    found = discover(options.faces)
    if options.exclude is not None:
        found = leave_out(found, Path(options.exclude))
    sources, entries = fingerprint(found)
    if options.resume:
        _check_sources(out, options, sources, entries)
    faces = options.face_options()
    with distributor:
        try:
            with distributor.detection(faces) as mapper:
                recipe, rejects = make_recipe(options, mapper, progress, make, found=found)
        except NoUsableFace as exc:
            if partition is None:
                _write_rejects(out, exc.rejects)
                raise UserError(f"{exc.message}; see {storage.join(out, shards.REJECTS)}") from None
            raise
        except KeyboardInterrupt:
            raise BuildInterrupted(
                "interrupted before any sample was made; nothing written"
            ) from None
        library = library_fingerprint(recipe.library)
        record = _record(options, sources, library)

        # The first write: everything above left --out as it was.
        try:
            storage.makedirs(out)
            with BuildLock(lock_folder, lock_name):
                if partition is None:  # another build may have ended meanwhile
                    check_out(out, options.resume, options.overwrite)
                else:
                    check_partition_out(out, partition, options.resume, options.overwrite)
                    _check_partners(out, options, record)
                splits, shard_of, counts, sizes = plan_layout(
                    options.n, recipe.pool, options.shard_size
                )
                own = None if partition is None else partition.select(list(sizes))
                if options.overwrite:
                    if own is None:
                        _clear_outputs(out)
                    else:
                        _clear_partition(out, partition, own)
                _start_folder(out, options, sources, entries, record)
                finished = _discard_partial(out, own)
                skip = finished if own is None else finished | (set(sizes) - own)
                todo = samples_todo(splits, shard_of, sizes, skip)
                plan = BuildPlan(recipe, rejects, splits, shard_of, counts, sizes, todo)
                _execute(plan, out, distributor, progress, finished)
                if own is None:
                    _finish(out, options, counts, rejects, library, sources)
                else:
                    _finish_partition(out, record, own, sizes, counts, rejects)
                    counts = _partition_counts(sizes, own)
        except OSError as exc:
            error = write_error(exc, out)
            if error is None:
                raise
            raise error from None
    if partition is not None:
        echo(
            f"partition {partition} is complete; once all {partition.count} are, "
            f"run: occsynth merge {out}"
        )
    return BuildResult(
        out=out,
        counts=counts,
        produced=len(todo),
        kept_shards=len(finished),
        rejects=len(rejects),
        seconds=time.perf_counter() - t0,
    )


def _already_done(
    out: storage.Location, options: BuildOptions, t0: float, echo: Callable[[str], None]
) -> BuildResult | None:
    """The result of a ``--resume`` with nothing left to do (the build, or this partition, is
    complete), or None."""
    complete = storage.isfile(storage.join(out, shards.DATASET_CARD)) and not storage.exists(
        storage.join(out, PARTIAL_DIR)
    )
    partition = options.partition
    if partition is not None and not complete:
        record = _read_json(storage.join(out, PARTIAL_DIR, partition.record))
        if not (isinstance(record, dict) and record.get("complete")):
            return None
        if _missing_shards(out, record.get("shards") or []):
            return None  # a shard went missing since: make it again
        echo(f"nothing to resume: partition {partition} is complete in {out}")
        return BuildResult(
            out=out,
            counts=dict(record.get("counts") or {}),
            produced=0,
            kept_shards=len(record.get("shards") or []),
            rejects=len(record.get("rejects") or []),
            seconds=time.perf_counter() - t0,
        )
    if not complete:
        return None
    try:
        card = shards.read_dataset_card(out)
        counts, n_rejects = dict(card["counts"]["splits"]), int(card["counts"]["rejects"])
    except (OSError, shards.ShardError, KeyError, TypeError, ValueError) as exc:
        raise UserError(
            f"cannot resume: {storage.join(out, shards.DATASET_CARD)} is damaged ({exc}); "
            "rebuild with --overwrite"
        ) from None
    echo(f"nothing to resume: the build in {out} is complete")
    return BuildResult(
        out=out,
        counts=counts,
        produced=0,
        kept_shards=len(shards.list_shards(out)),
        rejects=n_rejects,
        seconds=time.perf_counter() - t0,
    )


def _missing_shards(out: storage.Location, names: list[str]) -> list[str]:
    """The shards among ``names`` whose tar or manifest part is not in ``out``."""
    present = set(storage.listdir(storage.join(out, shards.SHARDS_DIR)))
    in_parts = set(storage.listdir(storage.join(out, PARTIAL_DIR)))
    return [n for n in names if n not in present or part_name(n) not in in_parts]


def _check_locks(folder: Path, name: str) -> None:
    """Refuse early (before the landmark stage) when a live build holds a lock that excludes
    this one: a single build excludes every other writer, partitions only a single build."""
    names = [name, LOCK_FILE]
    if name == LOCK_FILE and folder.is_dir():
        names += [n for n in os.listdir(folder) if n.endswith(".lock") and _is_lock(n)]
    for other in dict.fromkeys(names):
        BuildLock(folder, other).check()


def _record(options: BuildOptions, sources: dict, library: dict[str, Any]) -> dict[str, Any]:
    """What a partition records when it starts (completed by ``_finish_partition``)."""
    return {
        "partition": str(options.partition),
        "plan": json.loads(json.dumps(options.plan_dict())),
        "sources": sources,
        "occluder_library": library,
        "options": options.card_dict(),
        "command": options.command,
        "complete": False,
    }


def _partition_counts(sizes: dict[str, int], own: set[str]) -> dict[str, int]:
    """Samples per split in the shards ``own``."""
    counts = dict.fromkeys(shards.SPLITS, 0)
    for name in own:
        split, _ = shards.parse_shard_name(name) or ("", 0)
        counts[split] += sizes[name]
    return counts


def _finish_partition(
    out: storage.Location,
    record: dict[str, Any],
    own: set[str],
    sizes: dict[str, int],
    counts: dict[str, int],
    rejects: list[tuple[str, str]],
) -> None:
    """Mark this partition's record complete: its shards and samples per split, and the
    whole build's counts and rejects (what ``merge`` writes)."""
    mine = _partition_counts(sizes, own)
    done = dict(
        record,
        complete=True,
        shards=sorted(own),
        counts=mine,
        samples=sum(mine.values()),
        build_counts={k: int(v) for k, v in counts.items()},
        rejects=[list(r) for r in rejects],
    )
    shards.write_json_atomic(storage.join(out, PARTIAL_DIR, record_name(record)), done)


def record_name(record: dict[str, Any]) -> str:
    return Partition.parse(record["partition"]).record


def _execute(
    plan: BuildPlan, out: storage.Location, distributor: Any, progress: bool, finished: set
) -> None:
    """Stage 3: make the samples still to do and write their shards."""
    target = ShardTarget(storage.join(out, shards.SHARDS_DIR), storage.join(out, PARTIAL_DIR))
    bar = Progress(len(plan.todo), "samples", "sample", enabled=progress)
    done = 0
    try:
        for _ in distributor.write(plan, target, bar.update):
            done += 1
    except BaseException as exc:  # unfinished shards are gone; finished ones stay for --resume
        if isinstance(exc, KeyboardInterrupt):
            raise BuildInterrupted(
                f"interrupted; {len(finished) + done} shard(s) are complete in {out}. "
                "Run the same command with --resume to continue."
            ) from None
        if isinstance(exc, OSError):
            error = write_error(exc, out)
            if error is not None:
                raise error from None
        raise
    finally:
        bar.close()


# --------------------------------------------------------------------------- finish


def _finish(
    out: storage.Location,
    options: BuildOptions,
    counts: dict[str, int],
    rejects: list[tuple[str, str]],
    library: dict[str, Any],
    sources: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Stage 4: manifest, rejects, dataset card, preview; then drop ``.partial``.
    ``library``: ``library_fingerprint`` of the occluders; ``extra``: more card entries."""
    import pyarrow as pa

    parts = storage.join(out, PARTIAL_DIR)
    names = [n for n in storage.listdir(parts) if n.endswith(".parquet")]
    tables = [shards.read_table(storage.join(parts, n)) for n in names]
    table = pa.concat_tables(tables).sort_by("index")
    shards.write_table(table, storage.join(out, shards.MANIFEST))

    _write_rejects(out, rejects)

    manifest = table.select(["split", "categories", "coverage"]).to_pydict()
    card = dataset_card(options, counts, manifest, len(rejects), library)
    if sources is not None:
        card["sources"] = sources
    card.update(extra or {})
    shards.write_json_atomic(storage.join(out, shards.DATASET_CARD), card)
    _write_preview(out)
    storage.remove_tree(parts)


# --------------------------------------------------------------------------- merge


def merge(
    out: storage.Location, command: list[str] | None = None, echo: Callable[[str], None] = print
) -> BuildResult:
    """``occsynth merge``: check that the K partitions in ``out`` are complete and were built
    with the same options, then write what a single build writes (stage 4)."""
    t0 = time.perf_counter()
    out = storage.location(out)
    if not storage.isdir(out):
        raise UserError(f"{out}: no such folder")
    records = _partition_records(out)
    if not records:
        if storage.isfile(storage.join(out, shards.DATASET_CARD)):
            raise UserError(f"nothing to merge: the build in {out} is complete")
        raise UserError(
            f"{out} holds no partitions to merge (build them with occsynth build --partition I/K)"
        )
    splits = sorted({p.count for p in records})
    if len(splits) > 1:
        raise UserError(
            f"cannot merge: {out} holds partitions of {' and '.join(map(str, splits))}; "
            "rebuild them with one --partition I/K count"
        )
    count = splits[0]
    for i in range(count):
        record = records.get(Partition(i, count))
        if record is None or not record.get("complete"):
            what = "is missing" if record is None else "has not finished"
            raise UserError(
                f"cannot merge: partition {i}/{count} {what} in {out}; run the build command "
                f"with --partition {i}/{count}{'' if record is None else ' --resume'}"
            )
    first = records[Partition(0, count)]
    for i in range(1, count):
        diff = differences(first, records[Partition(i, count)])
        if diff:
            raise UserError(
                f"cannot merge: partition {i}/{count} was built with other options than "
                f"0/{count} ({diff}); rebuild it with --overwrite and the same options"
            )
    claimed = set().union(*(set(r["shards"]) for r in records.values()))
    for i in range(count):
        missing = _missing_shards(out, records[Partition(i, count)]["shards"])
        if missing:
            raise UserError(
                f"cannot merge: shard {missing[0]} of partition {i}/{count} is missing in "
                f"{out}; run its build command with --partition {i}/{count} --resume"
            )
    folder, parts = storage.join(out, shards.SHARDS_DIR), storage.join(out, PARTIAL_DIR)
    present = set(storage.listdir(folder))
    in_parts = set(storage.listdir(parts))
    lock_folder = storage.local_shadow(out) if storage.is_remote(out) else out
    _check_locks(lock_folder, LOCK_FILE)
    with BuildLock(lock_folder):
        # Files no partition claims (left by a run with other options that was overwritten).
        for name in present - claimed:
            storage.remove(storage.join(folder, name))
        for name in in_parts:
            if name.endswith(".parquet") and name[: -len(".parquet")] + ".tar" not in claimed:
                storage.remove(storage.join(parts, name))
        options = _merged_options(first, out)
        counts = {k: int(first["build_counts"].get(k, 0)) for k in shards.SPLITS}
        rejects = [(str(s), str(r)) for s, r in first["rejects"]]
        library = first["occluder_library"]
        commands = [records[Partition(i, count)]["command"] for i in range(count)]
        options.command = command or ["occsynth", "merge", str(out)]
        _finish(out, options, counts, rejects, library, first["sources"], {"partitions": commands})
    return BuildResult(
        out=out,
        counts=counts,
        produced=0,
        kept_shards=len(claimed),
        rejects=len(rejects),
        seconds=time.perf_counter() - t0,
    )


def _merged_options(record: dict[str, Any], out: storage.Location) -> BuildOptions:
    """The options of a single build equivalent to the partitions (for the dataset card)."""
    known = {f for f in BuildOptions.__dataclass_fields__ if f != "command"}
    given = {k: v for k, v in record["options"].items() if k in known}
    given.update(out=out, partition=None)
    if given.get("split") is not None:
        given["split"] = tuple(given["split"])
    return BuildOptions(**given)


def dataset_card(
    options: BuildOptions,
    counts: dict[str, int],
    manifest: dict[str, list],
    rejects: int,
    library: dict[str, Any],
) -> dict[str, Any]:
    """The content of ``dataset.json`` (``library``: ``library_fingerprint`` of the occluders)."""
    per_category: dict[str, int] = {}
    for cats in manifest["categories"]:
        for c in cats.split("+") if cats else ["none"]:
            per_category[c] = per_category.get(c, 0) + 1
    cov = np.asarray(manifest["coverage"], dtype=np.float64)
    qs = (5, 25, 50, 75, 95)
    return {
        "format": {"name": "occsynth-webdataset", "version": 1},
        "command": options.command,
        "options": options.card_dict(),
        "seed": options.seed,
        "versions": shards.package_versions(),
        "counts": {
            "samples": int(sum(counts.values())),
            "splits": {k: int(v) for k, v in counts.items()},
            "categories": dict(sorted(per_category.items())),
            "rejects": rejects,
        },
        "coverage": {
            "mean": float(cov.mean()),
            "std": float(cov.std()),
            "min": float(cov.min()),
            "max": float(cov.max()),
            "percentiles": {
                str(q): float(v) for q, v in zip(qs, np.percentile(cov, qs), strict=True)
            },
        },
        "occluder_library": library,
    }


def library_fingerprint(library: Any) -> dict[str, Any]:
    """SHA-256 over every occluder's name, pixels file and sidecar, plus counts."""
    digest = hashlib.sha256()
    per_category: dict[str, int] = {}
    for occ in sorted(getattr(library, "occluders", []), key=lambda o: o.name):
        per_category[occ.category] = per_category.get(occ.category, 0) + 1
        digest.update(occ.name.encode("utf-8") + b"\0")
        if occ.path is not None:
            digest.update(hashlib.sha256(Path(occ.path).read_bytes()).digest())
            sidecar = Path(occ.path).with_suffix(".json")
            if sidecar.is_file():
                digest.update(hashlib.sha256(sidecar.read_bytes()).digest())
    return {
        "sha256": digest.hexdigest(),
        "occluders": sum(per_category.values()),
        "categories": dict(sorted(per_category.items())),
    }


def _write_preview(out: storage.Location) -> None:
    """A contact sheet of the first samples (``preview.png``)."""
    from .preview import dataset_rows, draw_sample_sheet

    rows = dataset_rows(out, PREVIEW_SAMPLES)
    title = f"{storage.name(out)}: first {len(rows)} samples"
    draw_sample_sheet(rows, storage.join(out, PREVIEW), title=title)


def summary(result: BuildResult) -> str:
    """The final summary line(s) of a build."""
    per_split = ", ".join(f"{k} {v}" for k, v in result.counts.items() if v)
    rate = result.produced / result.seconds if result.seconds > 0 else 0.0
    kept = f", {result.kept_shards} shard(s) kept from before" if result.kept_shards else ""
    return (
        f"{result.samples} samples ({per_split}) in {result.out}; {result.rejects} rejected "
        f"source(s){kept}; {result.produced} made in {result.seconds:.1f} s "
        f"({rate:.1f} samples/s)"
    )
