"""Where and how a model is loaded: device, dtype and attention kernel, resolved from the `model.*` settings.

    model.device              auto | cpu | cuda | cuda:N   auto: this process's GPU (LOCAL_RANK) when there is
                                                           one, else the CPU
    model.dtype               auto | float32 | bfloat16 | float16    auto: bfloat16 on a GPU, float32 on a CPU
    model.attn_implementation sdpa | eager | flash_attention_2 | auto  auto: flash_attention_2 on a GPU when
                                                           flash-attn is installed, else sdpa

Every bad value fails here, in one line naming the setting, before any model is loaded.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ATTENTION = ("sdpa", "eager", "flash_attention_2", "auto")


class PlacementError(ValueError):
    pass


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype
    attn_implementation: str

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    def record(self) -> dict:
        """What changes the numbers (dtype, kernel), for versions and caches; the device does not."""
        return {"dtype": self.dtype_name, "attn_implementation": self.attn_implementation}


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def pin_local_gpu() -> None:
    """Let this process see only its local rank's GPU (CUDA_VISIBLE_DEVICES), when a launcher started several
    on one node. Call it before anything initialises CUDA: engines that always take the first visible GPU
    (vLLM's single-process executor) then land on this rank's, and `auto` resolves to it."""
    if int(os.environ.get("LOCAL_WORLD_SIZE", "1")) < 2:
        return
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    # device_count() asks NVML before CUDA is initialised, so the variable still takes effect afterwards.
    ids = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
    if len(ids) > 1:
        os.environ["CUDA_VISIBLE_DEVICES"] = ids[local_rank() % len(ids)]


def resolve_device(setting: str, rank: int | None = None) -> torch.device:
    rank = local_rank() if rank is None else rank
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if setting == "auto":
        return torch.device("cuda", rank % gpus) if gpus else torch.device("cpu")
    if setting == "cpu":
        return torch.device("cpu")
    if setting == "cuda" or setting.startswith("cuda:"):
        index = rank if setting == "cuda" else setting.removeprefix("cuda:")
        if not str(index).isdigit():
            raise PlacementError(f"model.device: {setting!r} is not auto, cpu, cuda or cuda:N")
        if not gpus:
            raise PlacementError(
                f"model.device: {setting} asked for, but this machine has no CUDA GPU (use auto or cpu)"
            )
        if int(index) >= gpus:
            raise PlacementError(f"model.device: {setting} asked for, but this machine has {gpus} GPU(s)")
        return torch.device("cuda", int(index))
    raise PlacementError(f"model.device: {setting!r} is not auto, cpu, cuda or cuda:N")


def resolve_dtype(setting: str, device: torch.device, name: str = "model.dtype") -> torch.dtype:
    if setting == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if setting not in DTYPES:
        raise PlacementError(f"{name}: {setting!r} is not auto, {', '.join(DTYPES)}")
    return DTYPES[setting]


def flash_attention_installed() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def resolve_attention(setting: str, device: torch.device) -> str:
    if setting not in ATTENTION:
        raise PlacementError(f"model.attn_implementation: {setting!r} is not one of {', '.join(ATTENTION)}")
    if setting == "auto":
        return "flash_attention_2" if device.type == "cuda" and flash_attention_installed() else "sdpa"
    if setting == "flash_attention_2" and (device.type != "cuda" or not flash_attention_installed()):
        raise PlacementError(
            "model.attn_implementation: flash_attention_2 needs a CUDA device and the flash-attn "
            "package (use sdpa or auto)"
        )
    return setting


def resolve_placement(
    device: str = "auto",
    dtype: str = "auto",
    attn_implementation: str = "sdpa",
    rank: int | None = None,
    dtype_setting: str = "model.dtype",
) -> Placement:
    """The placement of one process (`rank`: its local rank, default LOCAL_RANK); `dtype_setting` names
    the setting `dtype` came from, for errors."""
    where = resolve_device(device, rank)
    placement = Placement(
        where, resolve_dtype(dtype, where, dtype_setting), resolve_attention(attn_implementation, where)
    )
    if placement.attn_implementation == "flash_attention_2" and placement.dtype == torch.float32:
        raise PlacementError(
            f"model.attn_implementation: flash_attention_2 runs in bfloat16 or float16, not {dtype_setting} float32"
        )
    return placement


def placement_of(model_config, rank: int | None = None) -> Placement:
    """The placement from a ModelConfig's device / dtype / attn_implementation."""
    return resolve_placement(model_config.device, model_config.dtype, model_config.attn_implementation, rank)
