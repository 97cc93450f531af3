"""Before step 1: every shard the run will read is checked, from headers only.

A damaged val shard would otherwise surface at the end of the first epoch. Each shard is
walked once through its tar headers (no member is decoded): it must be a regular file, every
member safe and inside the file, every key a complete group of the four members, and every
PNG's header (its first 26 bytes) must say 8-bit RGB (input, target) or grey (mask) at
256x256. JSON members are small and are parsed. What this cannot see — a PNG whose
compressed data is corrupt past its header — is still caught, naming shard and key, by the
decoder when the sample is read.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from occlusion_synth import shards, storage
from occlusion_synth.errors import UserError


def check_shard(path: Path) -> int:
    """The number of samples in one shard; ``ShardError`` naming the member or key if bad."""
    shards.check_regular(path)
    size = storage.size(path)  # a local file or an object at a URL
    groups: dict[str, set[str]] = {}
    key = None
    try:
        with shards.open_tar(path) as tar:
            for member in tar:
                shards.check_member(member, shards.MAX_MEMBER_BYTES)
                if member.offset_data + member.size > size:
                    raise shards.ShardError(f"member {member.name!r} is truncated")
                k, ext = shards.split_member_name(member.name)
                if k != key and k in groups:
                    raise shards.ShardError(f"key {k!r} appears twice")
                key = k
                if ext in groups.setdefault(k, set()):
                    raise shards.ShardError(f"member {member.name!r} appears twice")
                groups[k].add(ext)
                if ext not in shards.KNOWN_MEMBERS:
                    raise shards.ShardError(f"member {member.name!r} is not part of the format")
                fh = tar.extractfile(member)  # a regular member: never None
                if ext == "json":
                    json.loads(fh.read() if fh else b"")
                elif problem := shards.png_header_problem(
                    fh.read(26) if fh else b"", shards.MEMBER_COLOUR_TYPES[ext]
                ):
                    raise shards.ShardError(f"member {member.name!r} {problem}")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise shards.ShardError(f"unreadable tar ({exc})") from None
    except ValueError:  # json.JSONDecodeError, UnicodeDecodeError
        raise shards.ShardError(f"sample {key!r}: its JSON does not decode") from None
    for k, members in groups.items():
        missing = [m for m in shards.MEMBERS if m not in members]
        if missing:
            raise shards.ShardError(f"sample {k!r} lacks {', '.join(missing)}")
    return len(groups)


def check_shards(paths: list[Path]) -> int:
    """The total number of samples in ``paths``; a one-line ``UserError`` for a bad shard."""
    total = 0
    for path in paths:
        try:
            total += check_shard(path)
        except shards.ShardError as exc:
            raise UserError(f"--data: {path}: {exc}") from None
    return total
