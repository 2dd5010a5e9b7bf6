"""RGE at full size on one GPU: a random-weight Qwen2.5-VL-3B (the real configuration, built from the config
alone: no download) encodes reasoning queries and candidates and takes training steps, in the same run.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/bench_gpu.py [--queries 16] [--batch-size 16]
        [--candidates 64] [--max-new-tokens 128] [--image-size 448] [--steps 2] [--train-batch-size 8]
        [--budget 256] [--repeats 2] [--device cuda] [--quick]

On a GPU machine: copy the repository, then run the command above from its root. It imports only torch,
transformers (and torchvision, which its Qwen2-VL processors need), peft, PIL, numpy and rge_core modules
that need nothing else (no vLLM, pyarrow or Prefect; DeepSpeed only if it imports). It needs ~8 GiB of GPU
memory for the bf16 weights and more for the step.
`--quick` runs the same code on the CPU in float32 with the tiny configuration of `write_tiny_model`
(arch qwen2.5-vl, 56x56 images, 8 new tokens): the smoke test runs it. Without `--quick` it needs CUDA; with
no GPU, or when the model does not fit, it prints one line and exits non-zero. A default run took 7.5 min
on one H200 (27 Nov 2026; figures in benchmarks/README.md, "GPU figures").

The model: `Qwen2_5_VLConfig` with Qwen/Qwen2.5-VL-3B-Instruct's config.json values (text: 36 layers, hidden
2048, MLP 11008, 16 heads / 2 KV heads, vocab 151,936, tied embeddings, mrope [16, 24, 24]; vision: 32
blocks, hidden 1280, MLP 3420, 16 heads, out 2048, patch 14, merge 2, window 112, full attention in blocks
7/15/23/31), random weights, built in bf16 directly on the GPU, attention `auto` (flash_attention_2 when
flash-attn is installed, else sdpa). The tokenizer and image processor are the tiny checkpoint's (a Qwen2-VL
processor: patch 14, merge 2, as Qwen2.5-VL's; its tokenizer has `<emb>`); the config's special-token ids
(image pad, vision start/end, eos, pad) are that tokenizer's. Which ids mark an image does not change the
compute, and every tiny id is below the vocabulary size. Images are random RGB, `--image-size` square, with
the processor's min/max pixels set to exactly that area, so 448x448 stays 448x448: 32x32 patches, 256
image tokens after the 2x2 merge (the 3B preset's `model.min_pixels`; MMEB images may get up to 1,024).

What it measures (median of --repeats interleaved rounds, `_timing`; GPU work synchronised before each
clock stops; peak GPU memory per phase, reset before every call):
  * reasoning-query encoding: image + text queries, greedy rationales of --max-new-tokens (repetition
    penalty 1.05, as the 3B preset's eval) then the `<emb>` forward, one query at a time vs batches of
    --batch-size (`generate_rationales` + `embed_queries`, under inference_mode);
  * candidate encoding: image + text candidates, one per forward vs batches of --batch-size (`embed_targets`);
  * one training step: `RGEStep` + optimizer step for method `rge` (LM loss on a ~100-token oracle rationale,
    on-the-fly sampled rationales of --budget tokens, InfoNCE) vs `baseline` (InfoNCE only), on the same
    batches of --train-batch-size (image + text query, text positive, no hard negative), LoRA rank 16 /
    alpha 64 (TrainConfig's defaults) with gradient checkpointing; one shared model and optimizer, as the
    random weights make the LoRA's values irrelevant to speed. DeepSpeed ZeRO-2 (`deepspeed_config`) when
    DeepSpeed imports and the device is CUDA, else plain torch AdamW; the run prints which.
A random model almost never samples `<emb>`, so rationales run to the full budget (the run prints how many
did): the query figures are for full-length rationales, the slowest case.

The MMEB-V1 estimate, from this run's batched figures (seconds on one GPU):
    36 sets x 1,000 queries / (batched queries/s) + 36 sets x 1,000 unique candidates / (batched candidates/s)
and that figure / 8 for 8 GPUs (data-parallel over queries and candidates, perfect balance; model loading
and scoring not counted). MMEB-V1 has 1,000 eval queries in each of its 36 sets, each ranked against up to
1,000 candidates; evaluation encodes each set's unique candidates once. Assumed: 1,000 unique candidates per
set (36,000 in all). That is exact where all queries share one list of 1,000 (ImageNet-1K's labels), a
lower bound where queries draw different distractors (retrieval, VQA, grounding: at most 1,000 x 1,000 per
set), and too high where the candidates are a small label set (HatefulMemes' yes/no, VOC2007's 20 classes);
the run also prints the no-sharing bound (36 million candidates). Candidates are timed with a 448x448
image, so text-only candidates (classification and VQA labels) are cheaper; real query images may be larger.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import peft
import torch
import transformers
from _step_breakdown import print_breakdown
from _timing import Case, Timing, measure, parse_args, print_table
from PIL import Image
from transformers import AutoConfig, AutoModelForImageTextToText, Qwen2_5_VLConfig

from rge_core.config.schema import DecodingConfig, TrainConfig
from rge_core.data.mmeb_registry import MMEB_DATASETS
from rge_core.model.batching import in_batches, prompt_lengths
from rge_core.model.decoding import Decoding
from rge_core.model.generation import RationaleBatch
from rge_core.model.inputs import Query, Target
from rge_core.model.placement import Placement, PlacementError, resolve_placement
from rge_core.model.processor import load_processor
from rge_core.model.rge_model import RGEModel, ensure_emb_token
from rge_core.model.tiny import write_tiny_model
from rge_core.training.data import Example
from rge_core.training.setup import apply_peft, deepspeed_config, optimizer_and_schedule
from rge_core.training.step import RGEStep

T = TypeVar("T")
QUICK = {
    "device": "cpu",
    "queries": 4,
    "batch_size": 2,
    "candidates": 4,
    "max_new_tokens": 8,
    "image_size": 56,
    "steps": 1,
    "train_batch_size": 2,
    "budget": 4,
    "repeats": 1,
}
PIXEL_FACTOR = 28  # patch 14 x merge 2: an image side that is a multiple of it is not resized
ORACLE_TOKENS = 100  # oracle rationale length in the training examples (the 128-token prompt-set budget, less)
EVAL_DECODING = Decoding(repetition_penalty=1.05)  # configs/qwen2.5-vl-3b.yaml eval: greedy, penalty 1.05

# The MMEB-V1 eval time estimate (see the module docstring for the assumptions).
MMEB_SETS = len(MMEB_DATASETS)  # 36
QUERIES_PER_SET = 1_000  # MMEB-V1 eval: 1,000 queries per set
UNIQUE_CANDIDATES_PER_SET = 1_000  # assumed: candidates shared across a set's queries, encoded once
CANDIDATES_PER_QUERY = 1_000  # each query's candidate list; the no-sharing bound
EVAL_GPUS = 8


def qwen25_vl_3b_config(tokenizer) -> Qwen2_5_VLConfig:
    """Qwen/Qwen2.5-VL-3B-Instruct's architecture, with `tokenizer`'s special-token ids."""
    ids = tokenizer.convert_tokens_to_ids
    return Qwen2_5_VLConfig(
        text_config=dict(
            hidden_size=2048,
            intermediate_size=11008,
            num_hidden_layers=36,
            num_attention_heads=16,
            num_key_value_heads=2,
            vocab_size=151_936,
            max_position_embeddings=128_000,
            rms_norm_eps=1e-6,
            hidden_act="silu",
            use_sliding_window=False,
            rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]},
            bos_token_id=None,
            eos_token_id=ids(tokenizer.eos_token),
            pad_token_id=ids(tokenizer.pad_token),
        ),
        vision_config=dict(
            depth=32,
            hidden_size=1280,
            intermediate_size=3420,
            num_heads=16,
            out_hidden_size=2048,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            fullatt_block_indexes=[7, 15, 23, 31],
            hidden_act="silu",
            tokens_per_second=2,
        ),
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )


def build_rge(quick: bool, placement: Placement, image_size: int) -> RGEModel:
    """A random-weight model (3B, or the tiny config with --quick) behind the tiny checkpoint's processor."""
    pixels = image_size * image_size
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        tiny = write_tiny_model(Path(tmp), arch="qwen2.5-vl", seed=0)
        processor = load_processor(str(tiny), min_pixels=pixels, max_pixels=pixels)
        config = AutoConfig.from_pretrained(tiny) if quick else qwen25_vl_3b_config(processor.tokenizer)
    torch.manual_seed(0)
    with torch.device(placement.device):  # weights are created where they run: no CPU copy of 3B parameters
        model = AutoModelForImageTextToText.from_config(
            config, dtype=placement.dtype, attn_implementation=placement.attn_implementation
        )
    model.eval()
    return RGEModel(model, processor, ensure_emb_token(model, processor.tokenizer))


