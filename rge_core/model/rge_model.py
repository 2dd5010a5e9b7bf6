"""The one model wrapper every stage uses: any Qwen2-VL-family checkpoint as an RGE embedder.

model = RGEModel.load("path/to/checkpoint")          # a tiny folder or e.g. Qwen2.5-VL-3B-Instruct
rationales = model.generate_rationales(queries, max_new_tokens=128)
q = model.embed_queries(queries, [r.text for r in rationales])
t = model.embed_targets(targets)                     # both L2-normalised, [batch, hidden]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, BatchFeature

from rge_core.model.decoding import GREEDY, Decoding
from rge_core.model.generation import RationaleBatch, decode_rationales, generate_continuations
from rge_core.model.inputs import Query, Target, assistant_suffix, load_image, query_content, user_content
from rge_core.model.placement import Placement, resolve_placement
from rge_core.model.processor import chat_template_of, load_processor
from rge_core.model.special_tokens import EMB_TOKEN, MMEB_IMAGE_PLACEHOLDER


@dataclass(frozen=True)
class EmbTokenSetup:
    token_id: int
    added: bool  # the checkpoint's tokenizer had no `<emb>`; we added it
    resized: bool  # ...and the embedding matrix had to grow to hold it


def ensure_emb_token(model, tokenizer) -> EmbTokenSetup:
    """Make sure `<emb>` is a special token with an embedding row; record what had to change."""
    added = EMB_TOKEN not in tokenizer.get_vocab()
    if added:
        tokenizer.add_special_tokens({"additional_special_tokens": [EMB_TOKEN]}, replace_extra_special_tokens=False)
    token_id = tokenizer.convert_tokens_to_ids(EMB_TOKEN)
    weight = model.get_input_embeddings().weight
    rows = getattr(weight, "ds_shape", weight.shape)[0]  # a ZeRO-3 partition's local shape is empty
    resized = token_id >= rows
    if resized:
        model.resize_token_embeddings(len(tokenizer))
    return EmbTokenSetup(token_id=token_id, added=added, resized=resized)


def load_location(device: torch.device) -> dict:
    """from_pretrained arguments that put the weights on `device` as they load (no CPU copy first);
    none under ZeRO-3, where DeepSpeed places the partitions."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    if device.type == "cpu" or is_deepspeed_zero3_enabled():
        return {}
    return {"device_map": {"": str(device)}}


