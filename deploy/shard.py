"""Shards of a fleet: `--shard K/N` keeps the projects of shard K of N, so N Cloud Build builds can each take one
(cloudbuild.yaml's _SHARD). A project's shard depends only on its id (a hash), never on the file's order or on the
other projects, so a project added to the fleet file does not move the others, and the same command from any machine
picks the same projects."""

from __future__ import annotations

import hashlib
import re

from .spec import SpecError

SHARD = re.compile(r"^([0-9]{1,4})/([0-9]{1,4})\Z")
MAX_SHARDS = 1000


def parse(text: str | None) -> tuple[int, int] | None:
    """`K/N` as (K, N), 1 ≤ K ≤ N ≤ MAX_SHARDS; None when not given."""
    if text is None:
        return None
    match = SHARD.match(text)
    if match is None:
        raise SpecError(f"--shard: {text[:100]!r} is not K/N (for example 3/10: the third of ten shards)")
    k, n = int(match.group(1)), int(match.group(2))
    if not 1 <= n <= MAX_SHARDS:
        raise SpecError(f"--shard: {n} shards is out of range; allowed: 1 to {MAX_SHARDS}")
    if not 1 <= k <= n:
        raise SpecError(f"--shard: shard {k} of {n} does not exist; allowed: 1 to {n}")
    return k, n


def shard_of(project: str, shards: int) -> int:
    """The shard (1..shards) a project belongs to: a stable hash of its id."""
    digest = hashlib.sha256(project.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards + 1


def select(projects: list[str], shard: tuple[int, int] | None) -> list[str]:
    """The projects of one shard, in the order given; all of them without a shard."""
    if shard is None:
        return list(projects)
    k, n = shard
    return [p for p in projects if shard_of(p, n) == k]


def heading(shard: tuple[int, int] | None, chosen: int, total: int) -> str | None:
    """The line a sharded run starts with (on stderr, before the progress), so each build's log says which part of
    the fleet it took: `shard 3 of 10: 21 of 200 projects`. None without a shard."""
    if shard is None:
        return None
    return f"shard {shard[0]} of {shard[1]}: {chosen} of {total} projects"