class Phases:
    """Wraps timed calls: waits for the device's queued work before the clock stops, and keeps each phase's
    peak GPU memory (the counter is reset before every call, so interleaved phases do not mix)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.peaks: dict[str, int] = {}

    def track(self, phase: str, fn: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            if self.cuda:
                torch.cuda.reset_peak_memory_stats()
            fn()
            if self.cuda:
                torch.cuda.synchronize()
                self.peaks[phase] = max(self.peaks.get(phase, 0), torch.cuda.max_memory_allocated())

        return run

    def record(self, phase: str) -> None:
        """The peak since the last reset, under `phase` (e.g. what building the model took)."""
        if self.cuda:
            self.peaks[phase] = torch.cuda.max_memory_allocated()

    def report(self) -> None:
        if not self.cuda:
            print("\npeak GPU memory: not measured (not a CUDA device)")
            return
        print("\npeak GPU memory (torch.cuda.max_memory_allocated) per phase")
        for phase, peak in self.peaks.items():
            print(f"  {phase:<32} {peak / 2**30:7.2f} GiB")


def random_image(rng: np.random.Generator, size: int) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def text_of_tokens(tokenizer, count: int) -> str:
    """Plain sentences cut to the first word boundary at which the text is at least `count` tokens long."""
    words = (
        "The picture shows a small red circle to the left of a large blue square on a grey table, "
        "and the question asks which shape is larger. "
    ).split() * count
    for end in range(1, len(words) + 1):
        text = " ".join(words[:end])
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) >= count:
            return text
    raise ValueError(f"no text of {count} tokens")


def queries(rng: np.random.Generator, size: int, count: int) -> list[Query]:
    return [
        Query(
            f"<|image_1|>\nRepresent the given image with the following question: what is object {k}?",
            random_image(rng, size),
        )
        for k in range(count)
    ]


def candidates(rng: np.random.Generator, size: int, count: int) -> list[Target]:
    return [
        Target(f"<|image_1|>\nRepresent the given image: scene {k}.", random_image(rng, size)) for k in range(count)
    ]


def training_examples(rge: RGEModel, rng: np.random.Generator, size: int, count: int) -> list[Example]:
    rationale = text_of_tokens(rge.tokenizer, ORACLE_TOKENS)
    return [
        Example(
            pair_id=f"bench/{k}",
            subset="bench",
            query=query,
            rationale=rationale,
            positive=Target(f"A photo of object {k}: a red circle and a blue square."),
            negative=None,
        )
        for k, query in enumerate(queries(rng, size, count))
    ]


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def encode_queries(rge: RGEModel, items: Sequence[Query], max_new_tokens: int, batch_size: int) -> RationaleBatch:
    """As the eval encodes: per batch, greedy rationales, then the `<emb>` forward; the last batch's rationales."""
    for batch in chunks(items, batch_size):
        rationales = rge.generate_rationales(batch, max_new_tokens, EVAL_DECODING)
        rge.embed_queries(batch, rationales.texts)
    return rationales


