"""Sample ``i`` of a dataset: the one function that ``occsynth build`` and ``occsynth preview``
share, so that a preview shows exactly the samples a build with the same options writes.

A :class:`Recipe` fixes everything a sample depends on: the face pool (the usable faces in
seeded order, with their landmarks), the occluder library, the sample options and the seed.
``recipe.make(i)`` then draws sample ``i`` from ``numpy.random.default_rng([seed, i])`` only.

:func:`resolve_faces` builds the face pool: sources are tried in a seeded order
(``splits.face_order``); landmarks come from the CelebA annotation, the landmark cache or
detection (in the caller's worker processes); unusable files become ``(source, reason)``
rejects and the next source in the order takes their place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import shards
from .errors import UserError
from .faces import (
    DEFAULT_MAX_OUTSIDE,
    Discovery,
    FaceSource,
    annotated_points,
    check_face,
    discover,
    load_aligned,
    source_problem,
)
from .imageio import Reject
from .landmarks import SourcePoints, get_detector
from .sample import category_stratum, make_sample
from .splits import face_order, split_of

#: ``mapper(jobs)``: :func:`locate_job` over ``jobs``, in order (in worker processes or not).
Mapper = Callable[[list[Any]], Iterator[Any]]
#: How many rejects a "no usable face" message names.
_NAMED_REJECTS = 3


@dataclass(frozen=True)
class FaceOptions:
    """How faces are found and aligned (the options ``build`` and ``preview`` share)."""

    faces: str
    landmarks: str = "auto"  # provider: auto | celeba | mediapipe
    max_outside: float = DEFAULT_MAX_OUTSIDE
    face_landmarker_task: str | None = None  # a MediaPipe Tasks model instead of Face Mesh
    #: None: CelebA's partition (or a demo face's own split) wins, else 0.8/0.1/0.1 by hash.
    #: Given: these fractions for every face, overriding any partition.
    split: tuple[float, float, float] | None = None

    def detector_name(self) -> str:
        """The name the landmark cache files detections under."""
        from .landmarks import FaceMeshDetector

        if self.face_landmarker_task is None:
            return FaceMeshDetector.name
        return f"mediapipe-task:{_resolved(self.face_landmarker_task)}"

    def locate(self, src: FaceSource, points: SourcePoints | None = None) -> Any:
        """Load one face aligned (``Reject`` when unusable), detecting unless ``points``."""
        return load_aligned(src, **self._load_args(points))

    def check(self, src: FaceSource, points: SourcePoints | None = None) -> SourcePoints:
        """The points ``locate`` would use, after the same checks, without aligning the face."""
        return check_face(src, **self._load_args(points))

    def _load_args(self, points: SourcePoints | None) -> dict[str, Any]:
        detector = None
        if points is None and self.face_landmarker_task is not None:
            detector = get_detector(self.face_landmarker_task)
        return {
            "provider": self.landmarks,
            "detector": detector,
            "points": points,
            "max_outside": self.max_outside,
        }


def _resolved(path: str) -> str:
    from pathlib import Path

    return str(Path(path).expanduser().resolve())


@dataclass(frozen=True)
class PoolFace:
    """A usable face: its source, the source-pixel landmarks found for it, and its split."""

    source: FaceSource
    points: SourcePoints
    split: str


class NoUsableFace(UserError):
    """Every source was rejected; ``rejects`` says why, one ``(source, reason)`` each."""

    def __init__(self, spec: str, rejects: list[tuple[str, str]]) -> None:
        named = "; ".join(f"{s}: {r}" for s, r in rejects[:_NAMED_REJECTS])
        more = len(rejects) - _NAMED_REJECTS
        tail = f"; and {more} more" if more > 0 else ""
        super().__init__(f"--faces {spec}: no usable face ({len(rejects)} rejected: {named}{tail})")
        self.rejects = rejects


def locate_job(options: FaceOptions, job: tuple[FaceSource, SourcePoints | None]) -> Any:
    """Stage-1 work for one source: ``(points, None)`` or ``(None, reason)``."""
    src, hit = job
    try:
        return options.check(src, hit), None
    except Reject as exc:
        return None, exc.reason


def resolve_faces(
    options: FaceOptions,
    want: int,
    seed: int,
    mapper: Mapper,
    cache: Any = None,
    progress: Any = None,
    found: Discovery | None = None,
) -> tuple[list[PoolFace], list[tuple[str, str]]]:
    """The first ``want`` usable faces in seeded order, and the ``(source, reason)`` rejects.

    ``mapper(jobs)`` runs :func:`locate_job` over ``(source, cached points)`` jobs;
    ``cache`` (a ``LandmarkCache``) is read here, in the caller, and updated with new
    detections; ``progress`` (a ``progress.Progress``) counts usable faces. Raises
    :class:`NoUsableFace` when no source is usable. ``found`` is ``faces.discover(faces)``
    when the caller has it already. Entries that are not readable images (``found.skipped``)
    and sources with unusable CelebA rows are rejected without being read.
    """
    found = found if found is not None else discover(options.faces)
    sources = found.sources
    order = face_order(len(sources), seed)
    want = min(want, len(sources))
    if progress is not None:
        progress.reset(want)
    detector = options.detector_name()
    accepted: list[PoolFace] = []
    rejects: list[tuple[str, str]] = list(found.skipped)
    split_given = options.split is not None
    pos = 0
    while len(accepted) < want and pos < len(sources):
        batch = [sources[j] for j in order[pos : pos + want - len(accepted)]]
        pos += len(batch)
        jobs = []
        for src in batch:
            problem = source_problem(src, options.landmarks, split_given)
            if problem is not None:
                rejects.append((src.id, problem))
                continue
            hit = None
            if cache is not None and src.path is not None:
                if annotated_points(src, options.landmarks) is None:
                    hit = cache.get(src.path, detector)
            jobs.append((src, hit))
        for (src, hit), (points, reason) in zip(jobs, mapper(jobs), strict=True):
            if reason is not None:
                rejects.append((src.id, reason))
                continue
            if cache is not None and hit is None and points.provider != "celeba":
                cache.put(src.path, detector, points)
            split = split_of(src.id, src.split, options.split)
            accepted.append(PoolFace(source=src, points=points, split=split))
            if progress is not None:
                progress.update()
    if not accepted:
        raise NoUsableFace(options.faces, rejects)
    return accepted, rejects


def sample_key(i: int) -> str:
    """The key of sample ``i`` (no dots; unique in the dataset)."""
    return f"{i:08d}"


@dataclass(frozen=True)
class Made:
    """Sample ``index`` as made by a recipe, with the face it was made from."""

    index: int
    sample: shards.Sample
    entry: PoolFace
    landmarks: Any  # canonical.Landmarks of the aligned face


@dataclass(frozen=True)
class Recipe:
    """Everything sample ``i`` depends on; ``make(i)`` is the dataset's only sample maker."""

    pool: list[PoolFace]
    library: Any  # occluders.library.OccluderLibrary
    sample_options: Any  # sample.SampleOptions
    seed: int
    faces: FaceOptions
    make_fn: Callable[..., shards.Sample] = make_sample

    def make(self, i: int) -> Made:
        """Sample ``i``: face ``pool[i % len(pool)]``, drawn from ``default_rng([seed, i])``."""
        entry = self.pool[i % len(self.pool)]
        face = self.faces.locate(entry.source, entry.points)
        rng = np.random.default_rng([self.seed, i])
        key = sample_key(i)
        sample = self.make_fn(
            face,
            self.library,
            rng,
            self.sample_options,
            key=key,
            stratum=category_stratum(self.seed, i),
        )
        sample.meta.update(
            key=key, index=i, split=entry.split, seed=self.seed, source_id=entry.source.id
        )
        return Made(index=i, sample=sample, entry=entry, landmarks=face.landmarks)

    def encoded(self, i: int) -> tuple[int, list[tuple[str, bytes]], dict[str, Any]]:
        """Sample ``i`` as shard members and its manifest row (what build workers return)."""
        made = self.make(i)
        s = made.sample
        members = shards.encode_sample(s.key, s.input, s.mask, s.target, s.meta, s.object_mask)
        return i, members, manifest_row(made, self.seed)


def manifest_row(made: Made, seed: int) -> dict[str, Any]:
    """One manifest row (the ``shard`` column is filled in by the writer)."""
    meta = made.sample.meta
    occluders = [o for o in meta.get("occluders", []) if isinstance(o, dict)]
    cats = meta.get("categories")
    if not isinstance(cats, str):
        cats = "+".join(str(o.get("category", "")) for o in occluders)
    row: dict[str, Any] = {
        "key": made.sample.key,
        "index": made.index,
        "split": made.entry.split,
        "shard": "",
        "source_id": made.entry.source.id,
        "categories": cats,
        "occluders": "+".join(str(o.get("name", "")) for o in occluders),
        "coverage": shards.mask_coverage(made.sample.mask),
        "object_coverage": shards.mask_coverage(made.sample.occluder_mask),
        "seed": seed,
        "landmark_provider": made.landmarks.provider,
    }
    row.update(made.landmarks.flat())
    return row
