"""The versioned artifact store. Every stage output lives in `<root>/<kind>/<version_id>/` and is
complete only once its manifest.json exists; the root is a local folder or any fsspec URL.

A stage uses it like this:

    store = ArtifactStore.from_config(config)
    writer = store.open("pairs", to_dict(config.data), inputs={}, code=code_version(["rge_core/data"]))
    if not writer.exists_complete:
        writer.write_parquet("pairs.parquet", table)
        writer.finish({"rows": table.num_rows})
    pairs = store.get(writer.version_id)
"""

from __future__ import annotations

import builtins  # ArtifactStore.list shadows the builtin in the annotations that follow it
import json
import os
import posixpath
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from rge_core import fileio
from rge_core.artifacts import versioning
from rge_core.artifacts.lock import LockTimeout, VersionLock
from rge_core.artifacts.manifest import MANIFEST_NAME, FileRecord, Manifest
from rge_core.artifacts.verify import TamperedArtifact, file_sha256, verify_files

if TYPE_CHECKING:
    from rge_core.config.schema import Config

DEFAULT_ROOT = "./rge-artifacts"
ROOT_ENV = "RGE_ARTIFACTS"
_KIND = re.compile(r"[a-z0-9][a-z0-9_-]*")
_VERSION_ID = re.compile(r"([a-z0-9][a-z0-9_-]*)-[0-9a-f]{12}")


def looks_like_version_id(text: str) -> bool:
    """`kind-<12 hex>`: an artifact id (present or not), not a path."""
    return _VERSION_ID.fullmatch(text) is not None


class ArtifactError(LookupError):
    """A missing, incomplete, malformed or misused artifact."""


def resolve_root(configured: str | None = None) -> str:
    """The config's value when set, else $RGE_ARTIFACTS, else ./rge-artifacts."""
    return configured or os.environ.get(ROOT_ENV) or DEFAULT_ROOT


def _check_rel(rel: str) -> str:
    parts = rel.split("/")
    if rel == MANIFEST_NAME or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"invalid artifact file path {rel!r}: use a relative path other than {MANIFEST_NAME}")
    return rel


def _is_temp(path: str) -> bool:
    # fileio writes local files as ".<name>.<random>.tmp" before renaming them.
    name = posixpath.basename(path)
    return name.startswith(".") and name.endswith(".tmp")


