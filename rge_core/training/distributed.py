"""torch.distributed helpers that also work in a plain single process (no process group)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn


def world() -> tuple[int, int]:
    """(rank, world_size); (0, 1) when torch.distributed is unavailable or not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate `tensor` from every rank along dim 0 in rank order, keeping the autograd graph.

    The backward of torch.distributed.nn's all_gather sums the gradients that every rank's copy receives
    (reduce-scatter SUM), so each rank's slice gets d(sum of all ranks' losses)/d(slice). All ranks must
    pass the same shape: all_gather sizes its receive buffers from the local tensor, so a mismatch would
    fail obscurely or corrupt rows; one tiny extra collective checks it."""
    _, size = world()
    if size == 1:
        return tensor
    rows = [tensor.new_zeros(1, dtype=torch.long) for _ in range(size)]
    dist.all_gather(rows, tensor.new_tensor([tensor.shape[0]], dtype=torch.long))
    counts = [int(r) for r in rows]
    if len(set(counts)) != 1:
        raise ValueError(f"gather_with_grad needs equal rows on all ranks, got {counts}")
    return torch.cat(dist_fn.all_gather(tensor), dim=0)


def all_reduce_mean(value: float) -> float:
    """Mean of a Python float over ranks (for logging; no gradient)."""
    _, size = world()
    if size == 1:
        return float(value)
    # NCCL only reduces CUDA tensors; gloo takes CPU ones.
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    total = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.item() / size
