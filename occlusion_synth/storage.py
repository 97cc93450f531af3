"""Where a dataset lives: a local folder or an fsspec URL (``s3://``, ``gs://``...), one interface.

A *location* is a ``Path`` (local) or a ``str`` holding a URL. ``location()`` turns what a user
typed into one: ``file://`` URLs and plain paths become ``Path``s, any other ``scheme://`` stays
a URL string, handled by fsspec (``s3://`` needs ``pip install 'occlusion-synth[s3]'``,
``gs://`` ``[gcs]``). Local paths never import fsspec.

Writes are whole: ``put_file``/``put_bytes`` make an object appear under its final name only
complete. Locally that is a temporary name and ``os.replace``; on object stores a PUT (also a
multipart one) is atomic, so the finished local file is uploaded straight to its name; on
other fsspec file systems it is uploaded under a temporary name, then moved.

Credentials and endpoints are the file system's own: for S3, the usual ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``AWS_DEFAULT_REGION``, and ``AWS_ENDPOINT_URL``
(or fsspec's ``FSSPEC_S3_ENDPOINT_URL``) for an S3-compatible server (MinIO, Ceph, moto).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlparse

from .errors import UserError

#: A local folder or file (``Path``) or an fsspec URL (``str``).
Location = Path | str

#: Suffix of a file being written (locally, or on file systems without atomic uploads).
TMP_SUFFIX = ".tmp"
#: fsspec protocols whose uploads appear atomically under their name (object stores).
ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})
#: The extra that provides each protocol's file system.
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}
_URL = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://")


def location(value: str | os.PathLike[str]) -> Location:
    """What a user typed as a location: a ``Path``, or the URL (without a trailing ``/``)."""
    if isinstance(value, Path):
        return value
    text = os.fspath(value)
    m = _URL.match(text)
    if not m:
        return Path(text)
    if m["scheme"].lower() == "file":
        return Path(unquote(urlparse(text).path))
    rest = text[m.end() :].rstrip("/")
    if not rest:
        raise UserError(f"{text}: the URL names no bucket or folder")
    return f"{m['scheme'].lower()}://{rest}"


def is_remote(loc: Location) -> bool:
    """Whether ``loc`` is an fsspec URL (not a local path)."""
    return isinstance(loc, str) and bool(_URL.match(loc))


def join(loc: Location, *parts: str) -> Location:
    """``loc / part / ...``, for either kind of location."""
    if is_remote(loc):
        return "/".join([str(loc).rstrip("/"), *parts])
    return Path(loc).joinpath(*parts)


def name(loc: Location) -> str:
    """The last part of ``loc`` (a file or folder name)."""
    return str(loc).rstrip("/").rsplit("/", 1)[-1] if is_remote(loc) else Path(loc).name


def protocol(loc: Location) -> str:
    """``"s3"`` for ``s3://b/x``; ``"file"`` for a local path."""
    m = _URL.match(str(loc)) if is_remote(loc) else None
    return m["scheme"] if m else "file"


def filesystem(loc: str) -> tuple[Any, str]:
    """The fsspec file system of a URL and the path within it; a one-line ``UserError`` when
    the package for the protocol is not installed."""
    scheme = protocol(loc)
    extra = EXTRAS.get(scheme)
    hint = f"pip install 'occlusion-synth[{extra}]'" if extra else "install its fsspec backend"
    try:
        import fsspec
    except ImportError:
        raise UserError(f"{loc}: {scheme}:// locations need fsspec ({hint})") from None
    try:
        return fsspec.core.url_to_fs(loc)
    except ImportError as exc:
        raise UserError(f"{loc}: {scheme}:// locations need a package ({hint}): {exc}") from None
    except ValueError as exc:  # an unknown protocol
        raise UserError(f"{loc}: {exc}") from None


# --------------------------------------------------------------------------- queries


def exists(loc: Location) -> bool:
    """Whether a file or a (non-empty, on object stores) folder is at ``loc``."""
    if not is_remote(loc):
        return os.path.exists(loc)
    fs, path = filesystem(loc)
    return bool(fs.exists(path))


def isdir(loc: Location) -> bool:
    """Whether ``loc`` is a folder (on object stores: a prefix holding objects, or a bucket)."""
    if not is_remote(loc):
        return os.path.isdir(loc)
    fs, path = filesystem(loc)
    return bool(fs.isdir(path))


def isfile(loc: Location) -> bool:
    """Whether ``loc`` is a regular file (an object)."""
    if not is_remote(loc):
        return os.path.isfile(loc)
    fs, path = filesystem(loc)
    return bool(fs.isfile(path))


def size(loc: Location) -> int:
    """Size of a file in bytes (``OSError`` when it is missing)."""
    if not is_remote(loc):
        return os.stat(loc).st_size
    fs, path = filesystem(loc)
    return int(fs.size(path))


