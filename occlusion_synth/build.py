"""The parallel, deterministic, resumable dataset build behind ``occsynth build``.

Stages:

1. **Faces.** ``faces.discover_faces`` lists the sources; a seeded permutation
   (``splits.face_order``) fixes the order in which they are tried. The first
   ``min(n, sources)`` usable ones form the pool: landmarks come from the CelebA annotation,
   the landmark cache or detection (in worker processes); unusable files go to
   ``rejects.csv`` and the next source in the order takes their place.
2. **Plan.** Sample ``i`` uses face ``pool[i % len(pool)]``; its split is the face's split
   (CelebA's partition, else a stable hash of the source id), and it goes to shard
   ``rank // shard_size`` of that split, ``rank`` counting the split's samples in index
   order. The plan depends only on the options and the sources, never on ``--workers``.
3. **Samples.** A process pool maps sample indices in order; sample ``i`` draws only from
   ``numpy.random.default_rng([seed, i])`` and the workers encode the PNGs. The parent
   writes each shard under a temporary name and renames it when complete, after writing
   the shard's manifest rows to ``.partial/<shard>.parquet``.
4. **Finish.** The part files merge into ``manifest.parquet``; ``dataset.json``,
   ``rejects.csv`` and ``preview.png`` are written and ``.partial/`` is removed.

``--resume`` repeats stages 1-2 (cheap with the cache), keeps every shard whose tar and
part file exist, and produces only the missing shards, so it ends with the same bytes as an
uninterrupted run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import multiprocessing as mp
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import shards
from .errors import UserError
from .faces import DEFAULT_MAX_OUTSIDE
from .landmarks import FaceMeshDetector
from .sample import category_stratum
from .splits import assign_shards, face_order, split_of

PARTIAL_DIR = ".partial"
PLAN_FILE = "plan.json"
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
    "landmarks",
    "split",
    "max_outside",
)


class BuildInterrupted(Exception):
    """Ctrl-C during a build; the folder is consistent and ``--resume`` continues it."""


@dataclass
class BuildOptions:
    """Resolved options of one build (what ``dataset.json`` records)."""

    faces: str
    n: int
    out: Path
    seed: int = 0
    workers: int = 0  # 0: all cores
    shard_size: int = 1000
    categories: str | None = None
    max_occluders: int = 1
    occluders_dir: str | None = None
    landmarks: str = "auto"
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    max_outside: float = DEFAULT_MAX_OUTSIDE  # reject faces mostly beyond the photo
    resume: bool = False
    overwrite: bool = False
    landmark_cache: str | None = "default"  # a path, "default", or None for no cache
    command: list[str] = field(default_factory=list)

    def plan_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: d[k] for k in PLAN_KEYS}

    def card_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        d["split"] = list(self.split)
        del d["command"]
        return d


@dataclass
class BuildResult:
    """What a build did (also printed as the final summary)."""

    out: Path
    counts: dict[str, int]
    produced: int
    kept_shards: int
    rejects: int
    seconds: float

    @property
    def samples(self) -> int:
        return sum(self.counts.values())


@dataclass
class PoolFace:
    """A usable face: its source and the source-pixel landmarks found for it."""

    source: Any  # faces.FaceSource
    points: Any  # landmarks.SourcePoints
    split: str


# --------------------------------------------------------------------------- folder


def prepare_out(out: Path, resume: bool, overwrite: bool) -> None:
    """Check ``out``: a non-empty folder needs ``--resume`` or ``--overwrite`` (which clears it)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    ours = [e for e in entries if e in OUTPUTS]
    if entries and overwrite:
        if not ours:
            raise UserError(
                f"--out {out} is not empty and holds no occsynth build; "
                "refusing to overwrite it (choose a new folder)"
            )
        for name in ours:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    elif entries and not resume:
        raise UserError(
            f"--out {out} is not empty: add --resume to continue a build there, "
            "or --overwrite to replace it"
        )
    elif entries and resume and not ours:
        raise UserError(f"--out {out} holds no occsynth build to resume")


