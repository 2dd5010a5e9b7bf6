"""Checking an artifact's files against the sha256 its manifest recorded, before anything reads them.

A file is hashed at most once per process while its size and modification time stay the same, so a
stage that opens an input (all of its files checked) and then reads them by URL pays for one pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import fsspec

from rge_core.artifacts.manifest import Manifest

_HASH_CHUNK = 8 << 20
# (file URL, size, stamp: mtime, change time, inode, or an ETag) -> sha256 of the content seen with them
_SEEN: dict[tuple[str, int, object], str] = {}


class TamperedArtifact(LookupError):
    """A file of a complete artifact is missing or differs from its manifest."""


def file_sha256(fs, path: str) -> tuple[str, int]:
    """(hex sha256, size in bytes) of one file."""
    digest, size = hashlib.sha256(), 0
    with fs.open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


_STAMPS = ("mtime", "created", "ino", "LastModified", "last_modified", "ETag", "etag")


def _stamp(info: dict) -> object:
    """What changes when the file's content may have (local: mtime, and the inode's change time, which a
    write always sets and `touch -d` cannot put back; object stores: ETag etc.); None where the filesystem
    reports none (e.g. memory://), and then nothing is cached."""
    stamp = tuple(info[key] for key in _STAMPS if key in info)
    return stamp or None


def cached_sha256(fs, path: str) -> str:
    """sha256 of a file, hashed again only when its size or modification time changed."""
    info = fs.info(path)
    stamp = _stamp(info)
    key = (path, info["size"], stamp)
    if stamp is not None and key in _SEEN:
        return _SEEN[key]
    digest = file_sha256(fs, path)[0]
    if stamp is not None:  # where the filesystem reports no time, every check hashes
        _SEEN[key] = digest
    return digest


def local_sha256(path: str | Path) -> str:
    """cached_sha256 of a local file."""
    return cached_sha256(fsspec.filesystem("file"), str(path))


def folder_identity(folder: str | Path) -> dict:
    """How a checkpoint folder given by path enters a version: its path and its content digest."""
    return {"path": str(folder), "content": folder_digest(Path(folder))}


def folder_digest(folder: Path) -> str:
    """Identity of a local folder by content: sha256 over each file's relative path and sha256 (a
    checkpoint given as a folder is the weights, config and tokenizer in it, not its path)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{local_sha256(path)}\n".encode())
    return digest.hexdigest()[:16]


def verify_files(fs, folder: str, manifest: Manifest, rels: Iterable[str] | None = None) -> None:
    """Check `rels` (default: every file in the manifest) under `folder`; raises TamperedArtifact naming the
    artifact, the file and both hashes."""
    for rel in manifest.files if rels is None else rels:
        record = manifest.files.get(rel)
        if record is None:
            raise TamperedArtifact(f"artifact {manifest.id}: {rel} is not one of its files (manifest.json)")
        path = f"{folder}/{rel}"
        if not fs.isfile(path):
            raise TamperedArtifact(f"artifact {manifest.id}: {rel} is missing (the manifest lists it)")
        actual = cached_sha256(fs, path)
        if actual != record.sha256:
            raise TamperedArtifact(
                f"artifact {manifest.id}: {rel} was changed after the artifact was written (sha256 {actual}, "
                f"the manifest says {record.sha256}); restore it or delete the artifact folder to rebuild it"
            )
