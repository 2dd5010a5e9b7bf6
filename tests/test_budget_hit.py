"""eval.on_budget_hit: a query whose rationale never reaches `<emb>` is embedded with `<emb>` appended (as training
does), or at its last generated token (the release's eval_ar.py). Checked against an unpadded forward."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from rge_core.config.schema import greedy_decoding
from rge_core.embedder import Embedder, EmbedSettings
from rge_core.model.inputs import Query
from rge_core.model.rge_model import RGEModel
from rge_core.model.tiny import write_tiny_model

QUERIES = [
    Query("<|image_1|>\nRepresent the given image for classification\n", Image.new("RGB", (56, 56), (200, 0, 0))),
    Query("Find an image of a dog\n"),
    Query("<|image_1|>\nHow many shapes?\n", Image.new("RGB", (84, 56), (0, 90, 0))),
]


@pytest.fixture(scope="module")
def rge(tmp_path_factory) -> RGEModel:
    return RGEModel.load(str(write_tiny_model(tmp_path_factory.mktemp("tiny"), seed=0)))


def encoded(rge: RGEModel, on_budget_hit: str):
    embedder = Embedder(rge, EmbedSettings(greedy_decoding(3), batch_size=2, on_budget_hit=on_budget_hit))
    items = [{"text": q.text, "image": q.image} for q in QUERIES]
    return embedder.encode_queries(items, return_rationales=True)


def last_token_state(rge: RGEModel, prompt: str, image) -> torch.Tensor:
    inputs = rge.processor(text=[prompt], images=[image] if image is not None else None, return_tensors="pt")
    with torch.no_grad():
        hidden = rge.model(**inputs, output_hidden_states=True).hidden_states[-1]
    return torch.nn.functional.normalize(hidden[0, -1], dim=-1)


def test_last_token_embeds_where_the_release_does_and_append_emb_where_training_does(rge):
    (appended, appended_why), (last, last_why) = encoded(rge, "append-emb"), encoded(rge, "last-token")
    assert all(r.budget_hit for r in appended_why) and appended_why == last_why  # 3 tokens: no <emb> in time
    for row, query in enumerate(QUERIES):
        prefix = rge.generation_prompt(query) + last_why[row].text
        release = last_token_state(rge, prefix, query.image)
        ours = last_token_state(rge, prefix + "<emb>", query.image)
        assert torch.allclose(torch.from_numpy(last[row]), release, atol=1e-5)
        assert torch.allclose(torch.from_numpy(appended[row]), ours, atol=1e-5)
        assert not torch.allclose(release, ours, atol=1e-3)


def test_a_row_without_emb_is_still_refused_unless_asked_for(rge):
    prompt = rge.generation_prompt(QUERIES[1]) + "no end"
    with pytest.raises(ValueError, match="have no <emb>"):
        rge.embed_prompts([prompt], [None])
    assert rge.embed_prompts([prompt], [None], last_token_without_emb=True).shape[0] == 1
