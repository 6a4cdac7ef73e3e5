"""Discover: list the dump files below --raw, hash them, and say which are new.

Files are visited in sorted order so that every run sees the same sequence. A file that
cannot be a dump (unknown type, a link leading out of --raw, unreadable) is refused here
with its reason, so that it is accounted for in `dumps` like any other input.

A file whose size and modification time match those it was loaded with is taken as
loaded without being read (as make and rsync decide): a run over a large folder with
little new reads only what is new. Any other file is hashed, and a loaded dump whose
content changed is new.
"""
from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple
from pathlib import Path

from tasks.models import Dump, Quarantine

#: dump suffixes of the contract, and the format recorded for each
FORMATS = {".txt": "txt", ".html": "html", ".htm": "html"}
_HASH_CHUNK = 1 << 20


#: source_file -> (sha256, bytes, modified_ns) of each loaded dump
Loaded = dict[str, tuple[str, int, int | None]]


class LoadedFile(NamedTuple):
    """A file found below --raw that the warehouse holds already (no Path: a rerun makes one
    for every file, and pathlib's parsing was half of its time)."""

    source_file: str
    sha256: str
    bytes: int
    modified_ns: int


@dataclass(frozen=True)
class Discovery:
    new: list[Dump]
    already_loaded: list[LoadedFile]
    refused: list[Quarantine]
    #: loaded dumps found with another size or time, hashed and found unchanged (touched,
    #: copied, or loaded before times were kept): their rows take the new size and time, so
    #: that the next run need not hash them
    restamped: list[LoadedFile] = field(default_factory=list)


def dump_format(path: Path) -> str | None:
    """'txt', 'html', 'txt.gz' or 'html.gz'; None for anything else."""
    name = path.name.lower()
    gz = name.endswith(".gz")
    fmt = FORMATS.get(os.path.splitext(name[:-3] if gz else name)[1])
    if fmt is None:
        return None
    return f"{fmt}.gz" if gz else fmt


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def walk_files(raw_dir: Path) -> tuple[list[tuple[str, str]], list[Quarantine]]:
    """Every file below raw_dir with its path relative to it ('/'-separated), sorted by that,
    without following directory links; and a refusal for each folder that cannot be listed
    (its files would go unaccounted)."""
    unlisted: list[Quarantine] = []

    def refuse(error: OSError) -> None:
        folder = Path(error.filename)
        source = folder.relative_to(raw_dir).as_posix()
        reason = f"a folder that cannot be read: {error.strerror or error}; its files were not seen"
        unlisted.append(Quarantine(Dump(source, folder, "", 0, "folder"), "discover", reason))

    found = []
    for root, _, files in os.walk(raw_dir, onerror=refuse):
        below = os.path.relpath(root, raw_dir).replace(os.sep, "/")
        found += [(name if below == "." else f"{below}/{name}", os.path.join(root, name)) for name in files]
    return sorted(found), unlisted


def inspect_file(path: Path, raw_dir: Path, source_file: str | None = None) -> Dump | Quarantine:
    """The dump at path (source_file: its path relative to raw_dir), hashed."""
    source_file = source_file or path.relative_to(raw_dir).as_posix()
    fmt = dump_format(path) or "unknown"
    size = 0
    try:
        status = path.lstat()
        # A regular file the walk found is inside raw_dir; only a link needs resolving (which
        # costs a system call per folder of its path: most of a rerun's time, were it done always).
        real = path if stat.S_ISREG(status.st_mode) else path.resolve(strict=True)
        if real is not path:
            status = real.stat()
        if real is not path and not real.is_relative_to(raw_dir.resolve()):
            reason = "a link that leads outside --raw; not followed"
        elif not stat.S_ISREG(status.st_mode):
            reason = "not a regular file"
        elif fmt == "unknown":
            reason = f"not a dump: unsupported file type {path.suffix or '(none)'!r}; expected .txt, .html or .htm, optionally .gz"
        else:
            size = status.st_size
            return Dump(source_file, path, sha256_file(real), size, fmt, status.st_mtime_ns)
    except FileNotFoundError:
        reason = "a link to a file that does not exist"
    except OSError as exc:
        reason = f"cannot be read: {exc.strerror or exc}"
    return Quarantine(Dump(source_file, path, "", size, fmt), "discover", reason)


def _unchanged(path: str, known: tuple[str, int, int | None] | None) -> os.stat_result | None:
    """The file's status when it is a regular file with the size and time it was loaded with."""
    if known is None:
        return None
    try:
        status = os.lstat(path)
    except OSError:
        return None
    return status if stat.S_ISREG(status.st_mode) and (status.st_size, status.st_mtime_ns) == known[1:] else None


def discover(raw_dir: Path, loaded: Loaded) -> Discovery:
    """Dumps below raw_dir; `loaded` holds the dumps already in the warehouse."""
    new: list[Dump] = []
    old: list[LoadedFile] = []
    restamped: list[LoadedFile] = []
    paths, refused = walk_files(raw_dir)
    for source_file, path in paths:
        known = loaded.get(source_file)
        if (status := _unchanged(path, known)) is not None:
            old.append(LoadedFile(source_file, known[0], status.st_size, status.st_mtime_ns))
            continue
        found = inspect_file(Path(path), raw_dir, source_file)
        if isinstance(found, Quarantine):
            refused.append(found)
        elif known is not None and known[0] == found.sha256:
            old.append(LoadedFile(source_file, found.sha256, found.bytes, found.modified_ns))
            if known[1:] != (found.bytes, found.modified_ns):  # not a link whose target is unchanged
                restamped.append(old[-1])
        else:
            new.append(found)
    return Discovery(new, old, refused, restamped)


def likely_new(raw_dir: Path, loaded: Loaded) -> bool:
    """Whether discover would find a dump to read below raw_dir: a dump file that is not a
    loaded dump of the same size and time. Nothing is hashed, so a touched but unchanged
    dump counts as new here."""
    paths, _ = walk_files(raw_dir)
    return any(_unchanged(path, loaded.get(source_file)) is None and dump_format(Path(path)) is not None
               for source_file, path in paths)


def batches(dumps: list[Dump], max_bytes: int) -> Iterator[list[Dump]]:
    """Consecutive runs of dumps of about max_bytes each (one Prefect task run per batch)."""
    batch: list[Dump] = []
    size = 0
    for dump in dumps:
        if batch and size + dump.bytes > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append(dump)
        size += dump.bytes
    if batch:
        yield batch
