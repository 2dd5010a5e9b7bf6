"""The one vLLM rationale client, used by eval (`eval.engine: vllm`) and by training's colocated engine
(`train.rationale_engine: vllm`, rge_core/training/vllm_rationales.py adds the weight sync): an engine on the
model's checkpoint that asks vLLM exactly what transformers' `generate` is asked.

    rationales = VLLMRationales(rge, model_dir, config.eval.vllm, min_pixels, max_pixels, config.eval.decoding)
    batch = rationales(queries)                          # or rationales(queries, decoding, seed) per call

- The prompt is `RGEModel.generation_prompt` as text with the image as a PIL image in `multi_modal_data`:
  never pre-expanded image token ids, which would misalign Qwen-VL's M-RoPE positions.
- Decoding stops at the `<emb>` id with `ignore_eos` (else the generation config's end tokens would stop it
  too). vLLM returns token ids only (`detokenize=False`): its tokenizer is the checkpoint's, which may lack
  `<emb>`; `rationales_from_tokens` cuts and decodes them with special tokens skipped, as the transformers
  path does.
- A sampled request carries its own seed, so its text depends on the request alone, not on the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rge_core.config.schema import DecodingConfig, VLLMEngineConfig
from rge_core.model.decoding import Decoding
from rge_core.model.generation import RationaleBatch, rationales_from_tokens
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


class VLLMRationales:
    """An engine on `model_dir` (the checkpoint `rge` was loaded from), sized by `engine` (train.vllm, eval.vllm),
    with the pipeline's image bounds; it decodes with `decoding` unless a call names another. Sampled requests
    get a seed each from the call's seed (default: decoding.seed), so a text depends on its request alone."""

    def __init__(
        self,
        rge: RGEModel,
        model_dir: str,
        engine: VLLMEngineConfig,
        min_pixels: int,
        max_pixels: int,
        decoding: DecodingConfig,
        batch_size: int,
        colocated: bool = False,
    ):
        from rge_core.generation.vllm_engine import VLLMGenerator  # heavy: vLLM

        self.rge, self.decoding = rge, decoding
        self.engine = VLLMGenerator(
            model_dir,
            max_model_len=engine.max_model_len,
            dtype=str(rge.model.dtype).removeprefix("torch."),  # the embedder's (the trained weights') dtype
            seed=decoding.seed,
            limit_images=1,
            min_pixels=min_pixels,
            max_pixels=max_pixels,
            gpu_memory_utilization=engine.gpu_memory_utilization,
            max_num_seqs=engine.max_num_seqs or batch_size,
            colocated=colocated,
        )

    @property
    def llm(self):
        return self.engine.llm

    def __call__(
        self, queries: Sequence[Query], decoding: DecodingConfig | None = None, seed: int | None = None
    ) -> RationaleBatch:
        decoding = decoding or self.decoding
        base = decoding.seed if seed is None else seed
        emb_id = self.rge.emb.token_id
        params = [
            rationale_params(decoding.knobs, decoding.max_new_tokens, emb_id, row_seed(base, row))
            for row in range(len(queries))
        ]
        outputs = self.llm.generate([rationale_prompt(self.rge, q) for q in queries], params, use_tqdm=False)
        rows = [output.outputs[0].token_ids for output in outputs]  # in input order
        return rationales_from_tokens(self.rge.tokenizer, rows, emb_id)

    def close(self) -> None:
        self.engine.close()
