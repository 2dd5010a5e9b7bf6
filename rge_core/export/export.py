"""`rge export MODEL DEST [--push REPO]`: a model artifact as a folder that plain transformers loads and
generates with, plus its model card.

- weights: the artifact's checkpoint, whose LoRA/DoRA adapters the trainer merged when it saved it
  (rge_core/training/checkpoints.py), in the training dtype (train.precision of the model's manifest);
- processor and tokenizer with `<emb>` (added, with an embedding row, when the checkpoint lacks it) and the
  image bounds model.min_pixels / max_pixels;
- generation_config.json with the eval's decoding: greedy, eval.decoding.max_new_tokens and repetition_penalty,
  `<emb>` as the end of generation;
- README.md, the model card (rge_core/export/card.py).

The folder is built beside DEST and renamed into place when complete; an existing non-empty DEST is refused.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from rge_core.config.schema import Config
from rge_core.embedder import EmbedSettings
from rge_core.embedding.locate import ModelNotFound, locate_model
from rge_core.export.card import CardFacts, model_card
from rge_core.export.hub import HuggingFaceModelHub, ModelHub
from rge_core.export.lineage import Lineage, model_lineage
from rge_core.model.processor import image_size_kwargs


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    dtype: str
    url: str | None  # the Hub commit, with --push


def _write_model(folder: Path, checkpoint: Path, dtype: str, config: Config, settings: EmbedSettings) -> str:
    """Weights, processor, tokenizer and generation config into `folder`; returns the weights' dtype."""
    from transformers import AutoModelForImageTextToText, GenerationConfig

    from rge_core.model.decoding import generate_kwargs
    from rge_core.model.processor import load_processor
    from rge_core.model.rge_model import ensure_emb_token

    model = AutoModelForImageTextToText.from_pretrained(checkpoint, dtype=dtype)
    processor = load_processor(str(checkpoint), config.model.min_pixels, config.model.max_pixels)
    emb = ensure_emb_token(model, processor.tokenizer)
    model.generation_config = GenerationConfig(
        **generate_kwargs(settings.decoding.knobs),
        max_new_tokens=settings.decoding.max_new_tokens,
        eos_token_id=emb.token_id,
        pad_token_id=processor.tokenizer.pad_token_id,
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(model.dtype).removeprefix("torch.")


def _lineage(model: str, root: str | None) -> tuple[Path, Lineage]:
    source = locate_model(model, root, "MODEL")
    if source.artifact is None:
        raise ModelNotFound(f"MODEL: {model} is a checkpoint folder; export takes a model artifact (id or folder)")
    return source.folder, model_lineage(source.artifact)


def export_model(
    config: Config,
    model: str,
    dest: Path,
    push: str = "",
    base_model: str = "",
    hub: ModelHub | None = None,
) -> ExportResult:
    """Export model artifact `model` (id under the config's root, or its folder) to `dest`; with `push`, upload
    it to that Hub repo. `base_model` names the base's Hub repo in the card (default: derived when known)."""
    from rge_core.training.setup import training_dtype

    image_size_kwargs(config.model.min_pixels, config.model.max_pixels)
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FileExistsError(f"DEST: {dest} exists and is not an empty folder; choose another or remove it")
    checkpoint, lineage = _lineage(model, config.run.artifacts_root or None)
    precision = lineage.model.config.get("precision")  # trained artifacts; a base model keeps its own dtype
    dtype = training_dtype(precision) if precision else "auto"
    settings = EmbedSettings.of(config.eval)
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = dest.parent / f".{dest.name}.export.tmp"  # left by a killed export: start again
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        written = _write_model(scratch, checkpoint, dtype, config, settings)
        facts = CardFacts(
            name=push.rsplit("/", 1)[-1] if push else dest.name,
            model_ref=push or str(dest),
            on_hub=bool(push),
            settings=settings,
            dtype=written,
            base_model=base_model or lineage.base_hub_id(),
        )
        (scratch / "README.md").write_text(model_card(lineage, facts), encoding="utf-8")
        if dest.exists():
            dest.rmdir()  # empty, checked above
        os.replace(scratch, dest)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    url = None
    if push:
        url = (hub or HuggingFaceModelHub()).upload(push, dest, f"rge export of {lineage.model.id}")
    return ExportResult(dest, written, url)