def _check_plan(out: Path, options: BuildOptions) -> None:
    """Check the options against the build being resumed, then create the folders and record
    them."""
    import json

    path = out / PARTIAL_DIR / PLAN_FILE
    plan = json.loads(json.dumps(options.plan_dict()))
    card = out / shards.DATASET_CARD
    previous = None
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
    elif card.is_file():
        previous = {k: shards.read_dataset_card(out)["options"].get(k) for k in PLAN_KEYS}
    if previous is not None and previous != plan:
        diff = ", ".join(
            f"--{k.replace('_', '-')} {previous.get(k)!r} -> {plan[k]!r}"
            for k in PLAN_KEYS
            if previous.get(k) != plan[k]
        )
        raise UserError(f"cannot resume: options differ from the build in {out} ({diff})")
    (out / shards.SHARDS_DIR).mkdir(parents=True, exist_ok=True)
    (out / PARTIAL_DIR).mkdir(exist_ok=True)
    shards.write_json_atomic(path, plan)


def _discard_partial(out: Path) -> set[str]:
    """Remove temporary files and unfinished parts; return the names of finished shards."""
    folder = out / shards.SHARDS_DIR
    parts = out / PARTIAL_DIR
    for p in list(folder.iterdir()) + list(parts.iterdir()):
        if p.name.endswith(shards.TMP_SUFFIX):
            p.unlink()
    finished = set()
    for p in folder.iterdir():
        if shards.parse_shard_name(p.name) and (parts / _part_name(p.name)).is_file():
            finished.add(p.name)
        elif p.is_file():
            p.unlink()  # a tar without its manifest part: redo it
    for p in parts.glob("*.parquet"):
        if p.stem + ".tar" not in finished:
            p.unlink()
    return finished


def _part_name(shard: str) -> str:
    return shard[: -len(".tar")] + ".parquet"


# --------------------------------------------------------------------------- workers

#: Per-process state for pool workers (set by ``_init_worker``).
_STATE: dict[str, Any] = {}