def encode_candidates(rge: RGEModel, items: Sequence[Target], batch_size: int) -> None:
    for batch in chunks(items, batch_size):
        rge.embed_targets(batch)


def sorted_vs_unsorted(rge: RGEModel, args, phases: Phases, rng: np.random.Generator) -> None:
    """Text candidates of 1 to 120 words (MMEB mixes one-word labels with long captions) in batches of
    --batch-size, in their order vs by length (eval.sort_by_length; rge_core/model/batching.py)."""
    words = rng.integers(1, 121, size=4 * args.candidates)
    prompts = [rge.target_prompt(Target(text_of_tokens(rge.tokenizer, int(n)))) for n in words]
    lengths = prompt_lengths(rge, prompts, [None] * len(prompts))

    def encode(order: list[int] | None) -> None:
        in_batches(prompts, args.batch_size, lambda batch: rge.embed_prompts(batch, [None] * len(batch)), order)

    with torch.inference_mode():
        unsorted, by_length = measure(
            [
                Case(
                    "unsorted mixed-length candidates",
                    phases.track("mixed lengths unsorted", lambda: encode(None)),
                    len(prompts),
                    "candidates",
                ),
                Case(
                    "length-sorted mixed-length candidates",
                    phases.track("mixed lengths sorted", lambda: encode(lengths)),
                    len(prompts),
                    "candidates",
                ),
            ],
            repeats=args.repeats,
        )
    print_table(f"mixed-length candidates ({len(prompts)}, batch {args.batch_size})", unsorted, [by_length])


