"""The Qwen2.5-VL-3B preset follows the RGE release where the release fixes a value, and the LoRA settings
it relies on change what PEFT builds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForImageTextToText
from typer.testing import CliRunner

from rge_core.cli.main import app
from rge_core.config.loader import load_config
from rge_core.config.schema import LoraConfig, TrainConfig
from rge_core.model.tiny import write_tiny_model
from rge_core.training.setup import apply_peft

PRESET = Path("configs/qwen2.5-vl-3b.yaml")
# src/arguments.py of the release: lora_target_modules, matched by PEFT as module-name suffixes.
RELEASE_TARGETS = "qkv_proj,o_proj,gate_up_proj,down_proj,k_proj,q_proj,out_proj,v_proj".split(",")


def test_config_show_prints_the_release_recipe():
    shown = CliRunner().invoke(app, ["config", "show", "--config", str(PRESET)])
    assert shown.exit_code == 0, shown.output
    for line in (
        "use_dora: true",
        "alpha: 64",
        "rank: 16",
        "dropout: 0.1",
        "init_weights: gaussian",
        "batching: per-subset",
        "min_pixels: 200704",
        "max_pixels: 802816",
        "temperature: 0.02",
        "repetition_penalty: 1.05",
        "precision: bf16",
    ):
        assert re.search(rf"^\s*{re.escape(line)}$", shown.output, re.M), line
    assert re.search(r"^\s*generator_model: \S+", shown.output, re.M)


def test_preset_values():
    config = load_config(PRESET)
    assert config.model.min_pixels == 256 * 28 * 28 and config.model.max_pixels == 1024 * 28 * 28
    assert config.curation.generator_model != config.model.path  # a stronger oracle than the student
    assert config.eval.decoding.max_new_tokens == 128 and not config.train.hard_negatives


@pytest.fixture(scope="module")
def tiny_qwen25(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny-qwen2.5-vl"), arch="qwen2.5-vl", seed=0)


def adapted_modules(model) -> set[str]:
    return {
        name.removeprefix("base_model.model.")
        for name, module in model.named_modules()
        if hasattr(module, "lora_A") and module.lora_A
    }


def test_preset_targets_exactly_the_modules_the_release_list_selects(tiny_qwen25):
    base = AutoModelForImageTextToText.from_pretrained(tiny_qwen25)
    release = {name for name, _ in base.named_modules() if any(name.endswith("." + t) for t in RELEASE_TARGETS)}
    peft_model = apply_peft(base, load_config(PRESET).train)
    assert adapted_modules(peft_model) == release
    assert any(".visual." in name for name in release) and any(".language_model." in name for name in release)


def lora_model(folder: Path, **lora):
    torch.manual_seed(0)
    base = AutoModelForImageTextToText.from_pretrained(folder)
    return apply_peft(base, TrainConfig(lora=LoraConfig(rank=16, **lora)))


def test_init_weights_and_dora_change_what_peft_builds(tiny_qwen25):
    default = lora_model(tiny_qwen25)
    gaussian = lora_model(tiny_qwen25, init_weights="gaussian")
    a_default = next(p for n, p in default.named_parameters() if "lora_A" in n)
    a_gaussian = next(p for n, p in gaussian.named_parameters() if "lora_A" in n)
    assert a_gaussian.std().item() == pytest.approx(1 / 16, rel=0.2)  # PEFT's gaussian init: N(0, 1/r)
    assert not torch.allclose(a_default, a_gaussian)
    dora = lora_model(tiny_qwen25, use_dora=True)
    assert any("lora_magnitude_vector" in n for n, _ in dora.named_parameters())
    assert not any("lora_magnitude_vector" in n for n, _ in default.named_parameters())
    with pytest.raises(ValueError, match="train.lora.init_weights"):
        lora_model(tiny_qwen25, init_weights="orthogonal-ish")