class RGEModel:
    def __init__(self, model, processor, emb: EmbTokenSetup):
        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.emb = emb
        # Under ZeRO-3 every rank must run the same modules in the same order, or the parameter
        # all-gathers of the vision tower pair up with other collectives and deadlock or crash. The
        # trainer sets this; batches without an image then carry one extra dummy image row (see tokenize).
        self.always_run_vision = False
        self.chat_template = chat_template_of(processor)

    @classmethod
    def load(cls, path: str, placement: Placement | None = None, min_pixels: int = 0, max_pixels: int = 0) -> RGEModel:
        """Load straight onto `placement`'s device in its dtype (default: the CPU in float32, sdpa).
        `min_pixels` / `max_pixels`: the image resolution bounds (model.min_pixels / max_pixels; 0 keeps
        the checkpoint's). Inside `partitioned_loading` (rge_core/training/setup.py) under ZeRO-3 the weights load
        partitioned: no process holds a full copy."""
        placement = placement or resolve_placement("cpu", "float32")
        processor = load_processor(path, min_pixels, max_pixels)
        model = AutoModelForImageTextToText.from_pretrained(
            path,
            dtype=placement.dtype,
            attn_implementation=placement.attn_implementation,
            **load_location(placement.device),
        )
        model.eval()
        return cls(model, processor, ensure_emb_token(model, processor.tokenizer))

    @property
    def device(self) -> torch.device:
        return self.model.device

    # ---- prompts -------------------------------------------------------------------------------
    def _chat_prefix(self, content: str) -> str:
        messages = [{"role": "user", "content": content}]
        return self.tokenizer.apply_chat_template(
            messages, chat_template=self.chat_template, add_generation_prompt=True, tokenize=False
        )

    def generation_prompt(self, query: Query) -> str:
        """The query up to the start of the assistant turn, where the rationale is generated."""
        return self._chat_prefix(query_content(query))

    def query_prompt(self, query: Query, rationale: str | None = None, emb: bool = True) -> str:
        """The query with its rationale, ending in `<emb>` (or, with `emb=False`, at the rationale's last token:
        eval.on_budget_hit last-token)."""
        return self.generation_prompt(query) + (assistant_suffix(rationale) if emb else rationale or "")

    def target_prompt(self, target: Target) -> str:
        return self._chat_prefix(user_content(target.text, target.image is not None)) + assistant_suffix(None)

    # ---- tensors -------------------------------------------------------------------------------
    def tokenize(self, prompts: Sequence[str], images: Sequence, padding_side: str = "right") -> BatchFeature:
        """Batch prompts with their images (None where a prompt has none); pads on `padding_side`.
        With `always_run_vision` an image-free batch gets one extra dummy row with an image at the end:
        callers use the first len(prompts) rows."""
        prompts, loaded = list(prompts), [load_image(image) for image in images]
        if self.always_run_vision and all(image is None for image in loaded):
            dummy = Image.new("RGB", (28, 28))
            prompts.append(self.target_prompt(Target(MMEB_IMAGE_PLACEHOLDER, dummy)))
            loaded.append(dummy)
        present = [image for image in loaded if image is not None]
        self.tokenizer.padding_side = padding_side
        batch = self.processor(
            text=list(prompts),
            images=present or None,
            padding=True,
            return_tensors="pt",
            return_mm_token_type_ids=True,
        )
        return batch.to(self.device)

    def embed_prompts(
        self,
        prompts: Sequence[str],
        images: Sequence,
        padding_side: str = "right",
        last_token_without_emb: bool = False,
    ) -> torch.Tensor:
        """L2-normalised last-layer hidden state at each sequence's `<emb>` token (with `last_token_without_emb`,
        at the last attended token of a row that has none)."""
        batch = self.tokenize(prompts, images, padding_side)
        hidden = self.backbone(**batch).last_hidden_state
        positions = self.emb_positions(batch, last_token_without_emb)
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), positions]
        return torch.nn.functional.normalize(pooled[: len(prompts)].float(), dim=-1)

    def emb_positions(self, batch: BatchFeature, last_token_without_emb: bool = False) -> torch.Tensor:
        """Index of the last attended `<emb>` in every row; correct for left and right padding. A row without one
        is an error, unless `last_token_without_emb` asks for its last attended token instead."""
        attended = batch["attention_mask"].bool()
        is_emb = (batch["input_ids"] == self.emb.token_id) & attended
        positions = torch.arange(is_emb.shape[1], device=is_emb.device).expand_as(is_emb)
        without = ~is_emb.any(dim=1)
        if without.any() and not last_token_without_emb:
            raise ValueError(f"rows {without.nonzero().flatten().tolist()} have no {EMB_TOKEN} token to pool at")
        emb = torch.where(is_emb, positions, -1).max(dim=1).values
        last = torch.where(attended, positions, -1).max(dim=1).values
        return torch.where(without, last, emb)

    @property
    def backbone(self):
        """The transformer without the LM head (no logits over the vocabulary when we only embed)."""
        return self.model.get_base_model().model if hasattr(self.model, "get_base_model") else self.model.model

    # ---- the RGE API ---------------------------------------------------------------------------
    def embed_queries(self, queries: Sequence[Query], rationales: Sequence[str | None] | None = None) -> torch.Tensor:
        rationales = rationales if rationales is not None else [None] * len(queries)
        if len(rationales) != len(queries):
            raise ValueError(f"{len(queries)} queries but {len(rationales)} rationales")
        prompts = [self.query_prompt(q, r) for q, r in zip(queries, rationales, strict=True)]
        return self.embed_prompts(prompts, [q.image for q in queries])

    def embed_targets(self, targets: Sequence[Target]) -> torch.Tensor:
        return self.embed_prompts([self.target_prompt(t) for t in targets], [t.image for t in targets])

    def generate_rationales(
        self,
        queries: Sequence[Query],
        max_new_tokens: int = 128,
        decoding: Decoding = GREEDY,
        seed: int | None = None,
    ) -> RationaleBatch:
        """Each query's rationale, up to its `<emb>` or `max_new_tokens` (greedy by default).
        A `seed` makes sampling reproducible; it seeds a fork of torch's RNG, so the caller's RNG state
        (e.g. the training step's dropout) is left untouched."""
        if not queries:
            return RationaleBatch()
        prompts = [self.generation_prompt(q) for q in queries]
        batch = self.tokenize(prompts, [q.image for q in queries], padding_side="left")
        pad_id = self.tokenizer.pad_token_id
        continuations = generate_continuations(
            self.model, batch, max_new_tokens, self.emb.token_id, pad_id, decoding, seed
        )
        return decode_rationales(self.tokenizer, continuations[: len(queries)])  # drops a dummy row