def image_tokens(rge: RGEModel, image: Image.Image) -> int:
    """What one image becomes in the prompt: its patch grid after the processor's spatial merge."""
    grid = rge.tokenize([rge.target_prompt(Target("x", image))], [image])["image_grid_thw"][0]
    return int(grid.prod()) // rge.processor.image_processor.merge_size**2


def one_vs_batched(
    phases: Phases, unit: str, encode: Callable[[int], object], count: int, size: int, repeats: int, warmup: int
) -> list[Timing]:
    """`encode(batch_size)` over `count` items, one at a time (the baseline) and in batches of `size`."""
    return measure(
        [
            Case(f"{unit} one at a time", phases.track(f"{unit} one at a time", lambda: encode(1)), count, unit),
            Case(f"{unit} batched", phases.track(f"{unit} batched ({size})", lambda: encode(size)), count, unit),
        ],
        warmup=warmup,
        repeats=repeats,
    )


def eval_phase(rge: RGEModel, args, phases: Phases, rng: np.random.Generator) -> tuple[Timing, Timing]:
    """Reasoning queries and candidates, one at a time vs batched; returns the two batched timings."""
    items, targets = queries(rng, args.image_size, args.queries), candidates(rng, args.image_size, args.candidates)
    size, budget = args.batch_size, args.max_new_tokens
    with torch.inference_mode():
        encode_queries(rge, items[:1], budget, 1)  # warmup of the one-at-a-time shapes
        sample = encode_queries(rge, items[:size], budget, size)  # and of the batched ones
        print(
            f"sample batch: {sum(sample.num_tokens) / len(sample.num_tokens):.1f} rationale tokens per query, "
            f"{sample.budget_hits}/{len(sample.num_tokens)} hit the budget without <emb>"
        )
        one_q, batched_q = one_vs_batched(
            phases,
            "queries",
            lambda batch: encode_queries(rge, items, budget, batch),
            len(items),
            size,
            args.repeats,
            warmup=0,
        )
        one_c, batched_c = one_vs_batched(
            phases,
            "candidates",
            lambda batch: encode_candidates(rge, targets, batch),
            len(targets),
            size,
            args.repeats,
            warmup=1,
        )
    print_table(
        f"reasoning-query encoding ({len(items)} queries, {budget} new tokens, batch {size})", one_q, [batched_q]
    )
    print_table(f"candidate encoding ({len(targets)} candidates, batch {size})", one_c, [batched_c])
    return batched_q, batched_c


@dataclasses.dataclass
class Updater:
    """How a step's loss becomes a parameter update: plain torch, or a DeepSpeed engine around the same AdamW."""

    name: str
    backward: Callable[[torch.Tensor], None]
    reduction_context: Callable[[], contextlib.AbstractContextManager]
    step: Callable[[], None]


def deepspeed_or_reason():
    """(the deepspeed module, "") when it can run here, else (None, why not)."""
    try:
        import deepspeed

        from rge_core.training.trainer import _single_process_env  # imports pyarrow: only beside DeepSpeed
    except Exception as error:  # a DeepSpeed build that does not match the CUDA/torch here fails in many ways
        return None, f"DeepSpeed does not import: {error}".splitlines()[0]
    _single_process_env()
    deepspeed.init_distributed(verbose=False)
    return deepspeed, ""


