"""`rge run --check` (and `--check` on every stage command): in seconds, without loading a model, fetching or
building anything, every setting and path of the stages the run would build is checked (each stage describes
its artifact exactly as a run does: rge_core/stages/registry.py), the data's schema read, the first rows of every subset
sampled and their images resolved, and the plan returned: each stage, its artifact id, reused or to build.

    rge run --config configs/qwen2.5-vl-3b.yaml --check
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from rge_core.artifacts.store import ArtifactStore
from rge_core.builds import planned_id
from rge_core.config.schema import Config
from rge_core.data.hf_source import NotFetchedYet
from rge_core.data.mmeb_registry import canonical_name
from rge_core.fileio import is_local, local_path
from rge_core.pipeline import plan, stage_inputs
from rge_core.sources import EVAL, SYNTHETIC, TRAIN, data_source, without_fetching
from rge_core.stages.registry import provider_before, stage

REUSED, TO_BUILD, NO_ARTIFACT = "reused", "to build", "no artifact (model.path is a checkpoint folder)"


@dataclass(frozen=True)
class PlannedArtifact:
    stage: str  # the stage, or the stage an artifact is built for first (e.g. the synthetic benchmark)
    version: str | None  # None: no artifact, or not known before an earlier step runs
    state: str  # REUSED, TO_BUILD, NO_ARTIFACT, or what it waits for


@dataclass
class RunCheck:
    artifacts: list[PlannedArtifact] = field(default_factory=list)
    data: list[str] = field(default_factory=list)  # one line per data folder the run reads: what was sampled
    notes: list[str] = field(default_factory=list)  # what is worth knowing but does not stop the run

    @property
    def to_build(self) -> list[PlannedArtifact]:
        return [a for a in self.artifacts if a.state == TO_BUILD]


def check_run(config: Config, stages: list[str] | None = None) -> RunCheck:
    """Check every stage `stages` (default: all) needs and name its artifact. Raises on the first bad setting,
    path or image root, in one line that names it; builds, fetches and loads nothing."""
    with without_fetching():
        return _check_run(config, stages)


def _check_run(config: Config, stages: list[str] | None) -> RunCheck:
    store = ArtifactStore.from_config(config)
    result = RunCheck()
    _check_root(store.root)
    done: dict[str, str | None] = {}
    waiting: dict[str, str] = {}  # stage -> what its version waits for (an hf:// fetch)
    for name in plan(config, stages):
        providers = [provider_before(name, role) for role in stage(name).needed(config)]
        blocked = [waiting[provider] for provider in providers if provider in waiting]
        if blocked:
            waiting[name] = blocked[0]
            result.artifacts.append(PlannedArtifact(name, None, blocked[0]))
            continue
        try:
            spec = stage(name).spec(config, store, stage_inputs(name, config, done))
        except NotFetchedYet as error:
            waiting[name] = f"known once {str(error).split(':')[0]} is fetched"
            result.artifacts.append(PlannedArtifact(name, None, waiting[name]))
            result.notes.append(str(error))
            continue
        if spec is None:
            done[name] = None
            result.artifacts.append(PlannedArtifact(name, None, NO_ARTIFACT))
            continue
        for first in spec.before:
            version = planned_id(store, first)
            if all(artifact.version != version for artifact in result.artifacts):
                result.artifacts.append(_planned(store, f"{name}: {first.kind}", version))
        version = done[name] = planned_id(store, spec)
        result.artifacts.append(_planned(store, name, version))
    _describe_data(config, store, result, [a.stage for a in result.artifacts if a.state == TO_BUILD])
    return result


def _planned(store: ArtifactStore, stage: str, version: str) -> PlannedArtifact:
    return PlannedArtifact(stage, version, REUSED if store.is_complete(version) else TO_BUILD)


def _check_root(root: str) -> None:
    """A local artifact root must be creatable and writable (remote roots answer only when written)."""
    if not is_local(root):
        return
    path = Path(local_path(root)).resolve()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"run.artifacts_root: {root} cannot be written ({existing} is not a writable folder)")


def _describe_data(config: Config, store: ArtifactStore, result: RunCheck, building: list[str]) -> None:
    """One line per data folder a stage to build reads, and the notes of its sampled rows."""
    sides = [(TRAIN, "ingest", "data.source"), (EVAL, "evaluate", "eval.data")]
    for side, reader, setting in sides:
        value = config.data.source if side == TRAIN else config.eval.data
        if reader not in building:
            continue
        if value == SYNTHETIC:
            result.data.append(f"{setting}: the synthetic benchmark (rendered by the run)")
            continue
        try:
            source = data_source(config, store, side)
        except NotFetchedYet:
            continue  # said in the notes already
        assert source.local is not None
        outside = [name for name in source.subsets if canonical_name(name) is None]
        kinds = f"; not MMEB-V1, averaged apart: {', '.join(outside)}" if side == EVAL and outside else ""
        result.data.append(
            f"{setting}: {source.local}: {len(source.subsets)} subsets ({', '.join(source.subsets)}{kinds}); the "
            f"first rows of each read and their images found under {source.image_root(store)}"
        )
        result.notes += [f"{setting}: {note}" for note in source.notes]
