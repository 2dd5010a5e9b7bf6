"""How the train stage starts the trainer: under train.launch.launcher (torchrun | deepspeed | slurm, see
rge_core/launch.py) with train.launch.nproc processes per node, or in-process when train.launch.launcher is "none"
(then train.launch.nproc must be 1)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rge_core.config.schema import TrainConfig
from rge_core.launch import Launch, run_launched

TRAINER_MODULE = "rge_core.training.trainer"


def run_trainer(
    train: TrainConfig, job_file: Path, log_file: Path, while_running: Callable[[], None] = lambda: None
) -> None:
    """Run the trainer to completion, calling `while_running` every few seconds (progress reports); a
    failure raises with the tail of its log."""
    if train.launch.launcher == "none":
        if train.launch.nproc != 1 or train.launch.nnodes != 1:
            raise ValueError(
                "train.launch.launcher: none runs one process; use torchrun or deepspeed for train.launch.nproc > 1"
            )
        from rge_core.training.trainer import TrainJob, main

        main(TrainJob.from_json(job_file.read_text()))
        return
    run_launched(Launch.of(train.launch, "train"), TRAINER_MODULE, job_file, log_file, while_running)
