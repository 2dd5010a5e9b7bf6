"""`rge tiny-model`: deterministic files that load and generate in transformers and in vLLM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor
from typer.testing import CliRunner

from rge_core.cli.main import app
from rge_core.model.special_tokens import EMB_TOKEN
from rge_core.model.tiny import ARCHS, write_tiny_model
from tests.helpers import run_result_script

PROMPT = "<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n"


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_writes_identical_files_and_another_seed_other_weights(tmp_path):
    first = folder_bytes(write_tiny_model(tmp_path / "a", seed=0))
    again = folder_bytes(write_tiny_model(tmp_path / "b", seed=0))
    other = folder_bytes(write_tiny_model(tmp_path / "c", seed=1))
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= set(first)
    assert first == again
    assert other["model.safetensors"] != first["model.safetensors"]
    assert other["tokenizer.json"] == first["tokenizer.json"]


@pytest.fixture(scope="module")
def arch_dirs(tmp_path_factory) -> dict[str, Path]:
    return {arch: write_tiny_model(tmp_path_factory.mktemp(arch), arch=arch, seed=0) for arch in ARCHS}


def greedy_transformers(model_dir: Path) -> dict[str, list[int]]:
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    image = Image.new("RGB", (64, 64), (200, 30, 30))
    text = processor(text=[PROMPT.format(content="How many shapes are there?")], return_tensors="pt")
    with_image = processor(
        text=[PROMPT.format(content="<|vision_start|><|image_pad|><|vision_end|>What colour?")],
        images=[image],
        return_tensors="pt",
    )
    out = {}
    for name, batch in (("text", text), ("image", with_image)):
        with torch.no_grad():
            sequences = model.generate(**batch, max_new_tokens=6, do_sample=False)
        out[name] = sequences[0, batch["input_ids"].shape[1] :].tolist()
    return out


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_loads_in_transformers_as_the_real_classes(arch_dirs, arch):
    model_dir = arch_dirs[arch]
    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    processor = AutoProcessor.from_pretrained(model_dir)
    assert type(model) is ARCHS[arch].model_class
    assert model.config.text_config.hidden_size // model.config.text_config.num_attention_heads >= 64
    tokenizer = processor.tokenizer
    assert EMB_TOKEN in tokenizer.get_vocab() and EMB_TOKEN in tokenizer.all_special_tokens
    assert model.config.image_token_id == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    generated = greedy_transformers(model_dir)
    assert [len(tokens) for tokens in generated.values()] == [6, 6]


@pytest.mark.slow
def test_loads_and_generates_in_vllm_like_transformers(arch_dirs):
    dirs = [str(arch_dirs[arch]) for arch in sorted(ARCHS)]
    results = run_result_script("vllm_smoke.py", *dirs)
    for model_dir in dirs:
        reference = greedy_transformers(Path(model_dir))
        assert results[model_dir]["text"] == reference["text"], model_dir
        assert len(results[model_dir]["image"]) == 6


def test_cli_writes_a_loadable_folder_and_rejects_unknown_arch(tmp_path):
    runner = CliRunner()
    done = runner.invoke(app, ["tiny-model", str(tmp_path / "m"), "--arch", "qwen2.5-vl", "--seed", "3"])
    assert done.exit_code == 0, done.output
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model_type"] == "qwen2_5_vl"
    bad = runner.invoke(app, ["tiny-model", str(tmp_path / "x"), "--arch", "llama"])
    assert bad.exit_code != 0 and not (tmp_path / "x").exists()
