"""The model stage: the embedded tiny model, an artifact like any stage output (the demo and the tests reuse
it across runs); a user checkpoint folder (model.path) needs no artifact.

    rge run --config configs/tiny.yaml --stages model
"""

from __future__ import annotations

from pathlib import Path

from rge_core.artifacts.local import build_folder
from rge_core.artifacts.store import ArtifactStore
from rge_core.builds import StageSpec
from rge_core.config.schema import Config, versioned
from rge_core.sources import TINY_MODEL
from rge_core.stages.declaration import StageDecl

_TINY_CODE = ["rge_core/model/tiny.py", "rge_core/model/tokenizer_build.py", "rge_core/model/assets"]


def model_spec(config: Config, store: ArtifactStore, inputs: dict[str, str]) -> StageSpec | None:
    """The tiny model artifact when `model.path` is "tiny"; None for a user checkpoint folder (checked here)."""
    if config.model.path != TINY_MODEL:
        if not (Path(config.model.path) / "config.json").is_file():
            raise ValueError(
                f"model.path: {config.model.path} is not a checkpoint folder (no config.json; "
                f"or '{TINY_MODEL}' for the embedded tiny model)"
            )
        return None
    arch, seed = config.model.arch, config.model.tiny_seed
    settings = versioned(config.model)

    def build(writer) -> dict:
        from rge_core.model.tiny import write_tiny_model  # heavy: transformers

        build_folder(writer, lambda folder: write_tiny_model(folder, arch, seed))
        return {"source": "tiny", "arch": arch, "seed": seed}

    return StageSpec("model", settings, {}, _TINY_CODE, build)


STAGE = StageDecl(
    "model",
    provides="base-model",
    spec=model_spec,
    section="model",
    command="",  # `rge tiny-model OUT` writes one by hand; every other command builds it when needed
    help="Build the embedded tiny model (model.path: tiny); a checkpoint folder needs no artifact.",
)
