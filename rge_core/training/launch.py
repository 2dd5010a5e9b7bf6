"""How the train stage starts the trainer: a `torchrun` or `deepspeed` launcher subprocess with
train.nproc processes per node (several nodes: train.nnodes / node_rank / master_addr, or a DeepSpeed
hostfile), `srun` + torchrun on every node of a Slurm allocation (train.launcher: slurm), or in-process
when train.launcher is "none" (then train.nproc must be 1)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Callable

from rge_core.config.schema import TrainConfig
from rge_core.subprocess_wait import wait_polling

TRAINER_MODULE = "rge_core.training.trainer"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def master_port(train: TrainConfig) -> int:
    """train.master_port, or (0, single node) a free port, so concurrent runs on one host never collide."""
    if train.master_port:
        return train.master_port
    if train.nnodes > 1:
        raise ValueError("train.master_port: set it explicitly for a multi-node run (every node needs the same)")
    return free_port()


def launcher_command(train: TrainConfig, job_file: Path) -> list[str]:
    port = master_port(train)
    if train.launcher == "torchrun":
        return [
            sys.executable, "-m", "torch.distributed.run",
            f"--nproc_per_node={train.nproc}", f"--nnodes={train.nnodes}", f"--node_rank={train.node_rank}",
            f"--master_addr={train.master_addr}", f"--master_port={port}",
            "-m", TRAINER_MODULE, str(job_file),
        ]  # fmt: skip
    if train.launcher == "deepspeed":
        placement = ["--hostfile", train.hostfile] if train.hostfile else [f"--num_nodes={train.nnodes}"]
        return [
            sys.executable, "-m", "deepspeed.launcher.runner", *placement, f"--num_gpus={train.nproc}",
            f"--master_addr={train.master_addr}", f"--master_port={port}",
            "--module", TRAINER_MODULE, str(job_file),
        ]  # fmt: skip
    if train.launcher == "slurm":
        # Inside an allocation (sbatch/salloc): one torchrun per node; the c10d rendezvous on the first
        # node numbers the nodes, so one command serves them all.
        return [
            "srun", f"--nodes={train.nnodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
            sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={train.nproc}", f"--nnodes={train.nnodes}",
            "--rdzv_backend=c10d", f"--rdzv_endpoint={_slurm_head(train)}:{port}", f"--rdzv_id={job_file.parent.name}",
            "-m", TRAINER_MODULE, str(job_file),
        ]  # fmt: skip
    raise ValueError(f"train.launcher: {train.launcher!r} is not torchrun, deepspeed, slurm or none")


def _slurm_head(train: TrainConfig) -> str:
    """train.master_addr when set, else the allocation's first node."""
    if train.master_addr not in ("", "127.0.0.1", "localhost"):
        return train.master_addr
    nodes = os.environ.get("SLURM_JOB_NODELIST")
    if not nodes:
        raise ValueError("train.launcher: slurm runs inside a Slurm allocation (sbatch/salloc); SLURM_JOB_NODELIST is not set")
    hosts = subprocess.run(["scontrol", "show", "hostnames", nodes], capture_output=True, text=True, check=True)
    return hosts.stdout.split()[0]


def run_trainer(train: TrainConfig, job_file: Path, log_file: Path, while_running: Callable[[], None] = lambda: None) -> None:
    """Run the trainer to completion, calling `while_running` every few seconds (progress reports); a
    failure raises with the tail of its log."""
    if train.launcher == "none":
        if train.nproc != 1 or train.nnodes != 1:
            raise ValueError("train.launcher: none runs one process; use torchrun or deepspeed for train.nproc > 1")
        from rge_core.training.trainer import TrainJob, main

        main(TrainJob.from_json(job_file.read_text()))
        return
    with log_file.open("w") as log:
        launcher = subprocess.Popen(launcher_command(train, job_file), stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
        try:
            wait_polling([launcher], while_running)
        finally:
            if launcher.poll() is None:  # interrupted: do not leave the trainers running
                launcher.terminate()
                launcher.wait()
    while_running()
    if launcher.returncode != 0:
        tail = log_file.read_text()[-3000:]
        raise RuntimeError(f"trainer exited with status {launcher.returncode}; log {log_file}:\n{tail}")
