"""Device, dtype and attention kernel as settings (model.device / dtype / attn_implementation): resolved
per process, refused in one line before any work, and actually used by the loaders."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from rge_core.config.schema import TrainConfig
from rge_core.model.inputs import Target
from rge_core.model.placement import PlacementError, pin_local_gpu, resolve_placement
from rge_core.model.rge_model import RGEModel
from rge_core.training.setup import training_placement
from tests.helpers import rge_command


@pytest.mark.parametrize(
    "settings, message",
    [
        (("cuda", "auto", "sdpa"), "model.device: cuda asked for, but this machine has no CUDA GPU"),
        (("cuda:1", "auto", "sdpa"), "model.device: cuda:1 asked for"),
        (("gpu", "auto", "sdpa"), "model.device: 'gpu' is not auto, cpu, cuda or cuda:N"),
        (("cpu", "fp8", "sdpa"), "model.dtype: 'fp8' is not auto"),
        (("cpu", "auto", "flash"), "model.attn_implementation: 'flash' is not one of"),
        (("cpu", "auto", "flash_attention_2"), "model.attn_implementation: flash_attention_2 needs a CUDA device"),
    ],
)
def test_bad_settings_name_themselves(settings, message):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(PlacementError, match=message.replace("(", r"\(")):
        resolve_placement(*settings)


def test_each_local_rank_sees_only_its_own_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")  # e.g. what Slurm gave the job
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "2")
    pin_local_gpu()
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "6"
    pin_local_gpu()  # already pinned: one GPU stays that one
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "6"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")  # one process on the node keeps every GPU
    pin_local_gpu()
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"


def test_auto_on_a_cpu_machine_is_the_cpu_in_float32_with_sdpa():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    placement = resolve_placement("auto", "auto", "auto")
    assert (placement.device.type, placement.dtype, placement.attn_implementation) == ("cpu", torch.float32, "sdpa")
    assert placement.record() == {"dtype": "float32", "attn_implementation": "sdpa"}


def test_the_loader_uses_dtype_and_attention(tiny_model_dir):
    reference = RGEModel.load(str(tiny_model_dir), resolve_placement("cpu", "float32", "sdpa"))
    half = RGEModel.load(str(tiny_model_dir), resolve_placement("cpu", "bfloat16", "eager"))
    assert {p.dtype for p in half.model.parameters()} == {torch.bfloat16}
    assert half.model.config._attn_implementation == "eager"
    assert reference.model.config._attn_implementation == "sdpa"
    targets = [Target("a red square"), Target("two blue circles")]
    with torch.no_grad():
        ours, theirs = half.embed_targets(targets), reference.embed_targets(targets)
    cosine = (ours * theirs).sum(dim=-1)
    assert not torch.equal(ours, theirs) and bool((cosine > 0.99).all())  # bf16 rounding, the same embedding


def test_the_trainer_loads_in_its_training_precision():
    assert training_placement(TrainConfig(precision="bf16"), "cpu", "sdpa").dtype == torch.bfloat16
    assert training_placement(TrainConfig(precision="fp32"), "auto", "sdpa").dtype == torch.float32


ZERO3_LOAD = """
import json, sys, deepspeed, torch
from rge_core.config.schema import TrainConfig
from rge_core.model.rge_model import RGEModel
from rge_core.training.setup import deepspeed_config, partitioned_loading, training_placement
deepspeed.init_distributed(dist_backend="gloo", verbose=False)
placement = training_placement(TrainConfig(), "cpu", "sdpa")
sizes = {}
for stage in (2, 3):
    config = deepspeed_config(TrainConfig(zero_stage=stage))
    with partitioned_loading(config):
        rge = RGEModel.load(sys.argv[1], placement)
    params = list(rge.model.parameters())
    sizes[stage] = [sum(p.numel() for p in params), sum(getattr(p, "ds_numel", 0) for p in params),
                    rge.emb.resized]
print("RESULT " + json.dumps(sizes))
"""


@pytest.mark.slow
def test_zero3_loads_partitioned_and_other_stages_whole(tiny_model_dir):
    env = {
        **os.environ,
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(29400 + os.getpid() % 500),
    }
    done = subprocess.run(
        [sys.executable, "-c", ZERO3_LOAD, str(tiny_model_dir)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    sizes = {int(k): v for k, v in __import__("json").loads(done.stdout.split("RESULT ", 1)[1]).items()}
    whole, _, _ = sizes[2]
    assert whole > 0
    # Under ZeRO-3 no process holds the weights: every parameter is an empty partition handle of the full size;
    # `<emb>` is already in the tiny vocabulary, so the partitioned embedding is not resized either.
    assert sizes[3] == [0, whole, False]


def test_cli_refuses_a_missing_gpu_before_any_work(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    command = rge_command("eval", f"run.artifacts_root={tmp_path}", "model.device=cuda")
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "model.device: cuda asked for, but this machine has no CUDA GPU" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not any(tmp_path.iterdir())  # nothing built
