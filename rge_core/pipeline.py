"""The stages in dependency order, without any orchestrator: what `rge run`, the tests and the Prefect
flow all call. A stage describes its artifact from the resolved Config, the artifact store and the version ids
of the stages it depends on (a StageSpec; None when it has nothing to build, e.g. a user checkpoint), without
building anything: `run_stage` then builds or reuses it, and `rge run --check` only names it
(rge_core/preflight.py). A stage whose version exists returns at once, so asking for `curate` alone also "runs"
ingest, for free when its artifact is there.

    rge run --config configs/tiny.yaml [--stages curate]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rge_core.artifacts.store import ArtifactStore
from rge_core.builds import StageSpec, build_or_reuse
from rge_core.config.schema import Config
from rge_core.model.placement import placement_of
from rge_core.stages.assemble import assemble_spec
from rge_core.stages.curate import curate_spec
from rge_core.stages.evaluate import evaluate_spec
from rge_core.stages.ingest import ingest_spec
from rge_core.stages.prepare import model_spec
from rge_core.stages.train import train_spec

# A stage gets the versions of the stages it needs; one that built nothing (a user checkpoint) is absent.
SpecFn = Callable[[Config, ArtifactStore, dict[str, str]], StageSpec | None]


@dataclass(frozen=True)
class Stage:
    spec: SpecFn
    needs: tuple[str, ...] = ()

    def needed(self, config: Config) -> tuple[str, ...]:
        # Evaluating a named model needs no training run.
        return tuple(n for n in self.needs if not (n == "train" and config.eval.model))


STAGES: dict[str, Stage] = {
    "model": Stage(model_spec),
    "ingest": Stage(ingest_spec),
    "curate": Stage(curate_spec, needs=("ingest", "model")),
    "assemble": Stage(assemble_spec, needs=("ingest", "curate")),
    "train": Stage(train_spec, needs=("assemble", "model")),
    "evaluate": Stage(evaluate_spec, needs=("train",)),
}


def with_dependencies(stages: list[str], config: Config) -> list[str]:
    """The requested stages plus everything they need, in pipeline order."""
    wanted: set[str] = set()

    def add(name: str) -> None:
        if name not in wanted:
            wanted.add(name)
            for need in STAGES[name].needed(config):
                add(need)

    for name in stages:
        add(name)
    return [name for name in STAGES if name in wanted]


def _loads_a_model(name: str, config: Config) -> bool:
    return name in ("train", "evaluate") or (name == "curate" and config.curation.generator == "transformers")


def plan(config: Config, stages: list[str] | None = None) -> list[str]:
    """The stages to run for `stages` (default: all), dependencies included, in order. Fails on a
    model.device / attn_implementation this machine cannot honour before the first stage starts."""
    unknown = sorted(set(stages or []) - set(STAGES))
    if unknown:
        raise ValueError(f"unknown stages {unknown}; choose from {list(STAGES)}")
    planned = with_dependencies(stages or list(STAGES), config)
    if any(_loads_a_model(name, config) for name in planned):
        placement_of(config.model)
    return planned


@dataclass(frozen=True)
class StageResult:
    version: str | None
    reused: bool  # the artifact was complete before the call: nothing was built


def run_stage(name: str, config: Config, store: ArtifactStore, done: dict[str, str | None]) -> StageResult:
    """Run one stage on the versions of the stages it needs (from `done`)."""
    built_before = len(store.built)
    spec = STAGES[name].spec(config, store, stage_inputs(name, config, done))
    version = build_or_reuse(store, spec) if spec is not None else None
    reused = version is None or version not in store.built[built_before:]
    return StageResult(version, reused)


def stage_inputs(name: str, config: Config, done: Mapping[str, str | None]) -> dict[str, str]:
    """The versions of the stages `name` needs, from `done`; one that built nothing (a user checkpoint) is absent."""
    return {need: version for need in STAGES[name].needed(config) if (version := done[need]) is not None}


def version_of(results: dict[str, str | None], stage: str) -> str:
    """The artifact `stage` returned; only the model stage returns none (model.path names a checkpoint)."""
    version = results[stage]
    if version is None:
        raise LookupError(f"stage {stage} built no artifact: model.path names a checkpoint folder")
    return version


def run_pipeline(
    config: Config,
    stages: list[str] | None = None,
    on_stage: Callable[[str, StageResult, float], None] | None = None,
) -> dict[str, str | None]:
    """Run `stages` (default: all) and what they depend on; returns stage -> artifact version id.
    `on_stage(name, result, seconds)` hears of each stage as it ends (the CLI's stage lines)."""
    store = ArtifactStore.from_config(config)
    results: dict[str, str | None] = {}
    for name in plan(config, stages):
        started = time.monotonic()
        result = run_stage(name, config, store, results)
        results[name] = result.version
        if on_stage is not None:
            on_stage(name, result, time.monotonic() - started)
    return results
