"""Inputs the pipeline builds for itself: the embedded tiny model and the synthetic benchmark.

Both are artifacts like any stage output, so the demo and the tests reuse them across runs.
    rge run --config configs/tiny.yaml --stages model
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from rge_core.artifacts.local import build_folder, checkpoint_folder
from rge_core.artifacts.store import ArtifactStore
from rge_core.config.schema import Config
from rge_core.stages.runner import StageSpec, build_or_reuse

TINY_MODEL = "tiny"
_TINY_CODE = ["rge_core/model/tiny.py", "rge_core/model/tokenizer_build.py", "rge_core/model/assets"]
_SYNTH_CODE = ["rge_core/synth"]


def prepare_model(config: Config, store: ArtifactStore, inputs: dict[str, str]) -> str | None:
    """Build the tiny model artifact when `model.path` is "tiny"; None for a user checkpoint folder."""
    if config.model.path != TINY_MODEL:
        if not (Path(config.model.path) / "config.json").is_file():
            raise ValueError(
                f"model.path: {config.model.path} is not a checkpoint folder (no config.json; "
                f"or '{TINY_MODEL}' for the embedded tiny model)"
            )
        return None
    from rge_core.model.tiny import write_tiny_model  # heavy: transformers

    arch, seed = config.model.arch, config.model.tiny_seed
    settings = {"arch": arch, "seed": seed}

    def build(writer) -> dict:
        build_folder(writer, lambda folder: write_tiny_model(folder, arch, seed))
        return {"source": "tiny", **settings}

    return build_or_reuse(store, StageSpec("model", settings, {}, _TINY_CODE, build))


def model_folder(config: Config, store: ArtifactStore, model_id: str | None) -> Path:
    """Local checkpoint folder of a model artifact (trained ones keep it in a sub-folder), or of the
    configured user checkpoint when there is no artifact."""
    return Path(config.model.path) if model_id is None else checkpoint_folder(store, model_id)


def prepare_benchmark(config: Config, store: ArtifactStore) -> str:
    from rge_core.synth.writer import write_benchmark

    settings = asdict(config.data.synth)

    def build(writer) -> dict:
        summary: dict = {}
        build_folder(writer, lambda folder: summary.update(write_benchmark(folder, **settings)))
        return {"subsets": summary["subsets"]}

    return build_or_reuse(store, StageSpec("benchmark", settings, {}, _SYNTH_CODE, build))
