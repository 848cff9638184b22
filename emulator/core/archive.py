"""Source archives as Google's build side receives them (a gen2 function's zip, `gcloud run jobs deploy --source`'s
zip): read safely, whoever reads them. `unpack` refuses what would escape the folder it unpacks into (absolute names,
`..`, symbolic links) or blow it up (more than `max_bytes` unpacked or `max_files` entries, or an entry longer than
its header says); with no folder it only checks, writing nothing. The runtime unpacks what it runs with it; Cloud
Build checks an uploaded source with it before it builds anything."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path, PurePosixPath

MAX_UNPACKED = 200 * 1024 * 1024  # bytes a source may unpack to; more is refused as a broken deploy
MAX_FILES = 20_000


class ArchiveError(ValueError):
    """A source archive that cannot be unpacked safely: the message says which entry."""


def unpack(data: bytes, into: Path | None, *, max_bytes: int = MAX_UNPACKED, max_files: int = MAX_FILES) -> list[str]:
    """Unpack a zip into the empty folder `into` (or only check it when `into` is None); the files' names."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as err:
        raise ArchiveError(f"the source is not a zip archive: {err}") from None
    names: list[str] = []
    with archive:
        infos = archive.infolist()
        if len(infos) > max_files:
            raise ArchiveError(f"the source has {len(infos)} entries; at most {max_files}")
        total = 0
        root = into.resolve() if into is not None else Path("/nonexistent-root")
        for info in infos:
            name = info.filename
            target = (root / name).resolve()
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if name.startswith(("/", "\\")) or ".." in parts or not target.is_relative_to(root):
                raise ArchiveError(f"the source entry {name[:200]!r} points outside the source folder")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ArchiveError(f"the source entry {name[:200]!r} is a symbolic link")
            total += info.file_size
            if total > max_bytes:
                raise ArchiveError(f"the source unpacks to more than {max_bytes} bytes")
            if info.is_dir():
                if into is not None:
                    target.mkdir(parents=True, exist_ok=True)
                continue
            names.append(name)
            if into is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, target.open("wb") if into is not None else io.BytesIO() as dst:
                copied = 0
                try:
                    while chunk := src.read(1 << 16):
                        copied += len(chunk)
                        if copied > info.file_size:  # a lying header: stop at what it declared
                            raise ArchiveError(f"the source entry {name[:200]!r} is larger than its header says")
                        if into is not None:
                            dst.write(chunk)
                except (zipfile.BadZipFile, EOFError, OSError) as err:
                    if isinstance(err, ArchiveError):
                        raise
                    raise ArchiveError(f"the source entry {name[:200]!r} cannot be read: {err}") from None
    return names


def read_member(data: bytes, name: str, limit: int = 1 << 20) -> bytes | None:
    """One file of a zip already checked by `unpack` (at most `limit` bytes of it), None when it has none."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        try:
            with archive.open(name) as member:
                return member.read(limit)
        except KeyError:
            return None
