"""The `rge` Prefect flow: one task per stage, each calling the rge_core stage function and returning its
artifact version. Skipping is the artifact store's job (content-hashed versions), so Prefect's own result
cache is off: a rerun with nothing changed finds every version complete and builds nothing.

    prefect deployment run rge/full-pipeline                       (after `rge serve`, see prefect.yaml)
    python -m flows.rge_flow --config configs/tiny.yaml            (one run, no deployment)
"""

from __future__ import annotations

import argparse
import os

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.publish import ProgressArtifact, publish_stage
from rge_core import progress
from rge_core.allowed_roots import PROJECT_ROOT, load_checked_config
from rge_core.artifacts.store import ArtifactStore
from rge_core.pipeline import plan, run_stage, stage_names


@task(cache_policy=NO_CACHE, task_run_name="{name}")
def stage_task(name: str, config, done: dict[str, str | None]) -> str | None:
    store = ArtifactStore.from_config(config)
    with progress.listening(ProgressArtifact(name)):
        result = run_stage(name, config, store, done)
    get_run_logger().info("%s: %s %s", name, "reused" if result.reused else "built", result.version)
    if result.version:
        publish_stage(name, store.get(result.version), result.reused)
    return result.version


@flow(name="rge", log_prints=True)
def rge(
    config: str | list[str] = "configs/tiny.yaml",
    stages: list[str] | None = None,
    prompt_set: str = "",
    overrides: list[str] | None = None,
) -> dict[str, str | None]:
    """Run `stages` (default: the whole pipeline) and what they need, reusing every artifact that exists.

    config: a YAML preset, or a list of them (a preset, then overlays such as configs/rehearsal.yaml, later
    over earlier; relative paths are taken from the project root); prompt_set: a prompt set
    folder (curation.prompt_set); overrides: dotted `key=value` settings, as `rge run --set`. Every path
    they name must be under the project, the artifacts root or RGE_ALLOWED_ROOTS (rge_core/allowed_roots.py).
    """
    os.chdir(PROJECT_ROOT)  # configs name prompt sets and data relative to the project
    extra = [f"curation.prompt_set={prompt_set}"] if prompt_set else []
    # Parameters come from whoever reaches the Prefect API: the paths they name stay under the allowed roots.
    resolved = load_checked_config(config, [*(overrides or []), *extra])
    done: dict[str, str | None] = {}
    for name in plan(resolved, stages or stage_names()):  # one task per declared stage
        done[name] = stage_task(name, resolved, done)
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", help="YAML preset; repeat for overlays (default tiny)")
    parser.add_argument("--stages", default="", help="comma-separated; default all")
    parser.add_argument("--prompt-set", default="")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="dotted key=value")
    args = parser.parse_args()
    print(
        rge(
            args.config or "configs/tiny.yaml",
            [s for s in args.stages.split(",") if s] or None,
            args.prompt_set,
            args.overrides,
        )
    )


if __name__ == "__main__":
    main()
