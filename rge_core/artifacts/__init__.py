"""Versioned, content-addressed stage outputs (see store.py for how a stage writes one)."""

from __future__ import annotations

from rge_core.artifacts.manifest import MANIFEST_NAME, FileRecord, Manifest
from rge_core.artifacts.store import (
    Artifact,
    ArtifactError,
    ArtifactStore,
    ArtifactWriter,
    LineageNode,
    resolve_root,
)
from rge_core.artifacts.versioning import code_version

__all__ = [
    "MANIFEST_NAME",
    "Artifact",
    "ArtifactError",
    "ArtifactStore",
    "ArtifactWriter",
    "FileRecord",
    "LineageNode",
    "Manifest",
    "code_version",
    "resolve_root",
]
