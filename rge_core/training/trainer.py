"""The RGE trainer: one process of a (possibly multi-process, multi-node) DeepSpeed run.

Launched by the train stage (rge_core/training/launch.py), or directly:
    torchrun --nproc_per_node 2 -m rge_core.training.trainer JOB.json
    deepspeed --num_gpus 8 --module rge_core.training.trainer JOB.json
`main(job)` is the same code for launchers, Prefect and tests.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

import torch

from data_schemas.io import read_table
from rge_core.child_processes import die_with_parent
from rge_core.config.job import Job
from rge_core.config.schema import ModelConfig, TrainConfig
from rge_core.fileio import atomic_write_text
from rge_core.model.rge_model import RGEModel
from rge_core.seeds import derived_seed
from rge_core.training.checkpoints import export_hf, full_state_dict, resume, save_checkpoint
from rge_core.training.data import batch_indices, to_examples, with_pairing
from rge_core.training.distributed import all_reduce_mean
from rge_core.training.files import FINAL_MODEL, METRICS, PROGRESS, RATIONALE_SAMPLES
from rge_core.training.setup import (
    apply_peft,
    deepspeed_config,
    optimizer_and_schedule,
    partitioned_loading,
    training_placement,
)
from rge_core.training.step import RGEStep
from rge_core.training.stop_signal import STOPPED_EXIT, StopSignal
from rge_core.training.tracking import Tracker, open_trackers, rationales_text, scalars_of
from rge_core.training.vllm_rationales import uses_colocated_vllm
from rge_core.training.weight_sync import no_gather


@dataclass(frozen=True)
class TrainJob(Job):
    train: TrainConfig
    model: ModelConfig  # where and how the trainer loads the model, and its image bounds (the dtype: train.precision)
    base_model: str  # local checkpoint folder to start from
    dataset: str  # train.parquet of the dataset artifact
    image_root: str
    output_dir: str  # local folder: checkpoints/, metrics.jsonl, rationale_samples.jsonl, model/
    run_name: str = ""  # the model artifact's id: names the W&B / MLflow run


def step_seed(seed: int, step: int, rank: int) -> int:
    return derived_seed(seed, step, rank)


def _single_process_env() -> None:
    """Without a launcher, DeepSpeed still wants the torch.distributed variables of a 1-process group."""
    for key, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))


def _generation_context(engine, zero_stage: int):
    import contextlib

    import deepspeed

    if zero_stage < 3:
        return contextlib.nullcontext
    # One gather of every parameter for the whole generation, not one per token.
    return lambda: deepspeed.zero.GatheredParameters(list(engine.module.parameters()))


def _colocated_engine(job: TrainJob, rge: RGEModel):
    """train.rationale_engine vllm: this rank's engine (rge method only: the others sample nothing)."""
    train = job.train
    if not uses_colocated_vllm(train):
        return None
    import deepspeed

    from rge_core.training.vllm_rationales import ColocatedVLLM

    gather = deepspeed.zero.GatheredParameters if train.zero_stage == 3 else no_gather
    return ColocatedVLLM(rge, job.base_model, train, job.model.min_pixels, job.model.max_pixels, gather=gather)


def _step_log(path: Path, start: int) -> TextIO:
    """A per-step JSONL log (metrics, rationale samples) opened for appending, with the lines of steps after
    the resumed checkpoint dropped (they are redone)."""
    kept = (
        [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= start] if path.exists() else []
    )
    path.write_text("".join(line + "\n" for line in kept))
    return path.open("a")


class StepLogs:
    """Rank 0's metrics.jsonl and rationale_samples.jsonl, continued after a resume, and the same steps sent
    to the experiment trackers (train.report_to)."""

    def __init__(self, root: Path, start: int, trackers: list[Tracker]) -> None:
        self.metrics = _step_log(root / METRICS, start)
        self.samples = _step_log(root / RATIONALE_SAMPLES, start)
        self.trackers = trackers

    def write(self, record: dict, samples: list[dict]) -> None:
        self.metrics.write(json.dumps(record) + "\n")
        self.metrics.flush()
        self.samples.write("".join(json.dumps(line) + "\n" for line in samples))
        self.samples.flush()
        for tracker in self.trackers:
            tracker.log(record["step"], scalars_of(record), rationales_text(samples))

    def close(self) -> None:
        self.metrics.close()
        self.samples.close()
        for tracker in self.trackers:
            tracker.close()


def sample_records(step: int, pair_ids: list[str], rationales, limit: int) -> list[dict]:
    """rationale_samples.jsonl lines: the first `limit` on-the-fly rationales of a step."""
    if rationales is None:
        return []
    rows = zip(pair_ids, rationales.texts, rationales.num_tokens, rationales.budget_hit, strict=True)
    return [
        {"step": step, "pair_id": pair_id, "rationale": text, "num_tokens": tokens, "budget_hit": hit}
        for pair_id, text, tokens, hit in itertools.islice(rows, limit)
    ]


