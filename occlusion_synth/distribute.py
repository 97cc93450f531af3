"""Where a build's work runs: ``local`` worker processes or ``ray`` tasks (``--distributor``).

A :class:`Distributor` does two things for :mod:`occlusion_synth.build`: it maps the landmark
step (``recipe.locate_job`` over batches of faces, :meth:`Distributor.detection`) and it writes
the shards still to do (:meth:`Distributor.write`). Both implementations write every shard
through the same :class:`ShardSet` (its tar under a temporary name, then the manifest part,
then the tar under its final name), so their output is byte-identical and ``--resume`` keeps
the same shards after either.

- :class:`LocalDistributor`: a :class:`WorkerPool` on this machine maps sample indices in order;
  this process writes the shards as their samples come back.
- :class:`RayDistributor`: one Ray task per shard, on a cluster (``--ray-address``) or on a
  Ray runtime started here with ``--workers`` CPUs. A task makes its shard's samples and writes
  the shard itself, so ``--out`` must be reachable from every node (a shared folder or a URL).
  Ray reruns the task of a worker that died; the driver only counts finished shards.

Ray is optional (``pip install 'occlusion-synth[ray]'``) and imported only by the latter.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import shards, storage
from .errors import UserError
from .recipe import FaceOptions, Mapper, locate_job

#: The values of ``--distributor``.
DISTRIBUTORS = ("local", "ray")
#: What to install for ``--distributor ray``.
RAY_HINT = "pip install 'occlusion-synth[ray]'"
#: Most landmark jobs in one Ray task.
_DETECT_CHUNK = 64


@dataclass(frozen=True)
class ShardTarget:
    """Where a build's shards (``shards_dir``) and their manifest parts (``parts_dir``) go."""

    shards_dir: storage.Location
    parts_dir: storage.Location

    def part(self, shard: str) -> storage.Location:
        return storage.join(self.parts_dir, part_name(shard))


def part_name(shard: str) -> str:
    """The manifest part file of a shard (``train-000000.tar`` -> ``train-000000.parquet``)."""
    return shard[: -len(".tar")] + ".parquet"


class ShardSet:
    """The open shards of a build (at most one per split), closed when they are full."""

    def __init__(self, target: ShardTarget, sizes: dict[str, int]) -> None:
        self.target = target
        self.sizes = sizes  # shard name -> planned number of samples
        self.open: dict[str, tuple[shards.ShardWriter, list[dict]]] = {}
        self.done = 0
        self.writing: storage.Location | None = None  # the file being written (for errors)

    def add(self, name: str, members: list[tuple[str, bytes]], row: dict) -> bool:
        """Add one sample to shard ``name``; True when that completed the shard."""
        self.writing = storage.join(self.target.shards_dir, name)
        if name not in self.open:
            self.open[name] = (shards.ShardWriter(self.writing), [])
        writer, rows = self.open[name]
        row["shard"] = name
        writer.add(members)
        rows.append(row)
        if writer.count < self.sizes[name]:
            return False
        # The part first, then the tar under its final name (uploaded whole to a URL):
        # --resume keeps a shard only when both exist.
        self.writing = self.target.part(name)
        shards.write_table(rows, self.writing)
        self.writing = storage.join(self.target.shards_dir, name)
        writer.close()
        del self.open[name]
        self.done += 1
        return True

    def abort(self) -> None:
        for writer, _ in self.open.values():
            try:
                writer.abort()
            except OSError:  # e.g. the disk is full: the temporary file goes on --resume
                pass
        self.open.clear()

    def name_failure(self, exc: BaseException) -> None:
        """Give a write error without a file name the name of the file being written."""
        if isinstance(exc, OSError) and not exc.filename and self.writing is not None:
            exc.filename = str(self.writing)


# --------------------------------------------------------------------------- local workers

#: The per-process context of pool workers (a ``FaceOptions`` or a ``Recipe``).
_CONTEXT: list[Any] = [None]


def _init_worker(context: Any, in_child: bool = True) -> None:
    if in_child:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    _CONTEXT[0] = context


def _locate(job: Any) -> Any:
    return locate_job(_CONTEXT[0], job)


def _encoded(i: int) -> Any:
    return _CONTEXT[0].encoded(int(i))  # plain ints: numpy ints would reach the manifest


