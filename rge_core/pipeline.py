"""The stages in order, without any orchestrator: what `rge run`, the tests and (later) the Prefect
flow all call. Each stage takes the resolved Config and the artifact store and returns its version id.

    rge run --config configs/tiny.yaml
"""

from __future__ import annotations

from typing import Callable

from rge_core.artifacts.store import ArtifactStore
from rge_core.config.schema import Config
from rge_core.stages.ingest import ingest
from rge_core.stages.prepare import prepare_model

Stage = Callable[[Config, ArtifactStore], "str | None"]

STAGES: dict[str, Stage] = {
    "model": prepare_model,
    "ingest": ingest,
}


def run_pipeline(config: Config, stages: list[str] | None = None) -> dict[str, str | None]:
    """Run `stages` (default: all, in pipeline order); returns stage -> artifact version id."""
    unknown = sorted(set(stages or []) - set(STAGES))
    if unknown:
        raise ValueError(f"unknown stages {unknown}; choose from {list(STAGES)}")
    store = ArtifactStore.from_config(config)
    return {name: stage(config, store) for name, stage in STAGES.items() if not stages or name in stages}
