"""One curation engine: builds its generator once and curates its missing shards (every `workers`-th).

The curate stage runs the only engine in-process when there is one, and otherwise starts one process
per engine (each pinned to its GPUs through CUDA_VISIBLE_DEVICES on GPU hosts):

    python -m rge_core.curation.engine_run JOB.json GLOBAL_ENGINE_INDEX
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from data_schemas.io import read_table, write_table
from rge_core import progress
from rge_core.child_processes import die_with_parent
from rge_core.config.job import Job
from rge_core.config.schema import CurationConfig, ModelConfig
from rge_core.curation.rationales_artifact import shard_file
from rge_core.curation.shards import ShardContext, curate_pairs, shard_ranges
from rge_core.curation.validate import RationaleRules, token_counter
from rge_core.data.image_header import pixel_cap
from rge_core.fileio import read_bytes
from rge_core.generation.base import build_generator
from rge_core.model.placement import resolve_placement
from rge_core.prompts.prompt_set import load_prompt_set


@dataclass(frozen=True)
class CurationJob(Job):
    """Everything an engine needs, as plain values (it travels to engine processes as JSON)."""

    curation: CurationConfig
    model: ModelConfig  # the image bounds of training and eval; where the transformers generator loads
    pairs_url: str  # the pairs parquet
    image_root: str
    output_url: str  # the (incomplete) rationales artifact folder
    generator_model: str  # local checkpoint folder (vllm / transformers)
    reference_path: str  # reference generator's file
    # The pipeline's model (the student, not the generator): its tokenizer counts rationale tokens against
    # the prompt set's output_format.max_tokens.
    tokenizer_path: str
    workers: int  # engine processes over all nodes; engine k takes shards k, k + workers, ...


def generator_placement(job: CurationJob):
    """The transformers generator's device, dtype (curation.dtype) and attention."""
    model = job.model
    return resolve_placement(
        model.device, job.curation.dtype, model.attn_implementation, dtype_setting="curation.dtype"
    )


def _generator(job: CurationJob):
    curation = job.curation
    if curation.generator == "reference":
        return build_generator("reference", path=job.reference_path)
    bounds = {"min_pixels": job.model.min_pixels, "max_pixels": job.model.max_pixels}
    if curation.generator == "transformers":
        return build_generator(
            "transformers",
            model=job.generator_model,
            placement=generator_placement(job),
            batch_size=curation.batch_size,
            **bounds,
        )
    return build_generator(
        curation.generator,
        model=job.generator_model,
        **bounds,
        tensor_parallel_size=curation.tensor_parallel_size,
        max_model_len=curation.max_model_len,
        dtype=curation.dtype,
        seed=curation.decoding.seed,
        structured_backend=curation.structured_backend,
    )


def run_engine(job: CurationJob, engine: int, has_file) -> int:
    """Curate this engine's missing shards; returns how many it wrote."""
    curation = job.curation
    pairs = read_table(job.pairs_url, "pairs")
    ranges = shard_ranges(pairs.num_rows, curation.shard_size)
    todo = [i for i in range(engine, len(ranges), job.workers) if not has_file(shard_file(i))]
    if not todo:
        return 0
    prompt_set = load_prompt_set(curation.prompt_set)
    budget = prompt_set.max_tokens
    rules = RationaleRules(
        curation.min_chars,
        curation.max_chars,
        prompt_set.output_regex,
        budget,
        token_counter(job.tokenizer_path) if budget is not None else None,
    )
    curated = rejects = 0
    progress.report("curate", 0, len(todo), rows=curated, rejects=rejects)  # the bar shows while the engine starts
    generator = _generator(job)
    context = ShardContext(
        prompt_set=prompt_set,
        generator=generator,
        sampling=curation.decoding,
        rules=rules,
        max_retries=curation.max_retries,
        image_root=Path(job.image_root),
        regex=prompt_set.output_regex if curation.structured_output and curation.generator == "vllm" else None,
        pixel_cap=pixel_cap(job.model.max_pixels),
    )
    try:
        for done, index in enumerate(todo, 1):
            rows = pairs.slice(ranges[index].start, len(ranges[index])).to_pylist()
            shard = curate_pairs(rows, context)
            write_table(f"{job.output_url}/{shard_file(index)}", shard, "rationales")
            curated += shard.num_rows
            rejects += shard.num_rows - sum(shard.column("valid").to_pylist())
            progress.report("curate", done, len(todo), rows=curated, rejects=rejects)
    finally:
        generator.close()
    return len(todo)


def main(argv: list[str]) -> None:
    import fsspec

    job = CurationJob.from_json(read_bytes(argv[0]))
    fs, folder = fsspec.core.url_to_fs(job.output_url)
    run_engine(job, int(argv[1]), lambda rel: fs.isfile(f"{folder}/{rel}"))


if __name__ == "__main__":
    die_with_parent()  # the curate stage dying, even by SIGKILL, stops this engine
    main(sys.argv[1:])
