"""The one place where a stage's artifact is opened, reused or built, and finished.

A stage describes its artifact (kind, version settings, input artifacts, the code that versions it) and how
to build it; `build_or_reuse` does the rest through the store: a complete version is reused; otherwise the
store takes the version's build lock and verifies every input's files, then `build(writer)` writes the files
and returns the manifest's stats, and the manifest is written last. Under the CLI the libraries' output
during `build` goes to the version's log file (rge_core/stage_logs.py).

    return build_or_reuse(store, StageSpec("dataset", settings, {"pairs": pairs_id}, _CODE, build))

`planned_id` names the version without building it (`rge run --check`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rge_core.artifacts.store import ArtifactStore, ArtifactWriter
from rge_core.artifacts.versioning import code_version
from rge_core.stage_logs import capture, log_file


@dataclass(frozen=True)
class StageSpec:
    kind: str
    settings: dict[str, Any]  # what versions the artifact besides its inputs and code
    inputs: dict[str, str]  # lineage: input name -> artifact id
    code: list[str]  # source files and folders whose content versions the artifact
    build: Callable[[ArtifactWriter], dict[str, Any]]  # writes the files, returns the manifest's stats
    resume: bool = False  # keep the files of an interrupted build (the stage skips what exists)
    exclusive: bool = True  # hold the build lock (see ArtifactStore.open)
    before: tuple[StageSpec, ...] = ()  # artifacts among `inputs` that are built (or reused) first


def planned_id(store: ArtifactStore, spec: StageSpec) -> str:
    """The version `spec` builds or reuses, computed without building anything."""
    return store.version_id(spec.kind, spec.settings, spec.inputs, code_version(spec.code))


def build_or_reuse(store: ArtifactStore, spec: StageSpec) -> str:
    for first in spec.before:
        build_or_reuse(store, first)
    writer = store.open(
        spec.kind, spec.settings, spec.inputs, code_version(spec.code), resume=spec.resume, exclusive=spec.exclusive
    )
    if not writer.exists_complete:
        with capture(log_file(store, writer.version_id)):
            stats = spec.build(writer)
        writer.finish(stats)
    return writer.version_id
