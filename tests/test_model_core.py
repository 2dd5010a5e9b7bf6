"""RGE model core: prompts, `<emb>` pooling (checked against unpadded per-sample forwards) and
rationale generation that stops at `<emb>` or flags the budget."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from rge_core.model.decoding import Decoding
from rge_core.model.generation import Continuation, generate_continuations
from rge_core.model.inputs import Query, Target, query_content, user_content
from rge_core.model.rge_model import RGEModel, ensure_emb_token
from rge_core.model.special_tokens import EMB_TOKEN, QWEN_IMAGE_TOKENS
from rge_core.model.tiny import write_tiny_model


def image(colour, size=64) -> Image.Image:
    return Image.new("RGB", (size, size), colour)


QUERIES = [
    Query("<|image_1|>\nRepresent the given image with the following question: How many shapes?", image((200, 0, 0))),
    Query("Find me an everyday image that matches the given caption: a red circle on the left."),
    Query("<|image_1|>\nRepresent the given image for classification.", image((0, 0, 200), size=96)),
    Query("What colour?", instruction="Answer in one word."),
]
RATIONALES = ["The largest shape is red.", "", None, "One circle, two squares, so three shapes in all."]
TARGETS = [Target("<|image_1|>\nRepresent the given image.", image((0, 200, 0))), Target("three")]


def unpadded_embedding(rge: RGEModel, prompt: str, img) -> torch.Tensor:
    """Independent reference: one sequence, no padding, hidden state of its final token (the `<emb>`)."""
    inputs = rge.processor(text=[prompt], images=[img] if img is not None else None, return_tensors="pt")
    with torch.no_grad():
        hidden = rge.model(**inputs, output_hidden_states=True).hidden_states[-1]
    assert inputs["input_ids"][0, -1] == rge.emb.token_id
    return torch.nn.functional.normalize(hidden[0, -1], dim=-1)


def test_placeholder_becomes_image_tokens_or_disappears():
    assert user_content("<|image_1|>\nWhat is it?", has_image=True) == f"{QWEN_IMAGE_TOKENS}\nWhat is it?"
    assert user_content("<|image_1|>\nWhat is it?", has_image=False) == "\nWhat is it?"  # as the release: no strip
    assert user_content("What is it?", has_image=True) == f"{QWEN_IMAGE_TOKENS}What is it?"
    assert query_content(QUERIES[3]) == "Answer in one word.\nWhat colour?"


def test_prompts_end_with_emb_after_rationale_or_empty_turn(tiny_rge):
    query = tiny_rge.query_prompt(QUERIES[0], "because it is red")
    assert query.endswith("<|im_start|>assistant\nbecause it is red" + EMB_TOKEN)
    assert query.count(QWEN_IMAGE_TOKENS) == 1 and "<|image_1|>" not in query
    assert tiny_rge.query_prompt(QUERIES[1]).endswith("<|im_start|>assistant\n" + EMB_TOKEN)
    target = tiny_rge.target_prompt(TARGETS[1])
    assert target.endswith("three<|im_end|>\n<|im_start|>assistant\n" + EMB_TOKEN)


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_pooling_matches_unpadded_per_sample_forward(tiny_rge, padding_side):
    prompts = [tiny_rge.query_prompt(q, r) for q, r in zip(QUERIES, RATIONALES, strict=True)]
    images = [q.image for q in QUERIES]
    with torch.no_grad():
        batched = tiny_rge.embed_prompts(prompts, images, padding_side=padding_side)
    reference = torch.stack([unpadded_embedding(tiny_rge, p, i) for p, i in zip(prompts, images, strict=True)])
    assert batched.shape == (len(QUERIES), tiny_rge.model.config.text_config.hidden_size)
    torch.testing.assert_close(batched, reference, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(batched.norm(dim=-1), torch.ones(len(QUERIES)))


def test_embed_targets_and_queries_match_reference(tiny_rge):
    with torch.no_grad():
        targets = tiny_rge.embed_targets(TARGETS)
        queries = tiny_rge.embed_queries(QUERIES[:2], RATIONALES[:2])
    for row, target in enumerate(TARGETS):
        torch.testing.assert_close(
            targets[row],
            unpadded_embedding(tiny_rge, tiny_rge.target_prompt(target), target.image),
            atol=2e-5,
            rtol=1e-4,
        )
    for row in range(2):
        prompt = tiny_rge.query_prompt(QUERIES[row], RATIONALES[row])
        torch.testing.assert_close(
            queries[row], unpadded_embedding(tiny_rge, prompt, QUERIES[row].image), atol=2e-5, rtol=1e-4
        )


def test_pooling_takes_the_last_emb_and_refuses_rows_without_one(tiny_rge):
    emb, pad = tiny_rge.emb.token_id, tiny_rge.tokenizer.pad_token_id
    batch = {
        "input_ids": torch.tensor([[5, emb, 7, emb, pad], [pad, pad, 5, 6, emb]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 0], [0, 0, 1, 1, 1]]),
    }
    assert tiny_rge.emb_positions(batch).tolist() == [3, 4]
    batch["input_ids"][1, 4] = 9
    with pytest.raises(ValueError, match=r"rows \[1\] have no <emb>"):
        tiny_rge.emb_positions(batch)


def boost_emb_for_rows(rge: RGEModel, rows: list[int]):
    """Make `<emb>` the greedy choice for the given batch rows (a forward hook on the LM head)."""

    def hook(module, inputs, output):
        output = output.clone()
        output[rows, :, rge.emb.token_id] += 1e4
        return output

    return rge.model.lm_head.register_forward_hook(hook)


def test_generation_stops_at_emb_per_row_and_flags_the_budget(tiny_rge):
    handle = boost_emb_for_rows(tiny_rge, [1])
    try:
        result = tiny_rge.generate_rationales(QUERIES[:3], max_new_tokens=5)
    finally:
        handle.remove()
    assert result.budget_hit == [True, False, True]
    assert result.num_tokens == [5, 0, 5]
    assert result.texts[1] == "" and result.budget_hits == 2
    assert all(EMB_TOKEN not in text for text in result.texts)


def test_generation_is_batched_like_one_at_a_time(tiny_rge):
    batched = tiny_rge.generate_rationales(QUERIES, max_new_tokens=6)
    single = [tiny_rge.generate_rationales([q], max_new_tokens=6) for q in QUERIES]
    assert batched.texts == [s.texts[0] for s in single]
    assert batched.num_tokens == [s.num_tokens[0] for s in single]


def test_sampling_with_a_seed_is_reproducible(tiny_rge):
    sampling = Decoding(temperature=1.0, top_p=0.95)
    first = tiny_rge.generate_rationales(QUERIES[:2], max_new_tokens=8, decoding=sampling, seed=7)
    again = tiny_rge.generate_rationales(QUERIES[:2], max_new_tokens=8, decoding=sampling, seed=7)
    greedy = tiny_rge.generate_rationales(QUERIES[:2], max_new_tokens=8)
    assert first.texts == again.texts
    assert first.texts != greedy.texts


def test_seeded_sampling_leaves_the_callers_rng_untouched(tiny_rge):
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    tiny_rge.generate_rationales(QUERIES[:2], max_new_tokens=8, decoding=Decoding(temperature=1.0), seed=7)
    assert torch.equal(torch.random.get_rng_state(), before)
    tiny_rge.generate_rationales(QUERIES[:2], max_new_tokens=8, decoding=Decoding(temperature=1.0))
    assert not torch.equal(torch.random.get_rng_state(), before)  # unseeded sampling draws from it: not vacuous


@pytest.fixture(scope="module")
def lively_rge(lively_model_dir):
    return RGEModel.load(str(lively_model_dir))


def argmax_tokens(rge: RGEModel, prompt: str, steps: int) -> list[int]:
    """Independent reference: `steps` argmax tokens from full forwards of one unpadded sequence, no cache."""
    ids = rge.tokenize([prompt], [None])["input_ids"]
    tokens = []
    with torch.no_grad():
        for _ in range(steps):
            tokens.append(int(rge.model(input_ids=ids).logits[0, -1].argmax()))
            ids = torch.cat([ids, torch.tensor([[tokens[-1]]])], dim=1)
    return tokens


def test_shared_generation_cuts_every_row_at_its_stop_token_and_flags_the_rest(lively_rge):
    """The one generate loop of the model core and the transformers generator: left-padded rows, each cut
    before its first stop token, flagged when the budget ran out first."""
    queries = [QUERIES[1], QUERIES[3], Query("Describe a blue square.")]
    prompts = [lively_rge.generation_prompt(q) for q in queries]
    steps = 6
    reference = [argmax_tokens(lively_rge, prompt, steps) for prompt in prompts]
    stop_id = reference[1][2]  # a token the greedy rows really produce
    batch = lively_rge.tokenize(prompts, [None] * len(prompts), padding_side="left")
    pad_id = lively_rge.tokenizer.pad_token_id
    continuations = generate_continuations(lively_rge.model, batch, steps, stop_id, pad_id, Decoding())
    expected = [
        Continuation(row[: row.index(stop_id)], True) if stop_id in row else Continuation(row, False)
        for row in reference
    ]
    assert continuations == expected
    assert {c.stopped for c in continuations} == {True, False}  # both branches are exercised


def test_generation_drops_the_dummy_image_row(lively_rge):
    plain = lively_rge.generate_rationales(QUERIES[1:2], max_new_tokens=6)
    lively_rge.always_run_vision = True
    try:
        padded = lively_rge.generate_rationales(QUERIES[1:2], max_new_tokens=6)
    finally:
        lively_rge.always_run_vision = False
    assert padded == plain and len(padded.texts) == 1


def test_checkpoint_without_emb_gets_it_added_and_embeddings_resized(tmp_path):
    folder = write_tiny_model(tmp_path / "m", seed=0)
    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder)
    # Simulate a stock checkpoint: a vocabulary without `<emb>` and an embedding matrix without its row.
    processor.tokenizer = processor.tokenizer.__class__(
        vocab={
            k: v
            for k, v in processor.tokenizer.get_vocab().items()
            if k != EMB_TOKEN and v < processor.tokenizer.convert_tokens_to_ids(EMB_TOKEN)
        },
        merges=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    setup = ensure_emb_token(model, processor.tokenizer)
    assert setup.added
    rge = RGEModel(model, processor, setup)
    assert model.get_input_embeddings().weight.shape[0] > setup.token_id
    with torch.no_grad():
        vectors = rge.embed_targets([Target("three")])
    assert torch.isfinite(vectors).all() and vectors.shape[0] == 1


def test_loaded_tiny_checkpoint_records_no_change(tiny_rge):
    assert not tiny_rge.emb.added and not tiny_rge.emb.resized


def test_always_run_vision_adds_a_dummy_image_row_without_changing_results(tiny_rge):
    text_only = [Target("three"), Target("four")]
    with torch.no_grad():
        plain = tiny_rge.embed_targets(text_only)
        tiny_rge.always_run_vision = True
        try:
            batch = tiny_rge.tokenize([tiny_rge.target_prompt(t) for t in text_only], [None, None])
            padded = tiny_rge.embed_targets(text_only)
        finally:
            tiny_rge.always_run_vision = False
    assert batch["input_ids"].shape[0] == 3 and batch["image_grid_thw"].shape[0] == 1
    torch.testing.assert_close(padded, plain, atol=2e-5, rtol=1e-4)