def main(job: TrainJob, stop: StopSignal | None = None) -> Path:
    """Train to `job.output_dir`/model. With `stop` (a launched trainer), SIGTERM ends the run after the
    current step, with that step's checkpoint (exit status STOPPED_EXIT)."""
    import deepspeed

    train = job.train
    _single_process_env()
    placement = training_placement(train, job.model.device, job.model.attn_implementation)
    if placement.device.type == "cuda":
        torch.cuda.set_device(placement.device)  # NCCL, DeepSpeed and zero.Init use this rank's GPU
    deepspeed.init_distributed(verbose=False)
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    torch.manual_seed(train.seed)
    ds_config = deepspeed_config(train)
    with partitioned_loading(ds_config):
        rge = RGEModel.load(job.base_model, placement, job.model.min_pixels, job.model.max_pixels)
    model = apply_peft(rge.model, train)
    optimizer, schedule = optimizer_and_schedule(model, train)
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=schedule, config=ds_config)
    rge.model = engine.module
    rge.always_run_vision = train.zero_stage == 3
    root = Path(job.output_dir)
    start = resume(engine, root)
    if start and rank == 0:
        print(f"resumed from step {start}", flush=True)
    examples = to_examples(read_table(job.dataset, "training_examples").to_pylist(), Path(job.image_root))
    examples = with_pairing(examples, train.pairing, train.seed)
    subsets = tuple(e.subset for e in examples)
    colocated = _colocated_engine(job, rge)
    run_step = RGEStep(
        rge,
        train,
        backward=engine.backward,
        generation_context=_generation_context(engine, train.zero_stage),
        reduction_context=engine.coalesce_grad_reduction,
        rationales=colocated,
    )
    logs = None
    if rank == 0:
        logs = StepLogs(root, start, open_trackers(train.report_to, root, start, job.run_name, asdict(train)))
    engine.train()
    for step in range(start, train.steps):
        torch.manual_seed(step_seed(train.seed, step, rank))  # dropout and sampling: same after a resume
        indices = batch_indices(subsets, step, train.batch_size, rank, world, train.seed, train.batching)
        clock = time.perf_counter()
        batch = [examples[i] for i in indices]
        out = run_step(batch, seed=step_seed(train.decoding.seed, step, rank))  # the on-the-fly sampling
        optimizer_clock = time.perf_counter()
        engine.step()
        if colocated is not None:
            colocated.weights_changed()
        out.seconds["optimizer"] = time.perf_counter() - optimizer_clock
        elapsed = time.perf_counter() - clock
        record = {
            "step": step + 1,
            "loss": all_reduce_mean(out.loss),
            "lm_loss": all_reduce_mean(out.lm_loss),
            "emb_loss": all_reduce_mean(out.emb_loss),
            "accuracy": all_reduce_mean(out.accuracy),
            "lr": schedule.get_last_lr()[0] if hasattr(schedule, "get_last_lr") else train.lr,
            "samples_per_s": train.batch_size * world / elapsed,
            "generated_tokens_per_s": all_reduce_mean(out.generated_tokens / max(out.seconds["generation"], 1e-9))
            * world,
            "budget_hit_share": all_reduce_mean(out.budget_hits / len(indices)),
            "seconds": out.seconds,
        }
        last = step + 1 == train.steps
        # The first and last steps are always logged: the stage's summary and curve read them, whatever
        # log_every says (as transformers' logging_first_step).
        if logs is not None and (step == 0 or last or (step + 1) % train.log_every == 0):
            logs.write(record, sample_records(step + 1, [e.pair_id for e in batch], out.rationales, train.log_samples))
        if rank == 0:
            progress = {"step": step + 1, "loss": record["loss"], "samples_per_s": record["samples_per_s"]}
            atomic_write_text(str(root / PROGRESS), json.dumps(progress))
        stopping = stop is not None and not last and stop.agreed()
        if not last and (stopping or (step + 1) % train.checkpoint_every == 0):
            save_checkpoint(engine, root, step + 1, job.base_model, train, rge.processor, rank)
        if stopping:
            if logs is not None:
                logs.close()
                print(f"stopped by SIGTERM after step {step + 1}, its checkpoint saved: a rerun resumes", flush=True)
            raise SystemExit(STOPPED_EXIT)
    state = full_state_dict(engine, rank)
    if rank == 0:
        export_hf(state, job.base_model, train, rge.processor, root / FINAL_MODEL)
    if logs is not None:
        logs.close()
    torch.distributed.barrier()
    if colocated is not None:
        colocated.close()  # last: its shutdown takes the process group down with it
    if torch.distributed.is_initialized():
        # Left to the interpreter's exit, gloo's threads now and then abort the process ("terminate called
        # without an active exception") after the model is written, failing the stage.
        torch.distributed.destroy_process_group()
    return root / FINAL_MODEL


if __name__ == "__main__":
    die_with_parent()  # the launcher (torchrun) dying, even by SIGKILL, stops this trainer
    main(TrainJob.from_json(Path(sys.argv[1]).read_text()), StopSignal().install())