class WorkerPool:
    """``workers`` processes sharing one context, or the calling process when ``workers`` is 1.

    Workers are forked (cheap) unless ``detects`` and this process has already started a
    MediaPipe graph, which a forked child would hang in: then they are spawned. Used as a
    context manager, it always ends its processes: joined after a clean exit, terminated after
    an error or Ctrl-C.
    """

    def __init__(self, workers: int, context: Any, detects: bool = False) -> None:
        self.workers = workers
        self.context = context
        self.detects = detects
        self._pool: Any = None

    def __enter__(self) -> WorkerPool:
        if self.workers > 1:
            from .landmarks import detector_started

            fork = "fork" in mp.get_all_start_methods()
            spawn = not fork or (self.detects and detector_started())
            ctx = mp.get_context("spawn" if spawn else "fork")
            self._pool = ctx.Pool(self.workers, _init_worker, (self.context,))
        else:
            _init_worker(self.context, in_child=False)
        return self

    def map(self, fn: Callable[[Any], Any], items: Any, per_worker: int) -> Iterator[Any]:
        """``fn`` over ``items`` in order; chunks of about ``len / (per_worker * workers)``."""
        if self._pool is None:
            return map(fn, items)
        chunk = max(1, min(16, len(items) // (per_worker * self.workers)))
        return self._pool.imap(fn, items, chunk)

    def __exit__(self, exc_type, exc, tb) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            if exc_type is None:
                pool.close()
            else:
                pool.terminate()
            pool.join()
        _CONTEXT[0] = None


# --------------------------------------------------------------------------- interface


class Distributor:
    """Runs a build's landmark step and writes its shards; a context manager around both."""

    name = ""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def __enter__(self) -> Distributor:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        pass

    def detection(self, faces: FaceOptions) -> Any:
        """A context manager yielding the ``Mapper`` of the landmark step."""
        raise NotImplementedError

    def write(self, plan: Any, target: ShardTarget, update: Callable[[int], None]) -> Iterator[str]:
        """Write the shards of ``plan.todo`` (a ``build.BuildPlan``); yield each shard's name
        once it is complete, call ``update(samples)`` as samples are made. An error or Ctrl-C
        leaves complete shards in place and no incomplete one under a final name."""
        raise NotImplementedError


class LocalDistributor(Distributor):
    """A process pool on this machine (``--workers``)."""

    name = "local"

    @contextmanager
    def detection(self, faces: FaceOptions) -> Iterator[Mapper]:
        with WorkerPool(self.workers, faces, detects=True) as pool:
            yield lambda jobs: pool.map(_locate, jobs, per_worker=4)

    def write(self, plan: Any, target: ShardTarget, update: Callable[[int], None]) -> Iterator[str]:
        sset = ShardSet(target, plan.sizes)
        try:
            with WorkerPool(self.workers if len(plan.todo) else 1, plan.recipe) as pool:
                for i, members, row in pool.map(_encoded, plan.todo, per_worker=8):
                    name = plan.shard_name(i)
                    done = sset.add(name, members, row)
                    update(1)
                    if done:
                        yield name
        except BaseException as exc:
            sset.abort()  # unfinished shards go; finished ones stay for --resume
            sset.name_failure(exc)
            raise


# --------------------------------------------------------------------------- ray


def import_ray(local: bool = True) -> Any:
    """The ``ray`` module, or a one-line ``UserError`` naming the extra to install. ``local``:
    for a runtime started here (its environment must be set before Ray is imported)."""
    _quiet_ray_env(local)
    try:
        import ray
    except ImportError:
        raise UserError(f"--distributor ray needs Ray: {RAY_HINT}") from None
    return ray


def _quiet_ray_env(local: bool) -> None:
    """No usage statistics; token authentication (Ray's default for a new cluster) without
    the warning that says so: for a runtime started here, and for a cluster when a token is
    at hand (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``). Ray reads
    the mode once, when imported; a mode the user set wins."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if "ray" in sys.modules or "RAY_AUTH_MODE" in os.environ:
        return
    token = os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token"
    if local or os.environ.get("RAY_AUTH_TOKEN") or Path(token).is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


#: Worker side: the recipe of the build being written (one per worker process, by object id).
_RECIPES: dict[str, Any] = {}


def _cached_recipe(box: list[Any]) -> Any:
    """The recipe behind ``box[0]`` (an ObjectRef, boxed so Ray does not resolve it), fetched
    once per worker process rather than once per task."""
    import ray

    key = box[0].hex()
    if key not in _RECIPES:
        _RECIPES.clear()
        _RECIPES[key] = ray.get(box[0])
    return _RECIPES[key]


def write_shard(recipe: Any, target: ShardTarget, name: str, indices: np.ndarray) -> int:
    """Make the samples ``indices`` (ascending) of shard ``name`` and write it whole; return the
    number of samples. The body of one Ray task."""
    sset = ShardSet(target, {name: len(indices)})
    try:
        for i in indices:
            _, members, row = recipe.encoded(int(i))
            sset.add(name, members, row)
    except BaseException as exc:
        sset.abort()
        sset.name_failure(exc)
        raise
    return len(indices)


def _at(cwd: str) -> None:
    """Work in the driver's folder, where relative --faces and --out paths start (a node of
    a cluster sees it at the same path on a shared file system)."""
    if os.getcwd() != cwd and os.path.isdir(cwd):
        os.chdir(cwd)


def _ray_write_shard(
    cwd: str, box: list[Any], target: ShardTarget, name: str, indices: np.ndarray
) -> int:
    _at(cwd)
    return write_shard(_cached_recipe(box), target, name, indices)


def _ray_locate(cwd: str, faces: FaceOptions, jobs: list[Any]) -> list[Any]:
    _at(cwd)
    return [locate_job(faces, job) for job in jobs]


def shard_jobs(plan: Any) -> list[tuple[str, np.ndarray]]:
    """``(shard name, sample indices)`` of every shard in ``plan.todo``, in plan order."""
    todo = np.asarray(plan.todo, np.int64)
    if not len(todo):
        return []
    ids = plan.splits[todo].astype(np.int64) + len(shards.SPLITS) * plan.shard_of[todo].astype(
        np.int64
    )
    order = np.argsort(ids, kind="stable")
    ids, todo = ids[order], todo[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    groups = np.split(todo, starts[1:])
    jobs = [(plan.shard_name(int(g[0])), g) for g in groups]
    position = {name: k for k, name in enumerate(plan.sizes)}
    return sorted(jobs, key=lambda job: position[job[0]])


class RayDistributor(Distributor):
    """One Ray task per shard (and per batch of faces to detect).

    ``address``: an existing cluster (``ray start --head`` prints it; ``auto`` finds a local
    one); None: ``$RAY_ADDRESS`` when set (as ``ray.init`` does), else a private runtime with
    ``workers`` CPUs, shut down at the end. A runtime this process is already connected to
    (``ray.init`` by the caller) is used as it is.
    """

    name = "ray"

    def __init__(self, workers: int, address: str | None = None) -> None:
        super().__init__(workers)
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.label = "--ray-address" if address else "$RAY_ADDRESS"
        self.ray = import_ray(local=self.address is None)
        self._started = False

    def __enter__(self) -> RayDistributor:
        ray = self.ray
        if self.address is not None:
            _check_reachable(self.address, self.label)
        if ray.is_initialized():
            return self
        kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
        if self.address is None:
            kwargs.update(num_cpus=self.workers, include_dashboard=False)
        try:
            # "local": a new runtime even where ray start left a cluster (or its traces)
            ray.init(address=self.address or "local", **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"{self.label} {self.address}" if self.address else "a local Ray runtime"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot start {where}: {first}") from None
        self._started = True
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._started:
            self._started = False
            self.ray.shutdown()

    @contextmanager
    def detection(self, faces: FaceOptions) -> Iterator[Mapper]:
        ray = self.ray
        task = ray.remote(num_cpus=1)(_ray_locate)

        def mapper(jobs: list[Any]) -> Iterator[Any]:
            if not jobs:
                return
            size = max(1, min(_DETECT_CHUNK, -(-len(jobs) // (4 * self.workers))))
            cwd = os.getcwd()
            refs = [task.remote(cwd, faces, jobs[k : k + size]) for k in range(0, len(jobs), size)]
            try:
                for ref in refs:
                    yield from ray.get(ref)
            except BaseException:
                _cancel(ray, refs)
                raise

        yield mapper

    def write(self, plan: Any, target: ShardTarget, update: Callable[[int], None]) -> Iterator[str]:
        ray = self.ray
        jobs = shard_jobs(plan)
        if not jobs:
            return
        task = ray.remote(num_cpus=1)(_ray_write_shard)
        box = [ray.put(plan.recipe)]
        cwd = os.getcwd()
        pending = {task.remote(cwd, box, target, name, idx): name for name, idx in jobs}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    update(ray.get(ref))
                    yield pending.pop(ref)
        except BaseException:
            _cancel(ray, list(pending))
            raise


def _check_reachable(address: str, label: str, timeout: float = 10.0) -> None:
    """A one-line ``UserError`` when nothing answers at a ``host:port`` or ``ray://host:port``
    address (Ray itself retries for minutes); other forms (``auto``) are left to Ray."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or not host:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise UserError(
            f"{label} {address}: no Ray cluster answers there ({exc.strerror or exc}); "
            "start one with ray start --head, or check the address"
        ) from None


def _cancel(ray: Any, refs: list[Any]) -> None:
    """Stop tasks still running (their shards stay incomplete: --resume redoes them)."""
    for ref in refs:
        try:
            ray.cancel(ref, force=True)
        except Exception:  # already finished, or the runtime is gone
            pass


def make_distributor(name: str, workers: int, ray_address: str | None = None) -> Distributor:
    """The distributor named by ``--distributor`` (a ``UserError`` when Ray is missing)."""
    if name == "local":
        if ray_address is not None:
            raise UserError("--ray-address needs --distributor ray")
        return LocalDistributor(workers)
    if name == "ray":
        return RayDistributor(workers, ray_address)
    raise UserError(f"--distributor must be one of {', '.join(DISTRIBUTORS)}, got {name!r}")
