"""vLLM requests for rationales, shared by eval (`eval.engine: vllm`) and training's on-the-fly sampling
(`train.rationale_engine: vllm`), so that both ask vLLM exactly what transformers' `generate` is asked.

- The prompt is `RGEModel.generation_prompt` as text with the image as a PIL image in `multi_modal_data`:
  never pre-expanded image token ids, which would misalign Qwen-VL's M-RoPE positions.
- Decoding stops at the `<emb>` id with `ignore_eos` (else the generation config's end tokens would stop it
  too). vLLM returns token ids only (`detokenize=False`): its tokenizer is the checkpoint's, which may lack
  `<emb>`; `rationales_from_tokens` cuts and decodes them with special tokens skipped, as the transformers
  path does.
- A sampled request carries its own seed, so its text depends on the request alone, not on the batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rge_core.model.decoding import Decoding
from rge_core.model.inputs import Query, load_image
from rge_core.model.rge_model import RGEModel
from rge_core.seeds import derived_seed

if TYPE_CHECKING:
    from vllm import SamplingParams
    from vllm.inputs import TextPrompt


def rationale_prompt(rge: RGEModel, query: Query) -> TextPrompt:
    prompt: TextPrompt = {"prompt": rge.generation_prompt(query)}
    if query.image is not None:
        prompt["multi_modal_data"] = {"image": load_image(query.image)}
    return prompt


def row_seed(seed: int, row: int) -> int:
    """One request's seed from its batch's seed and its row."""
    return derived_seed(seed, row)


def rationale_params(decoding: Decoding, max_tokens: int, emb_id: int, seed: int | None = None) -> SamplingParams:
    from vllm import SamplingParams

    return SamplingParams(
        temperature=max(decoding.temperature, 0.0),  # vLLM's greedy is temperature 0
        top_p=decoding.top_p,
        top_k=decoding.top_k,  # 0: off, in vLLM as in Decoding
        repetition_penalty=decoding.repetition_penalty,
        max_tokens=max_tokens,
        stop_token_ids=[emb_id],
        ignore_eos=True,
        detokenize=False,
        seed=None if decoding.greedy else seed,
    )
