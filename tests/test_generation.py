"""Generators (rge_core.generation): shared chat rendering, transformers, vLLM (one engine start, in a
subprocess) and reference texts, on a tiny random Qwen2-VL with real components."""

from __future__ import annotations

import json
import re
from dataclasses import asdict

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rge_core.config.schema import DecodingConfig
from rge_core.generation import GenerationRequest, build_generator
from rge_core.generation.chat import load_chat_processor, render_prompt
from rge_core.generation.hf_engine import TransformersGenerator, batch_seed
from rge_core.model.inputs import Query, Target
from rge_core.model.placement import resolve_placement
from rge_core.model.rge_model import RGEModel
from rge_core.model.special_tokens import QWEN_IMAGE_TOKENS
from tests.helpers import run_result_script

GREEDY = DecodingConfig(temperature=0.0, max_new_tokens=10)
CPU_FP32 = resolve_placement("cpu", "float32")
BOUNDS = {"min_pixels": 112 * 112, "max_pixels": 224 * 224}  # as in vllm_generation_script.py


@pytest.fixture(scope="module")
def requests(tmp_path_factory) -> list[GenerationRequest]:
    """Two-image, one-image and text-only requests (one with a system prompt)."""
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for index, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        paths.append(str(folder / f"{index}.png"))
        Image.new("RGB", (64, 64), colour).save(paths[-1])

    def image(i: int) -> dict:
        return {"type": "image", "path": paths[i]}

    def text(t: str) -> dict:
        return {"type": "text", "text": t}

    return [
        GenerationRequest("pair/0", [image(0), image(1), text("Explain how the query leads to the target.")], 11),
        GenerationRequest("pair/1", [text("Which colour is the largest shape?")], 12, system="Be brief."),
        GenerationRequest("pair/2", [image(2), text("Describe the scene.")], 13),
        GenerationRequest("pair/3", [text("Query: a red circle."), image(1), image(0), text("Target?")], 14),
        GenerationRequest("pair/4", [image(1), text("Describe the scene.")], 15),
    ]


def test_render_prompt_places_image_tokens_in_order_and_ends_with_the_assistant_header(tiny_model_dir, requests):
    processor, template = load_chat_processor(str(tiny_model_dir))
    prompt, images = render_prompt(processor, template, requests[3].parts, system="Be exact.")
    assert prompt.startswith("<|im_start|>system\nBe exact.<|im_end|>\n<|im_start|>user\n")
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")
    body = "Query: a red circle." + QWEN_IMAGE_TOKENS + QWEN_IMAGE_TOKENS + "Target?"
    assert body in prompt and prompt.count("<|image_pad|>") == 2
    assert [image.mode for image in images] == ["RGB", "RGB"]
    assert [image.getpixel((0, 0)) for image in images] == [(30, 200, 30), (200, 30, 30)]
    # The tokenizer alone renders the same text; no images, no image tokens.
    assert render_prompt(processor.tokenizer, template, requests[1].parts)[1] == []
    with pytest.raises(ValueError, match="at most 2"):
        render_prompt(processor, template, requests[0].parts + [requests[2].parts[0]])


@pytest.fixture(scope="module")
def hf_generator(lively_model_dir):
    generator = build_generator("transformers", model=str(lively_model_dir), placement=CPU_FP32, batch_size=3)
    yield generator
    generator.close()


def test_transformers_batches_in_order_within_budget_and_batching_keeps_greedy_output(hf_generator, requests):
    batched = hf_generator.generate(requests, GREEDY)
    assert [r.request_id for r in batched] == [r.request_id for r in requests]
    assert all(0 < r.num_tokens <= GREEDY.max_new_tokens and r.finish_reason in ("stop", "length") for r in batched)
    assert all(r.finish_reason == "length" for r in batched if r.num_tokens == GREEDY.max_new_tokens and r.text)
    assert len({r.text for r in batched}) > 1  # the prompt matters: the greedy check below is not vacuous
    one_by_one = [hf_generator.generate([request], GREEDY)[0] for request in requests]
    assert one_by_one == batched


