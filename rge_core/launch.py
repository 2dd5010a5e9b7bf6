"""How a stage starts its worker processes (the trainer, the eval shards): a `torchrun` or `deepspeed`
launcher subprocess with `nproc` processes per node (several nodes: nnodes / node_rank / master_addr, or a
DeepSpeed hostfile), or `srun` + torchrun on every node of a Slurm allocation (launcher: slurm).

    command = launcher_command(Launch.of(config.train.launch, "train"), "rge_core.training.trainer", job_file)
    run_launched(Launch(launcher="torchrun", nproc=2, section="eval"), module, job_file, log_file)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from rge_core.child_processes import start, wait_for
from rge_core.config.schema import LaunchConfig
from rge_core.root_cause import WorkerFailed, failure_report

LAUNCHERS = ("torchrun", "deepspeed", "slurm")


@dataclass(frozen=True)
class Launch:
    launcher: str
    nproc: int
    section: str  # the config section the settings come from, for errors ("train", "eval")
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 0  # 0: a free port (single node)
    hostfile: str = ""

    @classmethod
    def of(cls, settings: LaunchConfig, section: str) -> Launch:
        """From a launch section (train.launch, eval.launch); `section` names it in errors."""
        return cls(section=f"{section}.launch", **asdict(settings))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def master_port(launch: Launch) -> int:
    """The set master_port, or (0, single node) a free port, so concurrent runs on one host never collide."""
    if launch.master_port:
        return launch.master_port
    if launch.nnodes > 1:
        raise ValueError(
            f"{launch.section}.master_port: set it explicitly for a multi-node run (every node needs the same)"
        )
    return free_port()


def launcher_command(launch: Launch, module: str, job_file: Path) -> list[str]:
    port = master_port(launch)
    if launch.launcher == "torchrun":
        return [
            sys.executable, "-m", "torch.distributed.run",
            f"--nproc_per_node={launch.nproc}", f"--nnodes={launch.nnodes}", f"--node_rank={launch.node_rank}",
            f"--master_addr={launch.master_addr}", f"--master_port={port}",
            "-m", module, str(job_file),
        ]  # fmt: skip
    if launch.launcher == "deepspeed":
        placement = ["--hostfile", launch.hostfile] if launch.hostfile else [f"--num_nodes={launch.nnodes}"]
        return [
            sys.executable, "-m", "deepspeed.launcher.runner", *placement, f"--num_gpus={launch.nproc}",
            f"--master_addr={launch.master_addr}", f"--master_port={port}",
            "--module", module, str(job_file),
        ]  # fmt: skip
    if launch.launcher == "slurm":
        # Inside an allocation (sbatch/salloc): one torchrun per node; the c10d rendezvous on the first
        # node numbers the nodes, so one command serves them all.
        return [
            "srun", f"--nodes={launch.nnodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
            sys.executable, "-m", "torch.distributed.run",
            f"--nproc_per_node={launch.nproc}", f"--nnodes={launch.nnodes}",
            "--rdzv_backend=c10d", f"--rdzv_endpoint={_slurm_head(launch)}:{port}", f"--rdzv_id={job_file.parent.name}",
            "-m", module, str(job_file),
        ]  # fmt: skip
    raise ValueError(f"{launch.section}.launcher: {launch.launcher!r} is not torchrun, deepspeed, slurm or none")


def _slurm_head(launch: Launch) -> str:
    """The set master_addr, else the allocation's first node."""
    if launch.master_addr not in ("", "127.0.0.1", "localhost"):
        return launch.master_addr
    nodes = os.environ.get("SLURM_JOB_NODELIST")
    if not nodes:
        raise ValueError(
            f"{launch.section}.launcher: slurm runs inside a Slurm allocation (sbatch/salloc); "
            "SLURM_JOB_NODELIST is not set"
        )
    hosts = subprocess.run(["scontrol", "show", "hostnames", nodes], capture_output=True, text=True, check=True)
    return hosts.stdout.split()[0]


def run_launched(
    launch: Launch, module: str, job_file: Path, log_file: Path, while_running: Callable[[], None] = lambda: None
) -> None:
    """Run `module JOB` under the launcher to completion, calling `while_running` every few seconds
    (progress reports); a failure raises with its first cause, then the tail of the log."""
    with log_file.open("w") as log:
        launcher = start(launcher_command(launch, module, job_file), stdout=log, stderr=subprocess.STDOUT)
        wait_for([launcher], while_running)  # interrupted: the launcher and its workers are stopped first
    while_running()
    if launcher.returncode != 0:
        raise WorkerFailed(failure_report(module, launcher.returncode, log_file))