def _init_worker(state: dict[str, Any]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    _STATE.clear()
    _STATE.update(state)


def _locate_face(args: tuple[Any, Any]) -> tuple[Any, str | None]:
    """Stage 1 in a worker: load one face (detecting landmarks unless given)."""
    from .faces import Reject, load_aligned

    src, points = args
    try:
        face = load_aligned(
            src, provider=_STATE["provider"], points=points, max_outside=_STATE["max_outside"]
        )
    except Reject as exc:
        return None, exc.reason
    return face.found, None


def _produce(i: int) -> tuple[int, list[tuple[str, bytes]], dict[str, Any]]:
    """Stage 3 in a worker: make sample ``i`` and encode it."""
    from .faces import load_aligned

    st = _STATE
    entry: PoolFace = st["pool"][i % len(st["pool"])]
    face = load_aligned(entry.source, provider=st["provider"], points=entry.points)
    rng = np.random.default_rng([st["seed"], i])
    key = sample_key(i)
    stratum = category_stratum(st["seed"], i)
    sample = st["make"](face, st["library"], rng, st["sample_options"], key=key, stratum=stratum)
    meta = dict(sample.meta)
    meta.update(key=key, index=i, split=entry.split, seed=st["seed"], source_id=entry.source.id)
    members = shards.encode_sample(key, sample.input, sample.mask, sample.target, meta)
    row = manifest_row(key, i, entry, sample.mask, meta, face.landmarks, st["seed"])
    return i, members, row


def sample_key(i: int) -> str:
    """The key of sample ``i`` (no dots; unique in the dataset)."""
    return f"{i:08d}"


def manifest_row(
    key: str, index: int, entry: PoolFace, mask: np.ndarray, meta: dict, landmarks, seed: int
) -> dict[str, Any]:
    """One manifest row (the ``shard`` column is filled in by the writer)."""
    occluders = [o for o in meta.get("occluders", []) if isinstance(o, dict)]
    cats = meta.get("categories")
    if not isinstance(cats, str):
        cats = "+".join(str(o.get("category", "")) for o in occluders)
    names = "+".join(str(o.get("name", "")) for o in occluders)
    row: dict[str, Any] = {
        "key": key,
        "index": index,
        "split": entry.split,
        "shard": "",
        "source_id": entry.source.id,
        "categories": cats,
        "occluders": names,
        "coverage": float(np.count_nonzero(mask)) / mask.size,
        "seed": seed,
        "landmark_provider": landmarks.provider,
    }
    row.update(landmarks.flat())
    return row


def _map(pool: Any, fn: Callable, items: Iterable, chunksize: int) -> Iterator[Any]:
    return pool.imap(fn, items, chunksize) if pool is not None else map(fn, items)


# --------------------------------------------------------------------------- stages


def _resolve_pool(options: BuildOptions, pool: Any, progress: bool) -> tuple[list, list]:
    """Stage 1: the usable faces in face order, and ``(source id, reason)`` rejects."""
    from .faces import discover_faces
    from .landmark_cache import LandmarkCache

    sources = discover_faces(options.faces)
    order = face_order(len(sources), options.seed)
    want = min(options.n, len(sources))
    cache = None
    if options.landmark_cache is not None:
        cache = LandmarkCache(
            None if options.landmark_cache == "default" else options.landmark_cache
        )
    accepted: list[PoolFace] = []
    rejects: list[tuple[str, str]] = []
    pos = 0
    bar = _bar(want, "landmarks", "faces", progress)
    try:
        while len(accepted) < want and pos < len(sources):
            batch = [sources[j] for j in order[pos : pos + want - len(accepted)]]
            pos += len(batch)
            jobs = []
            for src in batch:
                hit = None
                if cache is not None and src.path is not None and not _annotated(src, options):
                    hit = cache.get(src.path, FaceMeshDetector.name)
                jobs.append((src, hit))
            chunk = max(1, min(16, len(jobs) // (4 * max(1, options.workers))))
            for (src, hit), (found, reason) in zip(
                jobs, _map(pool, _locate_face, jobs, chunk), strict=True
            ):
                if reason is not None:
                    rejects.append((src.id, reason))
                    continue
                if cache is not None and hit is None and found.provider != "celeba":
                    cache.put(src.path, FaceMeshDetector.name, found)
                split = split_of(src.id, src.split, options.split)
                accepted.append(PoolFace(source=src, points=found, split=split))
                bar.update(1)
    finally:
        bar.close()
        if cache is not None:
            cache.save()
    if not accepted:
        raise UserError(f"--faces {options.faces}: no usable face ({len(rejects)} rejected)")
    return accepted, rejects


def _annotated(src: Any, options: BuildOptions) -> bool:
    return src.annotation is not None and options.landmarks in ("auto", "celeba")


def _bar(total: int, desc: str, unit: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=None if enabled else True,
        dynamic_ncols=True,
        leave=False,
    )


class _ShardSet:
    """The open shards of a build (at most one per split), closed when they are full."""

    def __init__(self, out: Path, sizes: dict[str, int]) -> None:
        self.out = out
        self.sizes = sizes  # shard name -> planned number of samples
        self.open: dict[str, tuple[shards.ShardWriter, list[dict]]] = {}
        self.done = 0

    def add(self, name: str, members: list[tuple[str, bytes]], row: dict) -> None:
        if name not in self.open:
            self.open[name] = (shards.ShardWriter(self.out / shards.SHARDS_DIR / name), [])
        writer, rows = self.open[name]
        row["shard"] = name
        writer.add(members)
        rows.append(row)
        if writer.count == self.sizes[name]:
            shards.write_table(rows, self.out / PARTIAL_DIR / _part_name(name))
            writer.close()
            del self.open[name]
            self.done += 1

    def abort(self) -> None:
        for writer, _ in self.open.values():
            writer.abort()
        self.open.clear()


def _load_library(options: BuildOptions) -> Any:
    from .occluders.library import OccluderLibrary

    return OccluderLibrary.load([options.occluders_dir] if options.occluders_dir else None)


def _sample_options(options: BuildOptions, library: Any) -> Any:
    from .occluders.library import parse_category_weights
    from .sample import SampleOptions

    weights = None
    if options.categories:
        weights = parse_category_weights(options.categories, library.categories)
    return SampleOptions(category_weights=weights, max_occluders=options.max_occluders)


def _default_make() -> Callable:
    from .sample import make_sample

    return make_sample


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
    out = Path(options.out)
    if options.n < 1:
        raise UserError("--n must be at least 1")
    if options.shard_size < 1:
        raise UserError("--shard-size must be at least 1")
    workers = options.workers or os.cpu_count() or 1
    options.workers = workers
    library = _load_library(options)
    sample_options = _sample_options(options, library)
    make = make or _default_make()
    complete = (out / shards.DATASET_CARD).is_file() and not (out / PARTIAL_DIR).exists()
    prepare_out(out, options.resume, options.overwrite)
    _check_plan(out, options)
    if options.resume and complete:
        shutil.rmtree(out / PARTIAL_DIR)
        echo(f"nothing to resume: the build in {out} is complete")
        card = shards.read_dataset_card(out)
        return BuildResult(
            out=out,
            counts=card["counts"]["splits"],
            produced=0,
            kept_shards=len(shards.list_shards(out)),
            rejects=card["counts"]["rejects"],
            seconds=time.perf_counter() - t0,
        )
    finished = _discard_partial(out)

    state = {
        "provider": options.landmarks,
        "seed": options.seed,
        "max_outside": options.max_outside,
    }
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    pool = ctx.Pool(workers, _init_worker, (state,)) if workers > 1 else None
    if pool is None:
        _init_worker_inline(state)
    sset: _ShardSet | None = None
    try:
        face_pool, rejects = _resolve_pool(options, pool, progress)
        face_splits = [e.split for e in face_pool]
        splits = [face_splits[i % len(face_pool)] for i in range(options.n)]
        shard_of, counts = assign_shards(splits, options.shard_size)
        sizes: dict[str, int] = {}
        for split, s in zip(splits, shard_of, strict=True):
            name = shards.shard_name(split, s)
            sizes[name] = sizes.get(name, 0) + 1
        todo = [
            i for i in range(options.n) if shards.shard_name(splits[i], shard_of[i]) not in finished
        ]
        del face_splits
        if pool is not None:
            pool.close()
            pool.join()
        state.update(pool=face_pool, library=library, sample_options=sample_options, make=make)
        pool = ctx.Pool(workers, _init_worker, (state,)) if workers > 1 and todo else None
        if pool is None:
            _init_worker_inline(state)
        sset = _ShardSet(out, sizes)
        chunk = max(1, min(8, len(todo) // (8 * workers) or 1))
        bar = _bar(len(todo), "samples", "sample", progress)
        try:
            for i, members, row in _map(pool, _produce, todo, chunk):
                sset.add(shards.shard_name(splits[i], shard_of[i]), members, row)
                bar.update(1)
        finally:
            bar.close()
        if pool is not None:
            pool.close()
            pool.join()
            pool = None
        _finish(out, options, counts, rejects, library, echo)
    except BaseException as exc:
        if pool is not None:
            pool.terminate()
            pool.join()
            pool = None
        if sset is not None:
            sset.abort()  # unfinished shards go; finished ones stay for --resume
        if isinstance(exc, KeyboardInterrupt):
            done = len(finished) + (sset.done if sset else 0)
            raise BuildInterrupted(
                f"interrupted; {done} shard(s) are complete in {out}. "
                "Run the same command with --resume to continue."
            ) from None
        raise
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    return BuildResult(
        out=out,
        counts=counts,
        produced=len(todo),
        kept_shards=len(finished),
        rejects=len(rejects),
        seconds=time.perf_counter() - t0,
    )


def _init_worker_inline(state: dict[str, Any]) -> None:
    _STATE.clear()
    _STATE.update(state)


# --------------------------------------------------------------------------- finish


def _finish(
    out: Path,
    options: BuildOptions,
    counts: dict[str, int],
    rejects: list[tuple[str, str]],
    library: Any,
    echo: Callable[[str], None],
) -> None:
    """Stage 4: manifest, rejects, dataset card, preview; then drop ``.partial``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = out / PARTIAL_DIR
    tables = [pq.read_table(p) for p in sorted(parts.glob("*.parquet"))]
    table = pa.concat_tables(tables).sort_by("index")
    shards.write_table(table, out / shards.MANIFEST)

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["source", "reason"])
    writer.writerows(rejects)
    shards.write_bytes_atomic(out / shards.REJECTS, text.getvalue().encode("utf-8"))

    manifest = table.select(["split", "categories", "coverage"]).to_pydict()
    card = dataset_card(options, counts, manifest, len(rejects), library)
    shards.write_json_atomic(out / shards.DATASET_CARD, card)
    _write_preview(out)
    shutil.rmtree(parts)


def dataset_card(
    options: BuildOptions,
    counts: dict[str, int],
    manifest: dict[str, list],
    rejects: int,
    library: Any,
) -> dict[str, Any]:
    """The content of ``dataset.json``."""
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
        "occluder_library": library_fingerprint(library),
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


def _write_preview(out: Path) -> None:
    """A contact sheet of the first samples (``preview.png``)."""
    from .preview import dataset_rows, draw_sample_sheet

    rows = dataset_rows(out, PREVIEW_SAMPLES)
    draw_sample_sheet(rows, out / PREVIEW, title=f"{out.name}: first {len(rows)} samples")


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
