"""Artifacts as local folders, for tools that only read or write local paths (any fsspec root).

Model checkpoints and rendered benchmarks are written by libraries that only write local paths, and
transformers, vLLM and PIL only read local paths. On a local artifact root both happen in place; on a
remote root the folder is built in a temporary directory and uploaded file by file, and read back
through a local cache.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from rge_core.artifacts.store import Artifact, ArtifactStore, ArtifactWriter
from rge_core.fileio import is_local, local_path
from rge_core.scratch import scratch_folder

CACHE_ENV = "RGE_CACHE"


def cache_root(store: ArtifactStore) -> Path:
    """Local caches (embeddings, remote artifacts read back): $RGE_CACHE, else `.cache` inside a local
    artifact root, else ~/.cache/rge; never relative to the working directory."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).resolve()
    if is_local(store.root):
        return local_path(store.root).resolve() / ".cache"
    return Path.home() / ".cache" / "rge"


def build_folder(writer: ArtifactWriter, build: Callable[[Path], object]) -> None:
    """Run `build(folder)` so that the folder's files end up as the artifact's files."""
    if is_local(writer.url):
        build(local_path(writer.url))
        return
    with scratch_folder("build") as scratch:
        build(scratch)
        for path in sorted(scratch.rglob("*")):
            if path.is_file():
                writer.write_bytes(path.relative_to(scratch).as_posix(), path.read_bytes())


def local_folder(artifact: Artifact) -> Path:
    """A local folder holding the artifact's files (the artifact itself when the root is local)."""
    if is_local(artifact.url):
        return local_path(artifact.url)
    target = cache_root(artifact.store) / artifact.id
    for rel in artifact.manifest.files:
        destination = target / rel
        if not destination.exists():  # artifacts are immutable, so a cached file is current
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(artifact.read_bytes(rel))
    return target


def checkpoint_folder(store: ArtifactStore, model_id: str) -> Path:
    """The local checkpoint folder of a model artifact (a trained one keeps it in a sub-folder)."""
    artifact = store.get(model_id)
    return local_folder(artifact) / artifact.manifest.stats.get("checkpoint", "")


def image_root(store: ArtifactStore, artifact_id: str) -> Path:
    """Local folder that the image paths of a pairs or dataset artifact are relative to: its stats name
    either a folder or `<artifact id>/<path inside it>` (the synthetic benchmark)."""
    reference = store.get(artifact_id).manifest.stats["image_root"]
    if Path(reference).is_absolute():  # a user's image folder
        return Path(reference)
    owner, _, rest = reference.partition("/")
    return local_folder(store.get(owner)) / rest
