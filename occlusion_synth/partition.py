"""Building one dataset as K independent jobs (``occsynth build --partition I/K``).

Every partition plans the whole build (the same faces, the same shards) and writes only the
shards at positions ``p`` with ``p % K == I`` in plan order (train, val, test; then by number),
so the K parts together are exactly the shards of a single build. Each partition holds its own
lock (:meth:`Partition.lock_file`) and keeps a record in ``.partial/`` (:meth:`Partition.record`:
the options, the face fingerprint and the occluder library it was built with, and once
finished its shards, counts and rejects). ``occsynth merge`` checks the K records against one
another and writes what a single build would: ``manifest.parquet``, ``dataset.json``,
``rejects.csv`` and ``preview.png``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import UserError

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_RECORD = re.compile(r"^partition-(\d+)-of-(\d+)\.json$")
#: Most partitions of one build.
MAX_PARTITIONS = 100_000


@dataclass(frozen=True)
class Partition:
    """Partition ``index`` of ``count`` (``0 <= index < count``)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Partition:
        """``"I/K"`` (as ``--partition`` takes it); a one-line ``UserError`` otherwise."""
        m = _SPEC.match(str(text))
        if not m:
            raise UserError(f"--partition takes I/K (e.g. 0/4), got {text!r}")
        index, count = int(m[1]), int(m[2])
        if not 1 <= count <= MAX_PARTITIONS:
            raise UserError(f"--partition {text}: K must be between 1 and {MAX_PARTITIONS:,}")
        if index >= count:
            raise UserError(f"--partition {text}: I must be between 0 and K-1 ({count - 1})")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def select(self, shard_names: list[str]) -> set[str]:
        """The shards of this partition among all of a build's shards, in plan order."""
        return {name for p, name in enumerate(shard_names) if p % self.count == self.index}

    @property
    def lock_file(self) -> str:
        """This partition's writer lock in ``--out`` (partitions run side by side)."""
        return f".occsynth-build.partition-{self.index}-of-{self.count}.lock"

    @property
    def record(self) -> str:
        """This partition's record in ``.partial/``."""
        return f"partition-{self.index}-of-{self.count}.json"


def parse_record_name(name: str) -> Partition | None:
    """The partition a ``.partial/`` file name records, or None."""
    m = _RECORD.match(name)
    if not m or int(m[1]) >= int(m[2]):
        return None
    return Partition(int(m[1]), int(m[2]))


#: The record entries that must agree between partitions (and what a user changed to differ).
FINGERPRINT = ("plan", "sources", "occluder_library")


def differences(a: dict[str, Any], b: dict[str, Any]) -> str:
    """How record ``b`` differs from ``a`` (one line, empty when they agree)."""
    found = []
    plan_a, plan_b = a.get("plan") or {}, b.get("plan") or {}
    for key in sorted(set(plan_a) | set(plan_b)):
        if plan_a.get(key) != plan_b.get(key):
            found.append(f"--{key.replace('_', '-')} {plan_a.get(key)!r} -> {plan_b.get(key)!r}")
    if (a.get("sources") or {}).get("sha256") != (b.get("sources") or {}).get("sha256"):
        found.append("the faces changed")
    lib_a, lib_b = a.get("occluder_library") or {}, b.get("occluder_library") or {}
    if lib_a.get("sha256") != lib_b.get("sha256"):
        found.append("the occluder library changed")
    return ", ".join(found)