def test_transformers_seeds_make_sampling_reproducible_and_regex_only_warns(hf_generator, requests):
    sampled = DecodingConfig(temperature=1.0, top_p=1.0, max_new_tokens=6)
    first = hf_generator.generate(requests, sampled)
    assert hf_generator.generate(requests, sampled) == first
    with pytest.warns(UserWarning, match="cannot constrain decoding"):
        assert hf_generator.generate(requests, sampled, regex="[a-z]+") == first


def test_transformers_cuts_each_row_at_its_end_token(hf_generator, requests, monkeypatch):
    full = hf_generator.generate(requests, GREEDY)
    # Make request 2's first greedy token the end token: it stops at once, the others run on (padded rows).
    (stop_id,) = hf_generator.tokenizer.encode(
        hf_generator.generate(requests[2:3], DecodingConfig(temperature=0.0, max_new_tokens=1))[0].text,
        add_special_tokens=False,
    )
    monkeypatch.setattr(hf_generator, "eos_id", stop_id)
    cut = hf_generator.generate(requests, GREEDY)
    assert (cut[2].text, cut[2].num_tokens, cut[2].finish_reason) == ("", 1, "stop")
    assert any(r.finish_reason == "length" for r in cut)
    for whole, part in zip(full, cut, strict=True):
        assert whole.text.startswith(part.text)
        assert part == whole if part.finish_reason == "length" else part.num_tokens <= whole.num_tokens


def boost_token_for_row(model, row: int, token: int):
    """Make `token` the certain choice for one batch row (a forward hook on the LM head)."""

    def hook(module, inputs, output):
        output = output.clone()
        output[row, :, token] += 1e4
        return output

    return model.lm_head.register_forward_hook(hook)


def test_transformers_generator_and_model_core_generate_alike(hf_generator, lively_model_dir, requests, monkeypatch):
    """Curation's generator and the model core's rationales run one generate loop: on the same prompts, stopping
    at the same token and seeded alike, they agree on texts, token counts and stop flags, greedy and sampled."""
    rge = RGEModel.load(str(lively_model_dir))
    chosen = [requests[2], GenerationRequest("pair/1", requests[1].parts, 12), requests[4]]
    queries = [
        Query("<|image_1|>Describe the scene.", requests[2].parts[0]["path"]),
        Query("Which colour is the largest shape?"),
        Query("<|image_1|>Describe the scene.", requests[4].parts[0]["path"]),
    ]
    rendered = [render_prompt(hf_generator.processor, hf_generator.chat_template, r.parts)[0] for r in chosen]
    assert rendered == [rge.generation_prompt(q) for q in queries]  # so any difference below is the loop's
    emb = rge.emb.token_id
    monkeypatch.setattr(hf_generator, "eos_id", emb)
    hooks = [boost_token_for_row(model, 1, emb) for model in (rge.model, hf_generator.model)]  # row 1 stops at once
    try:
        for sampling in (GREEDY, DecodingConfig(temperature=1.0, top_p=1.0, max_new_tokens=8)):
            results = hf_generator.generate(chosen, sampling)
            seed = batch_seed([r.seed for r in chosen])
            rationales = rge.generate_rationales(queries, sampling.max_new_tokens, sampling.knobs, seed=seed)
            assert [r.text for r in results] == rationales.texts
            assert [r.finish_reason == "length" for r in results] == rationales.budget_hit == [True, False, True]
            assert [r.num_tokens - (r.finish_reason == "stop") for r in results] == rationales.num_tokens
    finally:
        for hook in hooks:
            hook.remove()