def listdir(loc: Location) -> list[str]:
    """Sorted names of the entries of a folder; empty when it does not exist.

    Remote listings are fresh (never fsspec's cached ones): another process may have
    written there since (a resumed build, a build seen from outside).
    """
    if not is_remote(loc):
        return sorted(os.listdir(loc)) if os.path.isdir(loc) else []
    fs, path = filesystem(loc)
    fs.invalidate_cache(path)
    try:
        entries = fs.ls(path, detail=False)
    except FileNotFoundError:
        return []
    names = {e.rstrip("/").rsplit("/", 1)[-1] for e in entries}
    names.discard("")
    if names == {name(loc)} and fs.isfile(path):  # ``ls`` of a file lists the file
        return []
    return sorted(names)


# --------------------------------------------------------------------------- reading


def read_bytes(loc: Location) -> bytes:
    """The whole content of a file."""
    if not is_remote(loc):
        return Path(loc).read_bytes()
    fs, path = filesystem(loc)
    return bytes(fs.cat_file(path))


@contextmanager
def open_read(loc: Location, block_size: int = 8 * 1024 * 1024) -> Iterator[IO[bytes]]:
    """A binary file object for reading ``loc`` (remote: buffered, read ahead sequentially)."""
    if not is_remote(loc):
        with open(loc, "rb") as fh:
            yield fh
        return
    fs, path = filesystem(loc)
    with fs.open(path, "rb", block_size=block_size, cache_type="readahead") as fh:
        yield fh


# --------------------------------------------------------------------------- writing


def makedirs(loc: Location) -> None:
    """Create a folder and its parents (a no-op on object stores, which have none)."""
    if not is_remote(loc):
        Path(loc).mkdir(parents=True, exist_ok=True)
        return
    fs, path = filesystem(loc)
    if protocol(loc) not in ATOMIC_PUT:
        fs.makedirs(path, exist_ok=True)


def put_file(src: str | os.PathLike[str], loc: Location) -> None:
    """Copy the finished local file ``src`` to ``loc``, whole: nothing incomplete ever has the
    name ``loc``. A local ``src`` on the same file system as ``loc`` is moved, not copied."""
    if not is_remote(loc):
        dest = Path(loc)
        tmp = dest.with_name(dest.name + TMP_SUFFIX)
        try:
            shutil.copyfile(src, tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            exc.filename = exc.filename or str(dest)
            raise
        os.replace(tmp, dest)
        return
    fs, path = filesystem(loc)
    if protocol(loc) in ATOMIC_PUT:
        fs.put_file(os.fspath(src), path)
    else:
        fs.put_file(os.fspath(src), path + TMP_SUFFIX)
        fs.mv(path + TMP_SUFFIX, path)
    fs.invalidate_cache(path)


def put_bytes(data: bytes, loc: Location) -> None:
    """Write ``data`` to ``loc`` whole (locally: temporary name, fsync, ``os.replace``)."""
    if not is_remote(loc):
        path = Path(loc)
        tmp = path.with_name(path.name + TMP_SUFFIX)
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            exc.filename = exc.filename or str(path)  # say which file (a full disk)
            raise
        os.replace(tmp, path)
        return
    with staged_file(suffix="." + name(loc).rsplit(".", 1)[-1]) as tmp:
        tmp.write_bytes(data)
        put_file(tmp, loc)


def remove(loc: Location) -> None:
    """Delete a file; nothing happens when it is missing."""
    if not is_remote(loc):
        Path(loc).unlink(missing_ok=True)
        return
    fs, path = filesystem(loc)
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        pass
    fs.invalidate_cache(path)


def remove_tree(loc: Location) -> None:
    """Delete a file, or a folder and everything in it; nothing happens when it is missing."""
    if not is_remote(loc):
        path = Path(loc)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        return
    fs, path = filesystem(loc)
    try:
        fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass
    fs.invalidate_cache(path)


# --------------------------------------------------------------------------- local staging


def staging_root() -> Path:
    """The local folder where files bound for a URL are written before their upload
    (``OCCSYNTH_STAGING``, else the system's temporary folder)."""
    root = Path(os.environ.get("OCCSYNTH_STAGING") or tempfile.gettempdir()) / "occsynth-staging"
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextmanager
def staged_file(suffix: str = "") -> Iterator[Path]:
    """A fresh local temporary file (removed afterwards) to write before an upload."""
    fd, tmp = tempfile.mkstemp(suffix=suffix, dir=staging_root())
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


def local_shadow(loc: str) -> Path:
    """A local folder standing for the URL ``loc`` (its build lock lives there)."""
    import hashlib

    digest = hashlib.sha256(loc.encode("utf-8")).hexdigest()[:16]
    folder = staging_root() / "remote" / digest
    folder.mkdir(parents=True, exist_ok=True)
    return folder