def make_updater(rge: RGEModel, train: TrainConfig) -> Updater:
    optimizer, schedule = optimizer_and_schedule(rge.model, train)
    deepspeed, why = deepspeed_or_reason() if rge.device.type == "cuda" else (None, "not a CUDA device")
    if deepspeed is None:

        def step() -> None:
            optimizer.step()
            optimizer.zero_grad()

        return Updater(f"plain torch AdamW ({why})", lambda loss: loss.backward(), contextlib.nullcontext, step)
    zero2 = dataclasses.replace(train, zero_stage=2, offload_optimizer=False, offload_params=False)
    engine, _, _, _ = deepspeed.initialize(
        model=rge.model, optimizer=optimizer, lr_scheduler=schedule, config=deepspeed_config(zero2)
    )
    rge.model = engine.module
    engine.train()
    return Updater("DeepSpeed ZeRO-2", engine.backward, engine.coalesce_grad_reduction, engine.step)


class Trainer:
    """One method's `RGEStep` over the given batches, each followed by the shared updater's step."""

    def __init__(
        self,
        rge: RGEModel,
        train: TrainConfig,
        updater: Updater,
        batches: list[Sequence[Example]],
        sync: Callable[[], None],
    ):
        self.step = RGEStep(rge, train, backward=updater.backward, reduction_context=updater.reduction_context)
        self.updater, self.batches, self.sync = updater, batches, sync
        self.generated = self.budget_hits = 0
        self.records: list[dict[str, float]] = []  # per step: StepOutput.seconds, optimizer, total

    def run(self) -> None:
        for seed, batch in enumerate(self.batches):
            start = time.perf_counter()
            out = self.step(batch, seed=seed)
            self.sync()
            clock = time.perf_counter()
            self.updater.step()
            self.sync()
            end = time.perf_counter()
            self.records.append({**out.seconds, "optimizer": end - clock, "total": end - start})
            self.generated += len(out.rationales.texts) if out.rationales else 0
            self.budget_hits += out.budget_hits


def train_phase(rge: RGEModel, args, phases: Phases, rng: np.random.Generator) -> None:
    precision = "bf16" if rge.model.dtype == torch.bfloat16 else "fp32"
    base = dataclasses.replace(
        TrainConfig(),
        batch_size=args.train_batch_size,
        decoding=DecodingConfig(max_new_tokens=args.budget),
        gradient_checkpointing=True,
        hard_negatives=False,
        precision=precision,
    )
    examples = training_examples(rge, rng, args.image_size, args.steps * args.train_batch_size)
    batches = chunks(examples, args.train_batch_size)
    rge.model = apply_peft(rge.model, base)
    rge.model.train()
    updater = make_updater(rge, base)
    print(
        f"\ntraining: {updater.name}; LoRA rank {base.lora.rank} alpha {base.lora.alpha}, gradient "
        f"checkpointing, {precision}; {args.steps} steps of batch {args.train_batch_size}, rge budget "
        f"{args.budget} tokens, oracle rationale {ORACLE_TOKENS} tokens"
    )
    sync = torch.cuda.synchronize if rge.device.type == "cuda" else (lambda: None)
    trainers = {
        method: Trainer(rge, dataclasses.replace(base, method=method), updater, batches, sync)
        for method in ("baseline", "rge")
    }
    baseline, reasoning = measure(
        [
            Case(method, phases.track(f"training step ({method})", trainer.run), args.steps, "steps")
            for method, trainer in trainers.items()
        ],
        repeats=args.repeats,
    )
    rge_trainer = trainers["rge"]
    print(f"rge: {rge_trainer.budget_hits}/{rge_trainer.generated} on-the-fly rationales hit the budget without <emb>")
    print_table("training step (RGEStep + optimizer step), steps/s", baseline, [reasoning])
    print(f"ratio: rge step time vs baseline: {reasoning.median / baseline.median:.2f}x")
    print(f"  per step: baseline {baseline.median / args.steps:.3f} s, rge {reasoning.median / args.steps:.3f} s")
    # The step's inner clocks do not wait for the GPU: a part's queued kernels are counted in the next part
    # that waits (generation waits every token, so it also holds the LM forward's compute).
    print_breakdown({method: trainer.records[args.steps :] for method, trainer in trainers.items()})


