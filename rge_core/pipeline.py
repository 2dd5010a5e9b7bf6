"""The stages in dependency order (their declarations: rge_core/stages/registry.py), without any orchestrator:
what `rge run`, the tests and the Prefect flow all call. A stage describes its artifact from the resolved
Config, the artifact store and the versions of the roles it reads (a StageSpec; None when it has nothing to
build, e.g. a user checkpoint), without building anything: `run_stage` then builds or reuses it, and
`rge run --check` only names it (rge_core/preflight.py). A stage whose version exists returns at once, so
asking for `curate` alone also "runs" ingest, for free when its artifact is there.

    rge run --config configs/tiny.yaml [--stages curate]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rge_core.artifacts.store import ArtifactStore
from rge_core.builds import build_or_reuse
from rge_core.config.schema import Config
from rge_core.model.placement import placement_of
from rge_core.stages.registry import provider_before, stage, stages


def stage_names() -> list[str]:
    return [decl.name for decl in stages()]


def with_dependencies(wanted: list[str], config: Config) -> list[str]:
    """The requested stages plus everything they need, in pipeline order."""
    chosen: set[str] = set()

    def add(name: str) -> None:
        if name not in chosen:
            chosen.add(name)
            for role in stage(name).needed(config):
                add(provider_before(name, role))

    for name in wanted:
        add(name)
    return [name for name in stage_names() if name in chosen]


def plan(config: Config, wanted: list[str] | None = None) -> list[str]:
    """The stages to run for `wanted` (default: all), dependencies included, in order. Fails on a
    model.device / attn_implementation this machine cannot honour before the first stage starts."""
    unknown = sorted(set(wanted or []) - set(stage_names()))
    if unknown:
        raise ValueError(f"unknown stages {unknown}; choose from {stage_names()}")
    planned = with_dependencies(wanted or stage_names(), config)
    if any(stage(name).loads_model(config) for name in planned):
        placement_of(config.model)
    return planned


@dataclass(frozen=True)
class StageResult:
    version: str | None
    reused: bool  # the artifact was complete before the call: nothing was built


def run_stage(name: str, config: Config, store: ArtifactStore, done: dict[str, str | None]) -> StageResult:
    """Run one stage on the versions of the stages it needs (from `done`)."""
    built_before = len(store.built)
    spec = stage(name).spec(config, store, stage_inputs(name, config, done))
    version = build_or_reuse(store, spec) if spec is not None else None
    reused = version is None or version not in store.built[built_before:]
    return StageResult(version, reused)


def stage_inputs(name: str, config: Config, done: Mapping[str, str | None]) -> dict[str, str]:
    """role -> the version `name` reads for it, from `done` (stage -> version); a stage that built nothing (a user
    checkpoint) leaves its role out."""
    inputs = {}
    for role in stage(name).needed(config):
        version = done[provider_before(name, role)]
        if version is not None:
            inputs[role] = version
    return inputs


def version_of(results: dict[str, str | None], stage: str) -> str:
    """The artifact `stage` returned; only the model stage returns none (model.path names a checkpoint)."""
    version = results[stage]
    if version is None:
        raise LookupError(f"stage {stage} built no artifact: model.path names a checkpoint folder")
    return version


def run_pipeline(
    config: Config,
    wanted: list[str] | None = None,
    on_stage: Callable[[str, StageResult, float], None] | None = None,
) -> dict[str, str | None]:
    """Run the `wanted` stages (default: all) and what they depend on; returns stage -> artifact version id.
    `on_stage(name, result, seconds)` hears of each stage as it ends (the CLI's stage lines)."""
    store = ArtifactStore.from_config(config)
    results: dict[str, str | None] = {}
    for name in plan(config, wanted):
        started = time.monotonic()
        result = run_stage(name, config, store, results)
        results[name] = result.version
        if on_stage is not None:
            on_stage(name, result, time.monotonic() - started)
    return results
