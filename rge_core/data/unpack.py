"""Unpack an image archive of an MMEB repo into its data folder, resumably.

Every member is written under a temporary name and renamed into place, so a file that exists with the
member's size is complete and an interrupted unpack picks up where it stopped. Where the members go is read
off the rows (rge_core/data/archive_layout.py).

An archive is a bomb until shown otherwise: before anything is written, every member's declared size and
compression ratio, the archive's total and the free space are checked against `UnpackLimits`; while writing,
no member may grow past what it declared (zipfile stops there and checks the CRC). Any of these is one line
naming the archive and the member, and the member being written is dropped, never left in place.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import uuid
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rge_core.data.issues import DataError

_RATIO_FLOOR = 1 << 20  # members smaller than this are not judged by their ratio (a blank image deflates well)


@dataclass(frozen=True)
class UnpackLimits:
    """What one archive may write (`rge data fetch --max-ratio / --max-member-gb / --max-archive-gb`).
    MMEB's archives hold JPEG/PNG images, which deflate barely at all (ratios near 1:1)."""

    max_ratio: float = 200.0  # uncompressed : compressed, per member (above 1 MB) and for the whole archive
    max_member_bytes: int = 1_000_000_000  # 1 GB: no image comes near it
    max_total_bytes: int = 256_000_000_000  # 256 GB per archive; MMEB-train's largest, DocVQA.zip, is 12.9 GB
    reserve_bytes: int = 1_000_000_000  # left free on the destination's filesystem after unpacking


def unpack(
    archive: Path, dest: Path, place: Callable[[str], str], scratch: Path, limits: UnpackLimits = UnpackLimits()
) -> int:
    """Extract `archive` into dest, each member at dest/place(member) (rge_core/data/archive_layout.py), skipping
    members already in place; returns how many were written. `scratch` (on dest's filesystem) holds the files
    being written; it is emptied first. Raises DataError, before writing anything, when the archive breaks
    `limits`."""
    with zipfile.ZipFile(archive) as zipped:
        todo = []
        for info in zipped.infolist():
            if info.is_dir():
                continue
            target = dest / _safe_name(archive, place(info.filename))
            if not (target.is_file() and target.stat().st_size == info.file_size):
                todo.append((info, target))
        _check_limits(archive, [info for info, _ in todo], dest, limits)
        shutil.rmtree(scratch, ignore_errors=True)  # what an interrupted run was writing
        scratch.mkdir(parents=True)
        for info, target in todo:
            partial = scratch / uuid.uuid4().hex
            _extract(zipped, info, partial, archive)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial, target)
    shutil.rmtree(scratch)
    return len(todo)


def _check_limits(archive: Path, members: list[zipfile.ZipInfo], dest: Path, limits: UnpackLimits) -> None:
    for info in members:
        where = f"{archive}: member {info.filename!r}"
        if info.file_size > limits.max_member_bytes:
            raise DataError(
                f"{where}: declares {_size(info.file_size)}, above the cap of {_size(limits.max_member_bytes)} "
                "per member (--max-member-gb); nothing was written"
            )
        if info.file_size > _RATIO_FLOOR and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise DataError(
                f"{where}: {_size(info.file_size)} unpacked from {_size(info.compress_size)} (ratio {ratio:.0f}:1, "
                f"above the limit of {limits.max_ratio:g}:1, --max-ratio): a zip bomb? nothing was written"
            )
    total = sum(info.file_size for info in members)
    if total > limits.max_total_bytes:
        raise DataError(
            f"{archive}: unpacks to {_size(total)} in {len(members)} members, above the cap of "
            f"{_size(limits.max_total_bytes)} per archive (--max-archive-gb); nothing was written"
        )
    size = archive.stat().st_size
    if total > _RATIO_FLOOR and total > limits.max_ratio * size:
        raise DataError(
            f"{archive}: unpacks to {_size(total)} from {_size(size)} (ratio {total / size:.0f}:1, above the limit "
            f"of {limits.max_ratio:g}:1, --max-ratio): a zip bomb? nothing was written"
        )
    existing = next(p for p in (dest, *dest.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    available = max(free - limits.reserve_bytes, 0)
    if total > available:
        raise DataError(
            f"{archive}: needs {_size(total)} on {existing}, which has {_size(available)} free (beyond the "
            f"{_size(limits.reserve_bytes)} kept free); nothing was written"
        )


def _extract(zipped: zipfile.ZipFile, info: zipfile.ZipInfo, partial: Path, archive: Path) -> None:
    """One member into `partial`; zipfile reads no more than the member declares and checks its CRC."""
    try:
        with zipped.open(info) as source, partial.open("wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        partial.unlink(missing_ok=True)
        raise DataError(
            f"{archive}: member {info.filename!r}: does not unpack to what it declares ({error}); "
            "the archive is damaged or forged"
        ) from None


def _size(count: float) -> str:
    """Bytes in decimal units: 2.1 MB."""
    if count < 1000:
        return f"{count:.0f} B"
    for unit in ("kB", "MB", "GB"):
        count /= 1000
        if count < 1000 or unit == "GB":
            break
    return f"{count:.1f} {unit}"


def _safe_name(archive: Path, name: str) -> str:
    """`name` as a relative path that stays inside the data folder."""
    normal = posixpath.normpath(name)
    if normal.startswith(("/", "../")) or normal == ".." or ":" in normal.split("/")[0]:
        raise DataError(f"{archive}: member {name!r} would be written outside the data folder")
    return normal