def print_estimate(batched_queries: Timing, batched_candidates: Timing, max_new_tokens: int) -> None:
    queries_total = MMEB_SETS * QUERIES_PER_SET
    unique = MMEB_SETS * UNIQUE_CANDIDATES_PER_SET
    query_s = queries_total / batched_queries.rate
    seconds = query_s + unique / batched_candidates.rate
    no_sharing = query_s + queries_total * CANDIDATES_PER_QUERY / batched_candidates.rate
    print(
        f"\nestimate: full MMEB-V1 reasoning eval on 1 GPU: {seconds / 3600:.1f} h; "
        f"on {EVAL_GPUS} GPUs: {seconds / EVAL_GPUS / 60:.0f} min"
    )
    print(
        f"  = {queries_total:,} queries ({MMEB_SETS} sets x {QUERIES_PER_SET:,}, {max_new_tokens}-token "
        f"rationales) / {batched_queries.rate:.2f} queries/s + {unique:,} unique candidates ({MMEB_SETS} x "
        f"{UNIQUE_CANDIDATES_PER_SET:,}) / {batched_candidates.rate:.1f} candidates/s; "
        f"on {EVAL_GPUS} GPUs: / {EVAL_GPUS}"
    )
    print(
        f"  if no candidate were shared ({queries_total * CANDIDATES_PER_QUERY:,} candidates): "
        f"{no_sharing / 3600:.1f} h on 1 GPU"
    )


def print_setup(rge: RGEModel, args, placement: Placement) -> None:
    card = torch.cuda.get_device_name(placement.device) if placement.device.type == "cuda" else "CPU"
    params = sum(p.numel() for p in rge.model.parameters())
    tokens = image_tokens(rge, random_image(np.random.default_rng(0), args.image_size))
    print(
        f"device: {card}; torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}"
    )
    print(
        f"model: {'tiny (--quick)' if args.quick else 'Qwen2.5-VL-3B'} config, random weights, "
        f"{params / 1e6:,.1f}M parameters, {placement.dtype_name}, attention {placement.attn_implementation}; "
        f"{args.image_size}x{args.image_size} images -> {tokens} image tokens; timed rounds: {args.repeats}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--queries", type=int, default=16, help="reasoning queries per timed round")
    parser.add_argument("--batch-size", type=int, default=16, help="queries / candidates per batch")
    parser.add_argument("--candidates", type=int, default=64, help="candidates per timed round")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="rationale budget of the eval queries")
    parser.add_argument("--image-size", type=int, default=448, help="square image side, a multiple of 28")
    parser.add_argument("--steps", type=int, default=2, help="training steps per timed round")
    parser.add_argument("--train-batch-size", type=int, default=8)
    parser.add_argument(
        "--budget",
        type=int,
        default=256,
        help="rge step: on-the-fly rationale tokens (train.decoding.max_new_tokens of the 3B preset)",
    )
    parser.add_argument("--repeats", type=int, default=2)
    args = parse_args(parser, QUICK)
    if args.image_size % PIXEL_FACTOR:
        parser.error(f"--image-size must be a multiple of {PIXEL_FACTOR} (one merged patch), got {args.image_size}")
    try:
        placement = resolve_placement(args.device, "auto", "auto")
    except PlacementError as error:
        print(f"bench_gpu: --device {args.device}: {error}")
        return 2
    if placement.device.type != "cuda" and not args.quick:
        print(
            f"bench_gpu: the full-size run needs a CUDA GPU (device here: {placement.device}); "
            "--quick runs the tiny configuration on the CPU"
        )
        return 2
    if placement.device.type == "cuda":
        torch.cuda.set_device(placement.device)  # the memory counters below read the current device
    try:
        rge = build_rge(args.quick, placement, args.image_size)
        phases, rng = Phases(placement.device), np.random.default_rng(0)
        phases.record("model build")
        print_setup(rge, args, placement)
        batched_queries, batched_candidates = eval_phase(rge, args, phases, rng)
        sorted_vs_unsorted(rge, args, phases, rng)
        train_phase(rge, args, phases, rng)
    except torch.cuda.OutOfMemoryError as error:
        print(
            f"bench_gpu: out of GPU memory on {placement.device} ({str(error).splitlines()[0]}); "
            "try a smaller --batch-size / --train-batch-size"
        )
        return 1
    phases.report()
    print_estimate(batched_queries, batched_candidates, args.max_new_tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
