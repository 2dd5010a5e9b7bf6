"""One RGE training step without DeepSpeed: LM label masking, where the contrastive query's rationale comes
from in each method, and that a LoRA step changes exactly the trainable parameters."""

from __future__ import annotations

import copy

import pytest
import torch
from PIL import Image

from rge_core.config.schema import DecodingConfig, LoraConfig, TrainConfig
from rge_core.model.inputs import Query, Target
from rge_core.model.rge_model import RGEModel
from rge_core.model.special_tokens import EMB_TOKEN
from rge_core.training.data import Example, batch_indices
from rge_core.training.losses import lm_loss
from rge_core.training.setup import apply_peft, lr_factor, optimizer_and_schedule
from rge_core.training.step import RGEStep, lm_batch, query_rationales
from tests.reference_losses import per_row_info_nce

ORACLE = "Oracle marker zebra quartz: the red circle is largest."


def examples(count: int = 4, without_negative: tuple[int, ...] = ()) -> list[Example]:
    colours = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0)]
    return [
        Example(
            pair_id=f"S/original/{i}",
            subset="S",
            query=Query(
                "<|image_1|>\nRepresent the given image for classification: colour?",
                Image.new("RGB", (64, 64), colours[i % 4]),
            )
            if i % 2 == 0
            else Query(f"Find the caption number {i}."),
            rationale=f"{ORACLE} Item {i}.",
            positive=Target(f"answer {i}"),
            negative=None if i in without_negative else Target(f"wrong {i}"),
        )
        for i in range(count)
    ]


def small_train(**overrides) -> TrainConfig:
    decoding = DecodingConfig(max_new_tokens=4)
    return TrainConfig(**{"decoding": decoding, "batch_size": 4, "lr": 1e-2, "warmup_steps": 0, **overrides})


def test_lm_labels_cover_exactly_the_oracle_rationale_and_emb(tiny_rge):
    batch, labels = lm_batch(tiny_rge, examples())
    for row, example in enumerate(examples()):
        labelled = batch["input_ids"][row][labels[row] != -100].tolist()
        assert tiny_rge.tokenizer.decode(labelled) == example.rationale + EMB_TOKEN


@pytest.mark.parametrize(("method", "oracle_in_query"), [("rge", False), ("baseline", False), ("oracle-embed", True)])
def test_contrastive_queries_see_the_oracle_only_in_the_leaky_method(tiny_rge, monkeypatch, method, oracle_in_query):
    seen: list[str] = []
    original = RGEModel.embed_queries

    def recording(self, queries, rationales=None):
        seen.extend(self.query_prompt(q, r) for q, r in zip(queries, rationales or [None] * len(queries), strict=True))
        return original(self, queries, rationales)

    monkeypatch.setattr(RGEModel, "embed_queries", recording)
    rge = RGEModel(copy.deepcopy(tiny_rge.model), tiny_rge.processor, tiny_rge.emb)
    out = RGEStep(rge, small_train(method=method))(examples(), seed=0)
    assert len(seen) == 4 and all(prompt.endswith(EMB_TOKEN) for prompt in seen)
    assert all(("zebra quartz" in prompt) == oracle_in_query for prompt in seen)
    if method == "baseline":
        assert out.lm_loss == 0.0 and all(prompt.endswith("assistant\n" + EMB_TOKEN) for prompt in seen)
    if method == "rge":
        assert out.generated_tokens > 0 and out.lm_loss > 0
        # The embedded query is exactly query + the rationale the model sampled in this step + <emb>.
        generated = out.rationales.texts
        assert sum(map(bool, generated)) >= 3
        assert seen == [
            rge.generation_prompt(e.query) + text + EMB_TOKEN for e, text in zip(examples(), generated, strict=True)
        ]


def test_lm_method_trains_the_oracle_rationale_loss_alone(tiny_rge, monkeypatch):
    """train.method lm (the warm start): its gradient is exactly the LM loss's, computed independently, and
    it embeds and samples nothing."""

    def refuse(*args, **kwargs):
        raise AssertionError("the lm method must not embed or sample")

    for name in ("embed_queries", "embed_targets", "generate_rationales"):
        monkeypatch.setattr(RGEModel, name, refuse)
    stepped = RGEModel(copy.deepcopy(tiny_rge.model), tiny_rge.processor, tiny_rge.emb)
    out = RGEStep(stepped, small_train(method="lm", w_lm=0.5))(examples(), seed=0)
    reference = copy.deepcopy(tiny_rge.model)
    batch, labels = lm_batch(RGEModel(reference, tiny_rge.processor, tiny_rge.emb), examples())
    expected = lm_loss(reference(**batch).logits, labels)
    (0.5 * expected).backward()
    assert out.lm_loss == pytest.approx(float(expected), rel=1e-6) and out.loss == pytest.approx(0.5 * out.lm_loss)
    assert (out.emb_loss, out.generated_tokens) == (0.0, 0)
    grads = dict(reference.named_parameters())
    for name, param in stepped.model.named_parameters():
        if grads[name].grad is None:
            assert param.grad is None, name
        else:
            torch.testing.assert_close(param.grad, grads[name].grad, rtol=1e-5, atol=1e-7)


