"""On-disk cache of detected landmarks, so a second run does not detect again.

One Parquet file; one row per (resolved path, file size, mtime in ns, detector). A row
stores what the detector found in **source pixels** (every named point it knows, as
``<name>_x, <name>_y``, plus the dense mesh as float32 bytes), never canonical
coordinates: alignment and mean-shape completion are recomputed on load, so a change of
the canonical frame or of ``MEAN_SHAPE`` never leaves stale results behind. Fresh
detections are stored with exactly the same precision, so a cached and an uncached run
give identical landmarks.

Use from a parallel build: load one ``LandmarkCache`` in the parent, hand ``get`` results
to the workers (``faces.load_aligned(..., points=...)``), ``put`` what they found and
``save`` once; ``save`` merges with rows another process saved meanwhile and writes
atomically (temporary file + rename).
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from .canonical import POINT_NAMES
from .landmarks import DENSE_POINTS, SourcePoints

CACHE_VERSION = "1"
#: Schema metadata key of the file's attributes (the one pandas reads ``DataFrame.attrs`` from,
#: so files written by earlier versions through pandas and by this one read alike).
_ATTRS = b"PANDAS_ATTRS"
_KEY = ("path", "size", "mtime_ns", "detector")

Key = tuple[str, int, int, str]


def default_cache_path() -> Path:
    """``$OCCSYNTH_LANDMARK_CACHE``, else ``$XDG_CACHE_HOME/occsynth/landmarks.parquet``."""
    env = os.environ.get("OCCSYNTH_LANDMARK_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "occsynth" / "landmarks.parquet"


def path_key(path: Path) -> str:
    """The ``path`` column of a file: its resolved path, or, for a path holding bytes that are
    not UTF-8 (``surrogateescape`` surrogates, which Parquet cannot store), ``"\0x:"`` and
    the hex of its bytes (``os.fsencode``); no real path starts with a NUL."""
    text = str(Path(path).resolve())
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "\0x:" + os.fsencode(text).hex()
    return text


def file_key(path: Path, detector: str) -> Key:
    """The cache key of a file: it changes whenever the file is replaced or edited."""
    st = Path(path).stat()
    return (path_key(path), int(st.st_size), int(st.st_mtime_ns), detector)


def _row(key: Key, found: SourcePoints) -> dict:
    row: dict = dict(zip(_KEY, key, strict=True))
    row["provider"] = found.provider
    for n in POINT_NAMES:
        x, y = found.points.get(n, (np.nan, np.nan))
        row[f"{n}_x"], row[f"{n}_y"] = float(x), float(y)
    row["dense"] = None if found.dense is None else found.dense.astype("<f4").tobytes()
    return row


def _from_row(row: dict) -> SourcePoints:
    points = {}
    for n in POINT_NAMES:
        x, y = row[f"{n}_x"], row[f"{n}_y"]
        if x is not None and y is not None and not (np.isnan(x) or np.isnan(y)):
            points[n] = (float(x), float(y))
    dense = row.get("dense")
    if dense is not None:
        dense = np.frombuffer(dense, dtype="<f4").reshape(DENSE_POINTS, 2).astype(np.float32)
    return SourcePoints(provider=row["provider"], points=points, dense=dense)


def normalise(found: SourcePoints) -> SourcePoints:
    """``found`` at the precision the cache stores (so fresh and cached results agree)."""
    return _from_row(_row(("", 0, 0, ""), found))


class LandmarkCache:
    """Detected landmarks keyed by file identity and detector; see the module docstring."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self._rows: dict[Key, dict] = self._read()
        self._new: dict[Key, dict] = {}

    def _read(self) -> dict[Key, dict]:
        if not self.path.is_file():
            return {}
        import pyarrow.parquet as pq  # here, not at import: only a build with a cache pays

        try:
            table = pq.read_table(self.path)
            attrs = json.loads((table.schema.metadata or {}).get(_ATTRS, b"{}"))
        except Exception as exc:  # noqa: BLE001 - a broken cache must never stop a build
            warnings.warn(f"ignoring unreadable landmark cache {self.path}: {exc}", stacklevel=2)
            return {}
        if not isinstance(attrs, dict):
            attrs = {}
        if attrs.get("occsynth_cache_version") not in (None, CACHE_VERSION) or not set(
            _KEY
        ).issubset(table.column_names):
            return {}
        rows = table.to_pylist()
        return {tuple(r[k] for k in _KEY): r for r in rows}  # type: ignore[misc]

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, path: Path, detector: str) -> SourcePoints | None:
        """The cached result for this file and detector, or None."""
        try:
            row = self._rows.get(file_key(path, detector))
        except OSError:
            return None
        return None if row is None else _from_row(row)

    def put(self, path: Path, detector: str, found: SourcePoints) -> None:
        """Remember a detection (call ``save`` to write it)."""
        key = file_key(path, detector)
        row = _row(key, found)
        self._rows[key] = row
        self._new[key] = row

    def save(self) -> None:
        """Write atomically, merged with rows other processes saved since this one loaded."""
        if not self._new:
            return
        merged = self._read()
        merged.update(self._new)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(list(merged.values()))
        attrs = json.dumps({"occsynth_cache_version": CACHE_VERSION}).encode()
        table = table.replace_schema_metadata({_ATTRS: attrs})
        fd, tmp = tempfile.mkstemp(prefix=".landmarks-", suffix=".parquet", dir=self.path.parent)
        os.close(fd)
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, self.path)
        except OSError as exc:  # a full disk: the cache is an optimisation, never a stopper
            Path(tmp).unlink(missing_ok=True)
            warnings.warn(
                f"could not save the landmark cache {self.path} ({exc.strerror or exc})",
                stacklevel=2,
            )
            return
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._rows.update(merged)
        self._new.clear()