class ArtifactStore:
    def __init__(self, root: str | None = None) -> None:
        self.fs, self._root = fsspec.core.url_to_fs(resolve_root(root))
        self.root = self._url(self._root)
        self.built: list[str] = []  # versions this store object completed, in order (the rest were reused)

    @classmethod
    def from_config(cls, config: Config) -> ArtifactStore:
        return cls(config.run.artifacts_root)

    def _url(self, path: str) -> str:
        # Local paths stay plain paths so that fileio takes its temp+fsync+rename route.
        return path if isinstance(self.fs, LocalFileSystem) else self.fs.unstrip_protocol(path)

    def _dir(self, version_id: str) -> str:
        match = _VERSION_ID.fullmatch(version_id)
        if match is None:
            raise ArtifactError(f"{version_id!r} is not an artifact version id (<kind>-<12 hex>)")
        return f"{self._root}/{match.group(1)}/{version_id}"

    def version_id(self, kind: str, config: dict[str, Any], inputs: dict[str, str], code: str) -> str:
        if _KIND.fullmatch(kind) is None:
            raise ValueError(f"invalid artifact kind {kind!r}: use lowercase letters, digits, '-' and '_'")
        return versioning.version_id(kind, config, inputs, code)

    def path(self, version_id: str) -> str:
        return self._url(self._dir(version_id))

    def is_complete(self, version_id: str) -> bool:
        """Whether `version_id` names a complete artifact here; False for anything else (e.g. a folder path)."""
        return _VERSION_ID.fullmatch(version_id) is not None and self.fs.exists(
            f"{self._dir(version_id)}/{MANIFEST_NAME}"
        )

    def get(self, version_id: str) -> Artifact:
        manifest_path = f"{self._dir(version_id)}/{MANIFEST_NAME}"
        if not self.fs.exists(manifest_path):
            state = (
                "incomplete (no manifest.json; rerun its stage)"
                if self.fs.exists(self._dir(version_id))
                else "not found"
            )
            raise ArtifactError(f"artifact {version_id} is {state} under {self.root}")
        return Artifact(self, self._manifest(version_id, manifest_path))

    def _manifest(self, version_id: str, path: str) -> Manifest:
        """The manifest at `path`, refused unless it parses and names this very folder and kind."""
        try:
            manifest = Manifest.from_json(self.fs.cat_file(path))
        except (ValueError, TypeError, KeyError) as error:
            raise ArtifactError(f"artifact {version_id}: malformed manifest.json ({error})") from None
        kind = version_id.rsplit("-", 1)[0]
        if manifest.id != version_id or manifest.kind != kind:
            raise ArtifactError(
                f"artifact {version_id}: its manifest.json names {manifest.kind} {manifest.id}, not this folder"
            )
        return manifest

    def list(self, kind: str | None = None) -> list[Manifest]:
        """Complete artifacts (of one kind, or all), oldest first; malformed ones are left out (`problems`)."""
        return [manifest for manifest in self._scan(kind) if isinstance(manifest, Manifest)]

    def problems(self, kind: str | None = None) -> builtins.list[str]:
        """One line per folder whose manifest.json is malformed or names another artifact."""
        return [problem for problem in self._scan(kind) if isinstance(problem, str)]

    def _scan(self, kind: str | None) -> builtins.list[Manifest | str]:
        if kind is not None and _KIND.fullmatch(kind) is None:
            raise ArtifactError(f"--kind {kind!r} is not an artifact kind (lowercase letters, digits, '-', '_')")
        found: builtins.list[Manifest | str] = []
        for path in self.fs.glob(f"{self._root}/{kind or '*'}/*/{MANIFEST_NAME}"):
            version_id = posixpath.basename(posixpath.dirname(path))
            try:
                found.append(self._manifest(version_id, path))
            except ArtifactError as error:
                found.append(str(error))
        manifests = sorted((m for m in found if isinstance(m, Manifest)), key=lambda m: (m.created, m.id))
        return [*manifests, *sorted(p for p in found if isinstance(p, str))]

    def lineage(self, version_id: str) -> LineageNode:
        """The ancestry tree of a complete artifact; ancestors missing from this store have no manifest."""
        seen: dict[str, LineageNode] = {}
        visiting: set[str] = set()

        def node(vid: str, manifest: Manifest | None) -> LineageNode:
            if vid in visiting:
                raise ArtifactError(f"artifact {version_id}: its lineage is cyclic (through {vid})")
            if vid not in seen:
                visiting.add(vid)
                parents = manifest.inputs if manifest else {}
                seen[vid] = LineageNode(
                    vid,
                    manifest,
                    {
                        name: node(pid, self.get(pid).manifest if self.is_complete(pid) else None)
                        for name, pid in parents.items()
                    },
                )
                visiting.discard(vid)
            return seen[vid]

        return node(version_id, self.get(version_id).manifest)

    def open(
        self,
        kind: str,
        config: dict[str, Any],
        inputs: dict[str, str],
        code: str,
        resume: bool = False,
        exclusive: bool = True,
    ) -> ArtifactWriter:
        """Start (or find) the version of `kind` determined by config, inputs and code.

        - If that version is complete, its files and its inputs' files are verified against their manifests,
          and the writer has `exists_complete=True`: the stage skips its work and reads
          `store.get(writer.version_id)`; the writer refuses writes.
        - Otherwise every input must be a complete artifact of this store. A folder left without a
          manifest by an interrupted run is never trusted: with resume=False it is deleted first; with
          resume=True its files are kept, and the stage may skip pieces for which `has_file` is true
          (files are written atomically, so an existing file is whole).
        - The stage writes its files, then `finish(stats)` writes manifest.json last.
        - `exclusive` (local roots): building holds a lock from open to finish (lock.py); another open of the
          same version waits, then reuses it, and nothing is deleted under a running build. Stages whose
          nodes build one version together (multi-node curation, per-node torchrun) pass False.
        """
        version_id = self.version_id(kind, config, inputs, code)
        if self.is_complete(version_id):
            return self._reused(version_id)
        lock = self._lock(version_id) if exclusive else None  # waits while another process builds it
        if lock is not None and self.is_complete(version_id):  # ...which it finished meanwhile
            lock.release()
            return self._reused(version_id)
        for name, input_id in inputs.items():
            if not self.is_complete(input_id):
                raise ArtifactError(
                    f"input {name}={input_id} of {version_id} is not a complete artifact under {self.root}"
                )
            self.get(input_id).verify()  # the stage is about to read it: every file as its manifest says
        folder = self._dir(version_id)
        if not resume and self.fs.exists(folder):
            self.fs.rm(folder, recursive=True)
        # A JSON round trip stores exactly what was hashed (tuples become lists) and detaches the caller's dict.
        pending = Manifest(version_id, kind, "", json.loads(versioning.canonical_json(config)), dict(inputs), code)
        return ArtifactWriter(self, pending, exists_complete=False, lock=lock)

    def _reused(self, version_id: str) -> ArtifactWriter:
        """A complete version, reused only once its files and its inputs' files are what their manifests say
        (hashed once per process while a file's size and times stay the same)."""
        artifact = self.get(version_id)
        artifact.verify()
        for input_id in artifact.manifest.inputs.values():
            if self.is_complete(input_id):  # one deleted since leaves nothing to trust or distrust
                self.get(input_id).verify()
        return ArtifactWriter(self, artifact.manifest, exists_complete=True)

    def _lock(self, version_id: str) -> VersionLock | None:
        """The build lock of a version on a local root (object stores have none: see lock.py)."""
        if not isinstance(self.fs, LocalFileSystem):
            return None
        try:
            return VersionLock.acquire(f"{self._root}/.locks", version_id)
        except LockTimeout as error:
            raise ArtifactError(str(error)) from None