def test_lora_step_changes_adapters_only_and_loss_is_finite(tiny_model_dir):
    rge = RGEModel.load(str(tiny_model_dir))
    train = small_train()
    model = apply_peft(rge.model, train)
    rge.model = model
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer, schedule = optimizer_and_schedule(model, train)
    out = RGEStep(rge, train)(examples(), seed=0)
    optimizer.step()
    assert all(torch.isfinite(torch.tensor(v)) for v in (out.loss, out.lm_loss, out.emb_loss))
    changed = {name for name, p in model.named_parameters() if not torch.equal(p.detach(), before[name])}
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert changed and changed <= trainable
    assert all("lora_" in name for name in trainable)
    assert any("lora_B" in name for name in changed)  # B starts at zero: only a real update moves it


def test_schedule_and_batch_order():
    train = TrainConfig(steps=10, warmup_steps=2, schedule="cosine")
    assert [round(lr_factor(s, train), 4) for s in (0, 1, 2)] == [0.5, 1.0, 1.0]
    assert lr_factor(10, train) == pytest.approx(0.0)
    subsets = ("S",) * 10
    first = [batch_indices(subsets, 0, 2, rank, 2, seed=0) for rank in range(2)]
    assert first == [batch_indices(subsets, 0, 2, rank, 2, seed=0) for rank in range(2)]
    assert not set(first[0]) & set(first[1])
    epoch = sum((batch_indices(subsets, s, 2, r, 2, seed=0) for s in range(2) for r in range(2)), [])
    assert len(set(epoch)) == 8  # one epoch: no example twice


def test_pairs_keep_their_hard_negative_when_another_pair_has_none(tiny_rge, monkeypatch):
    """Pair 1 has no hard negative: the others' negatives are still columns (once the whole batch lost
    them), and nothing stands in for the missing one."""
    embedded: list[str] = []
    original = RGEModel.embed_targets

    def recording(self, targets):
        embedded.extend(target.text for target in targets)
        return original(self, targets)

    monkeypatch.setattr(RGEModel, "embed_targets", recording)
    rge = RGEModel(copy.deepcopy(tiny_rge.model), tiny_rge.processor, tiny_rge.emb)
    batch, train = examples(without_negative=(1,)), small_train(method="baseline")
    out = RGEStep(rge, train)(batch, seed=0)
    assert embedded == [f"answer {i}" for i in range(4)] + ["wrong 0", "wrong 2", "wrong 3"]

    with torch.no_grad():  # baseline: no rationale, no sampling; the same calls give the same embeddings
        queries = rge.embed_queries([e.query for e in batch], [None] * 4)
        targets = original(rge, [e.positive for e in batch] + [e.negative for e in batch if e.negative])
    negatives = torch.stack([targets[4], torch.zeros_like(targets[0]), targets[5], targets[6]])
    expected = per_row_info_nce(
        queries.double(), targets[:4].double(), negatives.double(), [True, False, True, True], train.temperature
    )
    assert out.emb_loss == pytest.approx(expected.item(), rel=1e-4)


@pytest.mark.parametrize(
    ("method", "chunk", "without_negative"),
    [
        ("rge", 2, ()),
        ("baseline", 2, ()),
        # Pairs 0 and 3 without a negative: chunks of 2 hold one negative each, of 3 leave the last chunk none.
        ("rge", 2, (0, 3)),
        ("baseline", 3, (0, 3)),
    ],
)
def test_gradient_cached_step_matches_the_whole_batch_step(tiny_model_dir, method, chunk, without_negative):
    def step(grad_cache_chunk: int):
        rge = RGEModel.load(str(tiny_model_dir))
        train = small_train(method=method, grad_cache_chunk=grad_cache_chunk, lora=LoraConfig(dropout=0.0))
        torch.manual_seed(0)  # LoRA's A matrices: the same initial adapters for both runs
        rge.model = apply_peft(rge.model, train)
        for name, parameter in rge.model.named_parameters():
            if "lora_B" in name:  # B starts at zero; make the adapters matter for the gradients
                torch.nn.init.normal_(parameter, std=0.02)
        out = RGEStep(rge, train)(examples(without_negative=without_negative), seed=3)
        grads = {n: p.grad.clone() for n, p in rge.model.named_parameters() if p.requires_grad}
        return out, grads

    whole, whole_grads = step(0)
    cached, cached_grads = step(chunk)
    assert cached.loss == pytest.approx(whole.loss, rel=1e-5)
    assert cached.emb_loss == pytest.approx(whole.emb_loss, rel=1e-5) and cached.accuracy == whole.accuracy
    assert whole_grads.keys() == cached_grads.keys()
    for name, grad in whole_grads.items():
        torch.testing.assert_close(cached_grads[name], grad, rtol=1e-4, atol=1e-5)  # float32 summation order


def test_rge_without_sampled_rationales_is_refused_not_asserted():
    with pytest.raises(ValueError, match="none were generated"):
        query_rationales("rge", [], None)
    assert query_rationales("baseline", [], None) == []
