"""The encoding side of an evaluation, the same in the eval stage and in each of its shard processes.

With eval.launch.nproc > 1 the stage launches `nproc` shard processes (one per GPU, like training: torchrun, or
srun inside a Slurm allocation). They deal the chunks of every dataset's queries and unique candidates out
among themselves (chunk k of the whole evaluation goes to process k mod nproc) and write them into the
shared embedding cache; the stage then reads every chunk back and scores, exactly as one process would
have. A killed shard loses only its unfinished chunk: a rerun encodes the missing chunks alone.

    torchrun --nproc_per_node 8 -m rge_core.evaluation.runner JOB.json
"""

from __future__ import annotations

import itertools
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from rge_core.child_processes import die_with_parent
from rge_core.config.job import Job
from rge_core.config.schema import Config
from rge_core.data.image_header import pixel_cap
from rge_core.data.rewrites import load_rewrites
from rge_core.embedder import Embedder
from rge_core.evaluation.encode import Encoder, EncodeSettings, chunk_count
from rge_core.evaluation.rationale_modes import fixed_works
from rge_core.evaluation.row_failures import ItemScreen
from rge_core.evaluation.work import DatasetWork, dataset_work
from rge_core.model.placement import pin_local_gpu

RUNNER_MODULE = "rge_core.evaluation.runner"
SIDES = ("queries", "candidates")


@dataclass(frozen=True)
class EvalJob(Job):
    """Everything an eval process needs, as plain values (it travels to shard processes as JSON)."""

    config: Config
    model_dir: str
    folder: str  # MMEB-eval-format folder
    image_root: str
    datasets: list[str]
    cache: str  # the embedding cache folder of this evaluation
    assigned: str = ""  # eval.rationales shuffled / given: every query's rationale (rationale_modes.assign)


def encode_settings(config: Config) -> EncodeSettings:
    return EncodeSettings(reasoning=config.eval.reasoning, chunk_size=config.eval.chunk_size)


def dataset_works(job: EvalJob, changed: dict | None = None) -> list[DatasetWork]:
    from rge_core.data.mmeb_eval import read_mmeb_eval

    ev = job.config.eval
    items = read_mmeb_eval(Path(job.folder), job.datasets, Path(job.image_root))
    query_rewrites = load_rewrites(ev.query_rewrites, "eval.query_rewrites")
    candidate_rewrites = load_rewrites(ev.candidate_rewrites, "eval.candidate_rewrites")
    works = [
        dataset_work(items, name, Path(job.image_root), query_rewrites, candidate_rewrites, changed)
        for name in job.datasets
    ]
    return fixed_works(works, job.assigned)


def encoder(job: EvalJob) -> Encoder:
    def load() -> Embedder:
        # The eval's placement, image bounds, decoding and rationale engine (eval.engine; a vLLM engine starts
        # on the first query chunk to reason). Queries and candidates come rewritten from dataset_work.
        return Embedder.from_config(job.config, job.model_dir)

    return Encoder(load, encode_settings(job.config), Path(job.cache), item_screen(job.config))


def item_screen(config: Config) -> ItemScreen:
    """Which items are rejects before encoding (rge_core/evaluation/row_failures.py)."""
    return ItemScreen(pixel_cap(config.model.max_pixels), config.eval.max_text_chars)


def items_of(work: DatasetWork, side: str) -> list:
    return work.queries if side == "queries" else work.targets


def chunk_name(work: DatasetWork, side: str) -> str:
    return f"{work.dataset}-{side}"


def encode_share(job: EvalJob, rank: int, world: int) -> int:
    """Encode this process's chunks (every `world`-th of the whole evaluation, from `rank`); returns how many
    were not cached yet."""
    works, chunk_size = dataset_works(job), job.config.eval.chunk_size
    tasks = [
        (work, side, index)
        for work in works
        for side in SIDES
        for index in range(chunk_count(items_of(work, side), chunk_size))
    ]
    enc, fresh = encoder(job), 0
    try:
        # One call per dataset side with all of this process's chunks of it (the chunk list is built once).
        for (work, side), mine in itertools.groupby(tasks[rank::world], key=lambda task: task[:2]):
            fresh += enc.encode_chunks(side, chunk_name(work, side), items_of(work, side), [i for _, _, i in mine])
    finally:
        enc.close()
    return fresh


def main(job_file: str) -> None:
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    job = EvalJob.from_json(Path(job_file).read_text())
    if job.config.model.device in ("auto", "cuda"):
        pin_local_gpu()  # before CUDA starts: vLLM's engine always takes the first GPU it sees
    fresh = encode_share(job, rank, world)
    print(f"eval shard {rank} of {world}: {fresh} chunks encoded", flush=True)


if __name__ == "__main__":
    die_with_parent()  # the launcher (torchrun) dying, even by SIGKILL, stops this shard
    main(sys.argv[1])
