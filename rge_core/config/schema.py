"""Typed configuration of the whole pipeline. YAML files under configs/ fill these dataclasses
(see rge_core/config/loader.py); every stage receives the resolved Config and saves its own section
into its artifact's manifest."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunConfig:
    # Root of the versioned artifacts: a local folder or any fsspec URL. The RGE_ARTIFACTS environment
    # variable replaces this default when the config leaves it unset.
    artifacts_root: str = ""
    seed: int = 0


@dataclass
class SynthConfig:
    seed: int = 0
    train_per_subset: int = 64
    eval_per_subset: int = 32
    candidates: int = 8
    image_size: int = 64


@dataclass
class DataConfig:
    # "synthetic" builds the procedural benchmark; anything else is a local path or fsspec URL of an
    # MMEB-train-format folder.
    source: str = "synthetic"
    # Image root for MMEB paths; empty means the data folder itself.
    image_root: str = ""
    # Subsets to ingest; empty means every subset found.
    subsets: list[str] = field(default_factory=list)
    split: str = "original"
    synth: SynthConfig = field(default_factory=SynthConfig)


@dataclass
class ModelConfig:
    # "tiny" builds the embedded random tiny model (an artifact of its own); anything else is a
    # transformers checkpoint folder of the Qwen2-VL family.
    path: str = "tiny"
    arch: str = "qwen2-vl"
    tiny_seed: int = 0
    dtype: str = "float32"


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
