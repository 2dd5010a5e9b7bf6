"""Launcher commands of the train stage (the multi-node ones cannot run here: their command lines are
what a cluster gets)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rge_core.config.schema import LaunchConfig, TrainConfig
from rge_core.launch import Launch
from rge_core.launch import launcher_command as _command
from rge_core.training.launch import TRAINER_MODULE

JOB = Path("/shared/artifacts/model/model-abc/job.json")


def launcher_command(train: TrainConfig, job: Path) -> list[str]:
    return _command(Launch.of(train.launch, "train"), TRAINER_MODULE, job)


def _option(command: list[str], name: str) -> str:
    return next(arg.split("=", 1)[1] for arg in command if arg.startswith(f"--{name}="))


def test_torchrun_on_one_node_takes_a_free_port_and_several_nodes_need_one_set():
    command = launcher_command(TrainConfig(launch=LaunchConfig(nproc=2)), JOB)
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"] and command[-3:] == [
        "-m",
        "rge_core.training.trainer",
        str(JOB),
    ]
    assert _option(command, "nproc_per_node") == "2" and int(_option(command, "master_port")) > 0
    with pytest.raises(ValueError, match="train.launch.master_port"):
        launcher_command(TrainConfig(launch=LaunchConfig(nproc=8, nnodes=4, master_addr="node0")), JOB)


def test_slurm_runs_one_torchrun_per_node_with_a_rendezvous_on_the_head_node(monkeypatch):
    train = TrainConfig(
        launch=LaunchConfig(launcher="slurm", nproc=8, nnodes=4, master_port=29500, master_addr="gpu-node-17")
    )
    command = launcher_command(train, JOB)
    assert command[:5] == ["srun", "--nodes=4", "--ntasks-per-node=1", "--kill-on-bad-exit=1", sys.executable]
    assert _option(command, "nproc_per_node") == "8" and _option(command, "nnodes") == "4"
    assert _option(command, "rdzv_endpoint") == "gpu-node-17:29500" and _option(command, "rdzv_id") == "model-abc"
    monkeypatch.delenv("SLURM_JOB_NODELIST", raising=False)
    with pytest.raises(ValueError, match="inside a Slurm allocation"):
        launcher_command(TrainConfig(launch=LaunchConfig(launcher="slurm", nnodes=2, master_port=29500)), JOB)


def test_deepspeed_launcher_takes_a_hostfile_and_unknown_launchers_are_named():
    command = launcher_command(
        TrainConfig(launch=LaunchConfig(launcher="deepspeed", nproc=8, hostfile="/shared/hostfile", master_port=29500)),
        JOB,
    )
    assert command[command.index("--hostfile") + 1] == "/shared/hostfile" and "--module" in command
    with pytest.raises(ValueError, match="'mpirun' is not torchrun, deepspeed, slurm or none"):
        launcher_command(TrainConfig(launch=LaunchConfig(launcher="mpirun")), JOB)


def test_eval_launches_its_shards_with_torchrun_and_names_its_own_settings():
    command = _command(Launch(launcher="torchrun", nproc=4, section="eval.launch"), "rge_core.evaluation.runner", JOB)
    assert _option(command, "nproc_per_node") == "4" and command[-3:] == ["-m", "rge_core.evaluation.runner", str(JOB)]
    over_nodes = Launch(
        launcher="slurm", nproc=8, section="eval.launch", nnodes=2, master_port=29600, master_addr="gpu-3"
    )
    command = _command(over_nodes, "rge_core.evaluation.runner", JOB)
    assert command[:2] == ["srun", "--nodes=2"] and _option(command, "rdzv_endpoint") == "gpu-3:29600"
    with pytest.raises(ValueError, match="eval.launch.master_port"):
        _command(Launch(launcher="slurm", nproc=8, section="eval.launch", nnodes=2), "rge_core.evaluation.runner", JOB)
    with pytest.raises(ValueError, match="eval.launch.launcher: 'mpirun'"):
        _command(Launch(launcher="mpirun", nproc=2, section="eval.launch"), "rge_core.evaluation.runner", JOB)
