"""Scaled-out evaluation on a trained tiny model, each variant in a fresh artifact root and embedding cache:
eval.launch.nproc=2 (two shard processes under torchrun) against one process, eval.engine=vllm against hf, and
length-sorted batches against unsorted ones."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from rge_core.artifacts.local import local_folder
from rge_core.artifacts.store import ArtifactStore
from rge_core.config.schema import greedy_decoding
from rge_core.embedder import Embedder, EmbedSettings
from rge_core.evaluation.encode import Encoder, EncodeSettings
from rge_core.model.batching import in_batches
from rge_core.model.generation import rationales_from_tokens
from rge_core.model.inputs import Query, Target
from rge_core.pipeline import run_pipeline
from tests.helpers import SMALL_SYNTH, rge_command, small_config

# 6 subsets x 8 queries in chunks of 4: every dataset side has several chunks to deal out.
SETTINGS = [*SMALL_SYNTH, "data.synth.eval_per_subset=8", "eval.chunk_size=4", "eval.decoding.max_new_tokens=8"]


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    model = run_pipeline(small_config(str(root), *SETTINGS, "train.steps=4"), ["train"])["train"]
    return local_folder(ArtifactStore(str(root)).get(model)) / "model"


def evaluate(model: Path, folder: Path, *extra: str) -> tuple[dict, dict, Path]:
    """`rge eval` in a fresh root and cache: (results.json, manifest stats, artifact folder)."""
    sets = [f"run.artifacts_root={folder / 'artifacts'}", *SETTINGS, f"eval.model={model}", *extra]
    command = rge_command("eval", *sets)
    env = {**os.environ, "RGE_CACHE": str(folder / "cache"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    [artifact] = (folder / "artifacts" / "eval").iterdir()
    stats = json.loads((artifact / "manifest.json").read_text())["stats"]
    return json.loads((artifact / "results.json").read_text()), stats, artifact


def overall_p1(results: dict) -> float:
    return results["aggregates"]["overall"]["metrics"]["precision@1"]


@pytest.mark.slow
def test_two_shard_processes_give_the_one_process_scores(trained_model, tmp_path):
    one, _, _ = evaluate(trained_model, tmp_path / "one", "eval.reasoning=false")
    two, stats, artifact = evaluate(trained_model, tmp_path / "two", "eval.reasoning=false", "eval.launch.nproc=2")
    assert two == one
    assert stats["chunks_encoded"] == 0  # the stage only gathered: the shards encoded every chunk
    log = (artifact / "shards" / "shards.log").read_text()
    for rank in (0, 1):
        [line] = [line for line in log.splitlines() if line.startswith(f"eval shard {rank} of 2:")]
        assert int(line.split(":")[1].split()[0]) > 0, line  # both shared the work


@pytest.mark.slow
def test_sharded_reasoning_and_vllm_rationales_agree_with_one_hf_process(trained_model, tmp_path):
    hf, _, hf_artifact = evaluate(trained_model, tmp_path / "hf")
    sharded, _, _ = evaluate(trained_model, tmp_path / "sharded", "eval.launch.nproc=2")
    vllm, _, vllm_artifact = evaluate(trained_model, tmp_path / "vllm", "eval.engine=vllm")
    assert abs(overall_p1(sharded) - overall_p1(hf)) <= 0.01
    assert abs(overall_p1(vllm) - overall_p1(hf)) <= 0.01
    assert vllm_artifact.name != hf_artifact.name  # the engine is part of the version


@pytest.mark.slow
def test_vllm_greedy_rationales_equal_transformers(lively_model_dir, tmp_path):
    from tests.helpers import run_result_script

    runs = run_result_script("eval_vllm_script.py", str(lively_model_dir), str(tmp_path))
    assert runs["vllm"] == runs["hf"]
    assert len({text for text, _, _ in runs["hf"]}) > 1  # the prompt matters: the check is not vacuous


def test_rationales_are_cut_at_the_first_emb_and_budget_hits_flagged(tiny_rge):
    emb, tokenizer = tiny_rge.emb.token_id, tiny_rge.tokenizer
    words = tokenizer("red square", add_special_tokens=False)["input_ids"]
    batch = rationales_from_tokens(tokenizer, [[*words, emb, *words], words], emb)
    assert batch.texts == ["red square", "red square"]
    assert batch.num_tokens == [len(words)] * 2 and batch.budget_hit == [False, True]


def test_in_batches_returns_results_in_item_order():
    items = list("abcdefg")
    lengths = [5, 1, 7, 3, 2, 6, 4]
    seen = []

    def run(batch):
        seen.append(batch)
        return [item.upper() for item in batch]

    assert in_batches(items, 3, run, lengths) == list("ABCDEFG")
    assert seen == [["b", "e", "d"], ["g", "a", "f"], ["c"]]  # by ascending length


@pytest.mark.slow
def test_length_sorted_batches_pad_less_and_embed_the_same(tiny_rge, tmp_path):
    rng = np.random.default_rng(0)
    texts = [" ".join(["word"] * int(n)) for n in rng.integers(1, 60, size=16)]
    queries = [Query(t) for t in texts]
    targets = [Target(t) for t in texts]
    padded = []
    original = tiny_rge.embed_prompts

    def counting(prompts, images, **options):
        lengths = [len(tiny_rge.tokenizer(p)["input_ids"]) for p in prompts]
        padded.append(sum(max(lengths) - n for n in lengths))
        return original(prompts, images, **options)

    results = {}
    tiny_rge.embed_prompts = counting
    try:
        for sort in (False, True):
            embedder = Embedder(tiny_rge, EmbedSettings(greedy_decoding(4), batch_size=4, sort_by_length=sort))
            settings = EncodeSettings(reasoning=False, chunk_size=16)
            encoder = Encoder(lambda e=embedder: e, settings, tmp_path / str(sort))
            padded.clear()
            q = encoder.encode("queries", "q", queries).embeddings
            c = encoder.encode("candidates", "c", targets).embeddings
            results[sort] = (q, c, sum(padded))
    finally:
        tiny_rge.embed_prompts = original
    assert results[True][2] < results[False][2] / 2  # far fewer pad tokens
    for unsorted, sorted_ in zip(results[False][:2], results[True][:2], strict=True):
        torch.testing.assert_close(torch.from_numpy(sorted_), torch.from_numpy(unsorted), rtol=0, atol=1e-5)


def test_a_damaged_cache_chunk_is_encoded_again(tiny_rge, tmp_path):
    settings = EncodeSettings(reasoning=False, chunk_size=4)
    targets = [Target(f"item {k}") for k in range(10)]
    encoder = Encoder(lambda: Embedder(tiny_rge, EmbedSettings(batch_size=4)), settings, tmp_path)
    first = encoder.encode("candidates", "c", targets)
    assert first.chunks_encoded == 3 and encoder.encode("candidates", "c", targets).chunks_encoded == 0
    damaged, truncated = sorted(tmp_path.glob("c-*.npz"))[:2]
    damaged.write_bytes(b"not a chunk")
    truncated.write_bytes(truncated.read_bytes()[:100])
    again = encoder.encode("candidates", "c", targets)
    assert again.chunks_encoded == 2
    np.testing.assert_allclose(again.embeddings, first.embeddings, rtol=0, atol=1e-6)


def test_a_corrupt_image_is_a_reject_with_its_reason_and_the_others_are_encoded(tiny_rge, tmp_path):
    from PIL import Image

    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    Image.new("RGB", (28, 28), "red").save(good)
    bad.write_bytes(b"\x89PNG not really")
    settings = EncodeSettings(reasoning=False, chunk_size=2)
    encoder = Encoder(lambda: Embedder(tiny_rge, EmbedSettings(batch_size=2)), settings, tmp_path / "cache")
    queries = [Query("<|image_1|> a", good), Query("<|image_1|> b", good), Query("<|image_1|> c", bad)]
    encoded = encoder.encode("queries", "SynthColor-queries", queries)
    assert encoded.errors == ["", "", f"image '{bad}' is not an image Pillow can read"]
    assert not encoded.embeddings[2].any() and np.linalg.norm(encoded.embeddings[0]) == pytest.approx(1.0, abs=1e-5)
