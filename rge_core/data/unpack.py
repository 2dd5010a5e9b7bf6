"""Unpack an image archive of an MMEB repo into its data folder, resumably.

Every member is written under a temporary name and renamed into place, so a file that exists with the
member's size is complete and an interrupted unpack picks up where it stopped. Where the members go is read
off the rows (rge_core/data/archive_layout.py).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

from rge_core.data.issues import DataError


def unpack(archive: Path, dest: Path, place: Callable[[str], str], scratch: Path) -> int:
    """Extract `archive` into dest, each member at dest/place(member) (rge_core/data/archive_layout.py), skipping
    members already in place; returns how many were written.
    `scratch` (on dest's filesystem) holds the files being written; it is emptied first."""
    shutil.rmtree(scratch, ignore_errors=True)  # what an interrupted run was writing
    scratch.mkdir(parents=True)
    written = 0
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            if info.is_dir():
                continue
            target = dest / _safe_name(archive, place(info.filename))
            if target.is_file() and target.stat().st_size == info.file_size:
                continue
            partial = scratch / uuid.uuid4().hex
            with zipped.open(info) as source, partial.open("wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial, target)
            written += 1
    shutil.rmtree(scratch)
    return written


def _safe_name(archive: Path, name: str) -> str:
    """`name` as a relative path that stays inside the data folder."""
    normal = posixpath.normpath(name)
    if normal.startswith(("/", "../")) or normal == ".." or ":" in normal.split("/")[0]:
        raise DataError(f"{archive}: member {name!r} would be written outside the data folder")
    return normal