@pytest.mark.slow
def test_vllm_per_request_seeds_regex_and_greedy_parity(lively_model_dir, requests, hf_generator, tmp_path):
    spec = tmp_path / "requests.json"
    spec.write_text(json.dumps([asdict(r) for r in requests]))
    runs = run_result_script("vllm_generation_script.py", str(lively_model_dir), str(spec))
    ids = [r.request_id for r in requests]
    for name in ("sampled", "reseeded", "regex", "greedy"):
        assert [row["request_id"] for row in runs[name]] == ids, name

    def texts(name: str) -> dict[str, str]:
        return {row["request_id"]: row["text"] for row in runs[name]}

    # Same request seed -> same text, whatever the batch order or company; another seed -> other texts.
    assert texts("shuffled") == texts("sampled")
    assert texts("alone")[ids[0]] == texts("sampled")[ids[0]]
    assert sum(texts("reseeded")[i] != texts("sampled")[i] for i in ids) >= len(ids) - 1
    assert all(row["num_tokens"] <= 12 for row in runs["sampled"])

    for row in runs["regex"]:
        assert re.fullmatch(r"Reasoning: [a-z ]{10,40}", row["text"]), row
        assert row["finish_reason"] == "stop"

    # Both engines render through chat.py: identical prompts, so identical greedy tokens (fp32).
    hf_greedy = hf_generator.generate(requests, GREEDY)
    assert [row["text"] for row in runs["greedy"]] == [r.text for r in hf_greedy]
    assert [row["prompt_tokens"] for row in runs["greedy"]] == [r.prompt_tokens for r in hf_greedy]

    # Image bounds: vLLM, the transformers generator and the RGE model (training, eval) turn each image into
    # the same number of tokens, and the bounds change that number (64 px images: 4 tokens -> 16).
    bounded = TransformersGenerator(str(lively_model_dir), CPU_FP32, **BOUNDS)
    assert [row["prompt_tokens"] for row in runs["bounded"]] == [
        r.prompt_tokens for r in bounded.generate(requests, GREEDY)
    ]
    images = [sum(part["type"] == "image" for part in r.parts) for r in requests]
    grown = [b["prompt_tokens"] - g["prompt_tokens"] for b, g in zip(runs["bounded"], runs["greedy"], strict=True)]
    assert grown == [12 * n for n in images] and any(images)
    rge = RGEModel.load(str(lively_model_dir), **BOUNDS)
    image = requests[0].parts[0]["path"]  # 64 x 64 pixels
    pads = rge.tokenize([rge.target_prompt(Target("<|image_1|>x", image))], [image])["input_ids"]
    assert int((pads == rge.model.config.image_token_id).sum()) == 16


def test_reference_from_parquet_and_jsonl_with_missing_ids(tmp_path, requests):
    facts = pa.table({"item_id": ["pair/0", "pair/2"], "facts": ["Red then green.", None]})
    pq.write_table(facts, tmp_path / "f.parquet")
    lines = [
        {"pair_id": "pair/1", "text": "T", "rationale": "Count them."},
        {"pair_id": "pair/3", "rationale": "Blue."},
    ]
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")

    parquet = build_generator("reference", path=str(tmp_path / "f.parquet"))
    assert parquet.name == f"reference:{tmp_path / 'f.parquet'}"
    results = parquet.generate(requests, GREEDY, regex="ignored")
    assert [(r.request_id, r.text, r.finish_reason) for r in results] == [
        ("pair/0", "Red then green.", "stop"),
        ("pair/1", "", "missing"),
        ("pair/2", "", "missing"),  # a null text counts as missing
        ("pair/3", "", "missing"),
        ("pair/4", "", "missing"),
    ]
    jsonl = build_generator("reference", path=str(tmp_path / "r.jsonl"))  # rationale wins over text
    assert [r.text for r in jsonl.generate(requests, GREEDY)] == ["", "Count them.", "", "Blue.", ""]
    named = build_generator("reference", path=str(tmp_path / "r.jsonl"), text_column="text")
    assert named.generate(requests[1:2], GREEDY)[0].text == "T"
    with pytest.raises(ValueError, match="no text column 'nope'"):
        build_generator("reference", path=str(tmp_path / "r.jsonl"), text_column="nope")
    with pytest.raises(ValueError, match="unknown generator"):
        build_generator("openai")