class ArtifactWriter:
    """Writes the files of one artifact version; see ArtifactStore.open."""

    def __init__(
        self, store: ArtifactStore, manifest: Manifest, exists_complete: bool, lock: VersionLock | None = None
    ) -> None:
        self._store = store
        self._lock = lock  # held from open to finish: no other process builds or deletes this version
        self._manifest = manifest
        self._dir = store._dir(manifest.id)
        self.version_id = manifest.id
        self.url = store._url(self._dir)
        self.exists_complete = exists_complete
        self._closed = exists_complete

    def file_url(self, rel: str) -> str:
        return self._store._url(f"{self._dir}/{_check_rel(rel)}")

    def has_file(self, rel: str) -> bool:
        return self._store.fs.isfile(f"{self._dir}/{_check_rel(rel)}")

    def _check_open(self) -> None:
        if self._closed:
            raise ArtifactError(f"artifact {self.version_id} is complete; its files are read-only")

    def _target(self, rel: str) -> str:
        self._check_open()
        return self.file_url(rel)

    def write_bytes(self, rel: str, data: bytes) -> None:
        fileio.atomic_write_bytes(self._target(rel), data)

    def write_text(self, rel: str, text: str) -> None:
        fileio.atomic_write_text(self._target(rel), text)

    def write_parquet(self, rel: str, table: pa.Table) -> None:
        fileio.atomic_write_parquet(self._target(rel), table)

    def _hash_files(self) -> dict[str, FileRecord]:
        fs = self._store.fs
        records = {}
        for path in sorted(fs.find(self._dir)):
            rel = path[len(self._dir) + 1 :]
            if rel == MANIFEST_NAME:
                continue
            if _is_temp(path):  # left by a killed write; never part of the artifact
                fs.rm(path)
                continue
            records[rel] = FileRecord(*file_sha256(fs, path))
        return records

    def finish(self, stats: dict[str, Any] | None = None) -> Manifest:
        """Hash every file, then publish manifest.json: the artifact is complete from that moment."""
        self._check_open()
        manifest = self._manifest
        manifest.created = datetime.now(UTC).isoformat(timespec="microseconds")
        manifest.files = self._hash_files()
        manifest.stats = dict(stats or {})
        manifest.git_commit = versioning.git_commit()
        manifest.packages = versioning.package_versions()
        text = manifest.to_json()  # non-JSON stats fail here, before anything is published
        fileio.atomic_write_text(self._store._url(f"{self._dir}/{MANIFEST_NAME}"), text)
        self._closed = True
        self._store.built.append(manifest.id)
        if self._lock is not None:
            self._lock.release()
        return manifest


@dataclass
class Artifact:
    """A complete artifact: its manifest and read access to its files."""

    store: ArtifactStore
    manifest: Manifest

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def url(self) -> str:
        return self.store.path(self.manifest.id)

    def verify(self, rels: list[str] | None = None) -> None:
        """Check `rels` (default: all files) against the manifest's sha256; raises ArtifactError naming the
        file and both hashes."""
        try:
            verify_files(self.store.fs, self.store._dir(self.id), self.manifest, rels)
        except TamperedArtifact as error:
            raise ArtifactError(str(error)) from None

    def file_url(self, rel: str) -> str:
        """The URL of a file, checked against the manifest first (the caller is about to read it)."""
        self.verify([_check_rel(rel)])
        return self.store._url(f"{self.store._dir(self.id)}/{rel}")

    def read_bytes(self, rel: str) -> bytes:
        return fileio.read_bytes(self.file_url(rel))

    def read_table(self, rel: str) -> pa.Table:
        self.verify([_check_rel(rel)])
        return pq.read_table(f"{self.store._dir(self.id)}/{rel}", filesystem=self.store.fs)


@dataclass
class LineageNode:
    id: str
    manifest: Manifest | None  # None: not a complete artifact of this store
    inputs: dict[str, LineageNode] = field(default_factory=dict)

    def ancestors(self) -> list[str]:
        """Ids of every ancestor, depth-first, each once."""
        ids: list[str] = []
        for parent in self.inputs.values():
            for vid in [parent.id, *parent.ancestors()]:
                if vid not in ids:
                    ids.append(vid)
        return ids
