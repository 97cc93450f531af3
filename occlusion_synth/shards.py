"""The shard format both halves share: WebDataset tars, the manifest and the dataset card.

Layout of a built dataset (the README, "Building a dataset")::

    OUT/shards/<split>-<000000>.tar   four members per sample, sharing a key with no dots:
                                      <key>.input.png  <key>.mask.png  <key>.target.png
                                      <key>.json; builds now add a fifth, <key>.object.png
                                      (the occluders' own pixels; readers accept both)
    OUT/manifest.parquet              one row per sample
    OUT/dataset.json                  the dataset card
    OUT/rejects.csv                   inputs skipped, with reasons

Everything written here is deterministic: tar members carry fixed metadata, PNGs are
encoded with fixed options and no metadata chunks, JSON has sorted keys. Files appear
atomically (written under a temporary name, then ``os.replace``d; for an fsspec URL, written
locally, then uploaded whole: see :mod:`occlusion_synth.storage`).

``OUT`` (and each path below it) is a :data:`storage.Location`: a local folder or a URL.

Reading is safe: members are read into memory (never extracted), and a member that is not
a regular file, has an absolute path or ``..``, or is larger than a limit is an error.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import stat
import struct
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from . import pngwrite, storage
from .storage import Location

#: Member suffixes every sample has, in the order they are written.
MEMBERS: tuple[str, ...] = ("input.png", "mask.png", "target.png", "json")
#: Members a sample may have besides: ``object.png``, the pixels the occluders themselves
#: cover (their alpha >= 0.5; a subset of ``mask.png``, which also holds every pixel their
#: shadows, soft edges and re-shooting changed). What a hand-made occluder mask of a real
#: photo marks, so the occlusion segmenter learns it (``segment.target``).
OPTIONAL_MEMBERS: tuple[str, ...] = ("object.png",)
KNOWN_MEMBERS: tuple[str, ...] = MEMBERS + OPTIONAL_MEMBERS
SPLITS: tuple[str, ...] = ("train", "val", "test")
SHARDS_DIR = "shards"
MANIFEST = "manifest.parquet"
DATASET_CARD = "dataset.json"
REJECTS = "rejects.csv"
TMP_SUFFIX = storage.TMP_SUFFIX
#: zlib level of every PNG: fixed so that the bytes are reproducible; 1 is fast and only a
#: few percent larger than the default on photographs.
PNG_COMPRESS_LEVEL = 1
#: Largest member the reader accepts (a 256x256 RGB PNG is at most ~200 KB).
MAX_MEMBER_BYTES = 16 * 1024 * 1024

#: PNG colour type (IHDR) of each image member: 2 = RGB, 0 = greyscale.
MEMBER_COLOUR_TYPES: dict[str, int] = {
    "input.png": 2,
    "mask.png": 0,
    "object.png": 0,
    "target.png": 2,
}
#: Side of every image in a shard (the canonical frame).
FRAME = 256
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_NAMES = {0: "greyscale", 2: "RGB"}
_MODE_OF_COLOUR_TYPE = {0: "L", 2: "RGB"}
_COLOUR_TYPE_OF_MODE = {"L": 0, "RGB": 2}

_SHARD_RE = re.compile(r"^(?P<split>[a-z]+)-(?P<number>\d{6})\.tar$")


class ShardError(Exception):
    """A shard that cannot be read safely or does not follow the format."""


@dataclass
class Sample:
    """One training triple: uint8 arrays (input/target HxWx3, mask HxW, 0/255) and metadata.

    What the compositor makes and what the reader decodes (``shard`` names the shard a decoded
    sample came from; empty for a freshly made one). ``object_mask`` (HxW, 0/255, within
    ``mask``): the occluders' own pixels, without their shadows; None in older shards.
    """

    key: str
    input: np.ndarray
    mask: np.ndarray
    target: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    shard: str = ""
    object_mask: np.ndarray | None = None

    @property
    def occluder_mask(self) -> np.ndarray:
        """``object_mask`` where the shard has it, else ``mask`` (for older shards)."""
        return self.mask if self.object_mask is None else self.object_mask


# --------------------------------------------------------------------------- encoding


def shard_name(split: str, number: int) -> str:
    """File name of shard ``number`` of ``split``: ``train-000003.tar``."""
    return f"{split}-{number:06d}.tar"


def parse_shard_name(name: str) -> tuple[str, int] | None:
    """``("train", 3)`` for ``train-000003.tar``; None for any other name."""
    m = _SHARD_RE.match(name)
    return (m["split"], int(m["number"])) if m else None


def encode_png(array: np.ndarray) -> bytes:
    """Lossless PNG of a uint8 array (HxW -> L, HxWx3 -> RGB) with fixed encoder options
    (``pngwrite``: the Up filter on every row, one IDAT at zlib ``PNG_COMPRESS_LEVEL``)."""
    return pngwrite.encode(array, PNG_COMPRESS_LEVEL)


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays, tuples, sets and paths made plain JSON values.

    Non-finite floats become ``None`` (JSON has no NaN). The one JSON conversion of the
    project: sample metadata, shard members and the dataset card all go through it.
    """
    t = type(obj)  # the plain types first, by exact type (most of a sample's metadata)
    if t is str or t is int or t is bool or obj is None:
        return obj
    if t is float:
        return obj if math.isfinite(obj) else None
    if t is dict:
        return {k if type(k) is str else str(k): jsonable(v) for k, v in obj.items()}
    if t is list or t is tuple:
        return [jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(jsonable(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def mask_coverage(mask: np.ndarray) -> float:
    """The fraction of the frame a mask covers (its non-zero pixels): the ``coverage`` field."""
    return float(np.count_nonzero(mask)) / mask.size


def encode_json(obj: Any) -> bytes:
    """Compact UTF-8 JSON with sorted keys (numpy scalars and arrays become plain values)."""
    text = json.dumps(jsonable(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8")


def encode_sample(
    key: str,
    input: np.ndarray,
    mask: np.ndarray,
    target: np.ndarray,
    meta: Mapping[str, Any],
    object_mask: np.ndarray | None = None,
) -> list[tuple[str, bytes]]:
    """The ``(member name, bytes)`` pairs of one sample, in the order they are written
    (``object.png`` after ``mask.png`` when ``object_mask`` is given)."""
    if "." in key or "/" in key or not key:
        raise ValueError(f"sample keys must be non-empty, without dots or slashes: {key!r}")
    members = [(f"{key}.input.png", encode_png(input)), (f"{key}.mask.png", encode_png(mask))]
    if object_mask is not None:
        members.append((f"{key}.object.png", encode_png(object_mask)))
    members += [
        (f"{key}.target.png", encode_png(target)),
        (f"{key}.json", encode_json(dict(meta))),
    ]
    return members


# --------------------------------------------------------------------------- writing


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


class ShardWriter:
    """Writes one tar shard under a temporary name; ``close()`` moves it into place.

    For a URL, the temporary file is local (``storage.staging_root()``) and ``close()``
    uploads it whole under its final name. Used as a context manager, an exception aborts the
    shard (the temporary file is removed), so a shard either exists complete under its final
    name or not at all.
    """

    def __init__(self, path: Location) -> None:
        self.path = storage.location(path)
        if storage.is_remote(self.path):
            fd, tmp = tempfile.mkstemp(suffix=TMP_SUFFIX, dir=storage.staging_root())
            os.close(fd)
            self.tmp_path = Path(tmp)
        else:
            self.tmp_path = self.path.with_name(self.path.name + TMP_SUFFIX)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tar = tarfile.open(self.tmp_path, "w", format=tarfile.USTAR_FORMAT)
        self.count = 0

    def add(self, members: Iterable[tuple[str, bytes]]) -> None:
        """Append the members of one sample (see ``encode_sample``)."""
        try:
            for name, data in members:
                self._tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))
        except OSError as exc:
            exc.filename = exc.filename or str(self.tmp_path)  # say which file (a full disk)
            raise
        self.count += 1

    def close(self) -> None:
        """Finish the tar, flush it to disk and move (or upload) it to its final name."""
        remote = storage.is_remote(self.path)
        try:
            self._tar.close()
            if not remote:
                with open(self.tmp_path, "rb+") as fh:
                    os.fsync(fh.fileno())
        except OSError as exc:
            exc.filename = exc.filename or str(self.tmp_path)
            raise
        if remote:
            try:
                storage.put_file(self.tmp_path, self.path)
            finally:
                self.tmp_path.unlink(missing_ok=True)
        else:
            os.replace(self.tmp_path, self.path)

    def abort(self) -> None:
        """Drop the partial shard (closing it may fail again on a full disk: ignored)."""
        try:
            self._tar.close()
        except OSError:
            pass
        finally:
            self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_bytes_atomic(path: Location, data: bytes) -> None:
    """Write ``data`` to ``path`` whole (``storage.put_bytes``: a temporary file and
    ``os.replace`` locally; one whole upload for a URL)."""
    storage.put_bytes(data, storage.location(path))


def write_json_atomic(path: Location, obj: Any) -> None:
    """Pretty, sorted, deterministic JSON written atomically (the dataset card)."""
    text = json.dumps(jsonable(obj), sort_keys=True, indent=2, allow_nan=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def write_table(rows: list[dict[str, Any]] | Any, path: Location) -> None:
    """Write manifest rows (dicts with the same keys, or a pyarrow Table) to Parquet, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(rows, pa.Table):
        table = rows
    else:
        table = pa.Table.from_pylist(rows) if rows else pa.table({})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    write_bytes_atomic(path, buf.getvalue())


def read_table(path: Location) -> Any:
    """A Parquet file (a manifest, a build's part file) as a pyarrow Table."""
    import pyarrow.parquet as pq

    if storage.is_remote(path):
        return pq.read_table(io.BytesIO(storage.read_bytes(path)))
    return pq.read_table(path)


def read_manifest(root: Location):
    """``OUT/manifest.parquet`` as a pandas DataFrame."""
    path = storage.join(storage.location(root), MANIFEST)
    if not storage.isfile(path):
        raise FileNotFoundError(f"no {MANIFEST} in {root}")
    return read_table(path).to_pandas()


def load_manifest(root: Location, columns: Iterable[str] = ()) -> Any:
    """The manifest for a command that needs it: any problem (missing, not a regular file,
    not Parquet, lacking one of ``columns``) is a ``ShardError`` in one line."""
    path = storage.join(storage.location(root), MANIFEST)
    check_regular(path)
    try:
        manifest = read_manifest(root)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds; all mean "unreadable"
        raise ShardError(f"{path} cannot be read ({type(exc).__name__}: {exc})") from None
    lacking = sorted(set(columns) - set(manifest.columns))
    if lacking:
        raise ShardError(f"{path} lacks column(s) {', '.join(lacking)}")
    return manifest


def read_dataset_card(root: Location) -> dict[str, Any]:
    """``OUT/dataset.json`` as a dict (``ShardError`` when it is not a regular file holding a
    JSON object; ``OSError`` when it is missing)."""
    path = storage.join(storage.location(root), DATASET_CARD)
    if storage.exists(path):
        check_regular(path)  # a FIFO would block the reader forever
    try:
        card = json.loads(storage.read_bytes(path).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ShardError(f"{path} is not JSON ({exc})") from None
    if not isinstance(card, dict):
        raise ShardError(f"{path} is not a JSON object")
    return card


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages whose behaviour shapes the bytes of a build."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for dist in ("occlusion-synth", "numpy", "pillow", "opencv-contrib-python", "mediapipe"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


# --------------------------------------------------------------------------- reading


def check_member(member: tarfile.TarInfo, max_bytes: int) -> None:
    """Refuse an unsafe member: not a regular file, an absolute path, ``..``, over ``max_bytes``."""
    name = member.name
    if not member.isreg():
        raise ShardError(f"member {name!r} is not a regular file (links and devices refused)")
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("\\") or re.match(r"^[A-Za-z]:", name):
        raise ShardError(f"member {name!r} has an absolute path")
    if ".." in path.parts:
        raise ShardError(f"member {name!r} contains '..'")
    if member.size > max_bytes:
        raise ShardError(f"member {name!r} is {member.size} bytes (limit {max_bytes})")


def split_member_name(name: str) -> tuple[str, str]:
    """``("000012", "input.png")`` for ``000012.input.png`` (WebDataset's key/extension rule)."""
    base = PurePosixPath(name).name
    key, _, ext = base.partition(".")
    prefix = str(PurePosixPath(name).parent)
    return (key if prefix == "." else f"{prefix}/{key}"), ext


@contextmanager
def open_tar(path: Location) -> Iterator[tarfile.TarFile]:
    """A shard opened for reading, local or at a URL (streamed in large sequential blocks,
    never downloaded whole). Call ``check_regular`` first."""
    if storage.is_remote(path):
        with storage.open_read(path) as fh, tarfile.open(fileobj=fh, mode="r:") as tar:
            yield tar
    else:
        with tarfile.open(path, "r:") as tar:
            yield tar


def read_shard(
    path: Location, max_member_bytes: int = MAX_MEMBER_BYTES
) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Yield ``(key, {extension: bytes})`` for each group of consecutive members of a shard.

    Nothing is written to disk (a shard at a URL is streamed). Raises ``ShardError`` for an
    unsafe member, a truncated or corrupt tar, or a key that appears in two separate groups.
    """
    seen: set[str] = set()
    key: str | None = None
    group: dict[str, bytes] = {}
    check_regular(path)
    try:
        with open_tar(path) as tar:
            for member in tar:
                check_member(member, max_member_bytes)
                k, ext = split_member_name(member.name)
                fh = tar.extractfile(member)
                data = fh.read() if fh is not None else b""
                if len(data) != member.size:
                    raise ShardError(f"member {member.name!r} is truncated")
                if k != key:
                    if key is not None:
                        yield key, group
                    if k in seen:
                        raise ShardError(f"key {k!r} appears twice")
                    seen.add(k)
                    key, group = k, {}
                if ext in group:
                    raise ShardError(f"member {member.name!r} appears twice")
                group[ext] = data
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ShardError(f"unreadable tar ({exc})") from exc
    if key is not None:
        yield key, group


def count_shard_samples(path: Location, max_member_bytes: int = MAX_MEMBER_BYTES) -> int:
    """Number of sample keys in a shard, from the tar headers only (no member is read).

    Applies the member checks of ``read_shard`` (raising ``ShardError`` the same way) but not
    the repeated-key check, which needs the grouping that ``read_shard`` does while reading.
    """
    keys: set[str] = set()
    check_regular(path)
    try:
        with open_tar(path) as tar:
            for member in tar:
                check_member(member, max_member_bytes)
                keys.add(split_member_name(member.name)[0])
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ShardError(f"unreadable tar ({exc})") from exc
    return len(keys)


def check_regular(path: Location) -> None:
    """Refuse a shard path that is not a regular file (a FIFO would block a reader forever;
    at a URL: not an object)."""
    if storage.is_remote(path):
        try:
            found = storage.isfile(path)
        except OSError as exc:
            raise ShardError(f"cannot read {path} ({exc})") from None
        if not found:
            raise ShardError(f"cannot read {path} (no such object)")
        return
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if os.path.islink(path):
            raise ShardError(f"{path} is not a regular file (a broken link)") from None
        raise ShardError(f"cannot read {path} ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        raise ShardError(f"{path} is not a regular file (only tar files are read)")


def png_header_problem(data: bytes, colour_type: int, size: int = FRAME) -> str | None:
    """Why ``data`` is not an 8-bit ``size`` x ``size`` PNG of ``colour_type``, from its first
    26 bytes only (so a decompression bomb is refused before any pixel is decoded)."""
    if len(data) < 26 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        return "is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    if (width, height) != (size, size):
        return f"is {width}x{height}, expected {size}x{size}"
    if data[24] != 8 or data[25] != colour_type:
        return (
            f"has bit depth {data[24]} and colour type {data[25]}, "
            f"expected 8-bit {_COLOUR_NAMES[colour_type]}"
        )
    return None


def decode_png(data: bytes, mode: str) -> np.ndarray:
    """Decode a sample's PNG (``mode`` 'RGB' or 'L', 256x256, 8-bit) to a uint8 array.

    The header is checked first (``png_header_problem``); raises ``ValueError`` when it or the
    compressed data is wrong.
    """
    problem = png_header_problem(data, _COLOUR_TYPE_OF_MODE[mode])
    if problem:
        raise ValueError(problem)
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return np.asarray(im, dtype=np.uint8)
    except (OSError, SyntaxError, EOFError) as exc:
        raise ValueError(f"damaged PNG data ({exc})") from None


def decode_sample(key: str, members: Mapping[str, bytes], shard: str = "") -> Sample:
    """Decode the members of one sample (``object.png`` when present); any problem is a
    ``ShardError`` naming the shard, the key and the member."""
    where = f"{shard}: sample {key!r}" if shard else f"sample {key!r}"
    missing = [m for m in MEMBERS if m not in members]
    if missing:
        raise ShardError(f"{where} lacks {', '.join(missing)}")
    arrays = {}
    for name, colour in MEMBER_COLOUR_TYPES.items():
        if name not in members:  # an optional member
            continue
        try:
            arrays[name] = decode_png(members[name], _MODE_OF_COLOUR_TYPE[colour])
        except ValueError as exc:
            raise ShardError(f"{where}: {name} {exc}") from None
    try:
        meta = json.loads(members["json"].decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ShardError(f"{where}: json: cannot decode ({exc})") from None
    if not isinstance(meta, dict):
        raise ShardError(f"{where}: json is not an object")
    return Sample(
        key=key,
        input=arrays["input.png"],
        mask=arrays["mask.png"],
        target=arrays["target.png"],
        meta=meta,
        shard=shard,
        object_mask=arrays.get("object.png"),
    )


def list_shards(root: Location, split: str | None = None) -> list[Location]:
    """Finished shards of a dataset (``OUT/shards/<split>-NNNNNN.tar``), in name order
    (``Path``s for a local dataset, URLs for one at a URL)."""
    folder = storage.join(storage.location(root), SHARDS_DIR)
    out = []
    for name in storage.listdir(folder):
        parsed = parse_shard_name(name)
        if parsed and (split is None or parsed[0] == split):
            out.append(storage.join(folder, name))
    return out


def iter_samples(root: Location, split: str | None = None) -> Iterator[Sample]:
    """Yield every sample of a built dataset (one split, or all), decoded, in shard order."""
    shards = list_shards(root, split)
    if not shards:
        raise FileNotFoundError(f"no shards in {storage.join(storage.location(root), SHARDS_DIR)}")
    for path in shards:
        for key, members in read_shard(path):
            yield decode_sample(key, members, shard=storage.name(path))
