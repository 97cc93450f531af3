"""Faces a build leaves out: ``occsynth build --exclude FILE``.

A face that already carries an occluder in its photo (sunglasses, a hand at the mouth, a
microphone) makes a wrong sample: its "untouched" target still shows the occluder, and its
mask misses it. ``occsynth screen`` finds such faces with an occlusion segmenter and writes
a list; ``--exclude`` reads it (or any list a user writes) and the build lists each face it
leaves out in ``rejects.csv``, with the reason.

The list is either a CSV with a ``source`` column (the face ids of ``rejects.csv`` and the
manifest's ``source_id``, e.g. ``img_align_celeba/000293.jpg``), where an optional
``flagged`` column keeps only the rows that are true and an optional ``reason`` column is
copied to ``rejects.csv``; or plain text, one id per line (``#`` starts a comment).
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

from .errors import UserError
from .faces import Discovery

#: The columns ``occsynth screen`` writes and ``--exclude`` reads.
SOURCE, FLAGGED, REASON = "source", "flagged", "reason"
_TRUE = {"true", "1", "yes"}


def read_list(path: Path) -> dict[str, str]:
    """``{face id: reason}`` of the faces ``path`` lists (see the module docstring)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--exclude {path}: cannot read it ({exc.__class__.__name__})") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    default = f"excluded by --exclude {Path(path).name}"
    if lines and SOURCE in next(csv.reader(lines[:1])):
        listed = {}
        for row in csv.DictReader(lines):
            if FLAGGED in row and str(row[FLAGGED]).strip().lower() not in _TRUE:
                continue
            source = (row.get(SOURCE) or "").strip()
            if source:
                why = (row.get(REASON) or "").strip()
                listed[source] = f"{default}: {why}" if why else default
        return listed
    ids = (ln.split("#", 1)[0].strip() for ln in lines)
    return {i: default for i in ids if i}


def leave_out(found: Discovery, path: Path) -> Discovery:
    """``found`` without the faces ``path`` lists: they move to ``skipped`` (rejects.csv) and
    ``path`` joins the listings (a ``--resume`` notices when it changes)."""
    listed = read_list(path)
    if not listed:
        raise UserError(f"--exclude {path}: lists no face (a CSV needs a '{SOURCE}' column)")
    kept = [s for s in found.sources if s.id not in listed]
    if len(kept) == len(found.sources):
        example = next(iter(listed))
        raise UserError(
            f"--exclude {path}: none of its {len(listed)} faces is among --faces "
            f"(e.g. {example!r}; ids are as in rejects.csv, such as img_align_celeba/000001.jpg)"
        )
    gone = [(s.id, listed[s.id]) for s in found.sources if s.id in listed]
    return replace(
        found,
        sources=kept,
        skipped=[*found.skipped, *gone],
        listings=[*found.listings, Path(path)],
    )
