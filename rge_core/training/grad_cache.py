"""GradCache (Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup").

The contrastive loss needs every embedding of a large batch at once, but the model's activations only fit
for a chunk. So: embed all chunks without a graph, get d loss / d embeddings from the cheap loss-only
graph, then re-run each chunk with a graph and backpropagate the surrogate <embeddings, cached grad>,
whose gradient w.r.t. the parameters is exactly that chunk's share of d loss / d parameters.

Under DeepSpeed ZeRO pass `backward=engine.backward, reduction_context=engine.coalesce_grad_reduction`:
one engine.backward per chunk otherwise keeps only the last chunk's gradient on ZeRO-1/2, and
engine.no_sync() asserts (docs/environment.md, "DeepSpeed on CPU"). A caller that adds
other backward calls to the same step (e.g. the LM loss) should pass reduction_context=nullcontext and
wrap everything in ONE coalesce block itself: each block's exit overwrites the reduced gradients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import torch

# (CPU generator state, (CUDA device, its generator state) or None)
RngState = tuple[torch.Tensor, tuple[int, torch.Tensor] | None]


def _rng_state() -> RngState:
    # Only the current CUDA device: reading every visible GPU's generator would create a context on each.
    if not torch.cuda.is_initialized():
        return torch.get_rng_state(), None
    device = torch.cuda.current_device()
    return torch.get_rng_state(), (device, torch.cuda.get_rng_state(device))


@contextlib.contextmanager
def _replay_rng(state: RngState) -> Iterator[None]:
    """Run the block from a saved RNG state and leave the global RNG state as it was before the block.

    Why: each chunk runs the model twice (no-grad, then replay). With dropout the replay must draw the SAME
    masks as the no-grad pass, or the cached gradients belong to different embeddings than the ones being
    backpropagated. Afterwards the RNG continues from where the no-grad pass left it, as if the model ran
    once. (Other forward side effects, e.g. BatchNorm running statistics, do happen twice.)"""
    cpu, cuda = state
    with torch.random.fork_rng(devices=[cuda[0]] if cuda is not None else []):
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda[1], cuda[0])
        yield


def _embed_without_grad(
    encode: Callable[[slice], torch.Tensor], slices: list[slice]
) -> tuple[torch.Tensor, list[RngState], list[int]]:
    """Embeddings of all chunks (no graph), the RNG state before each chunk, and each chunk's row count."""
    chunks, states = [], []
    with torch.no_grad():
        for part in slices:
            states.append(_rng_state())
            chunks.append(encode(part))
    return torch.cat(chunks), states, [c.shape[0] for c in chunks]


def grad_cache_step(
    encode_query: Callable[[slice], torch.Tensor],
    encode_target: Callable[[slice], torch.Tensor],
    batch_size: int,
    chunk: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    backward: Callable[[torch.Tensor], None] = lambda t: t.backward(),
    reduction_context: Callable[[], AbstractContextManager] = contextlib.nullcontext,
) -> torch.Tensor:
    """Accumulate the gradients of loss_fn(all query embeddings, all target embeddings) into the model's
    parameters, holding one chunk's activations at a time; returns the loss (detached).

    encode_query / encode_target take a slice of batch indices and return that chunk's (L2-normalised)
    embeddings, with a graph when called under grad. A chunk may return any number of rows (e.g. a target
    and its hard negative) as long as loss_fn knows the layout; rows are concatenated in slice order."""
    if batch_size <= 0 or chunk <= 0:
        raise ValueError(f"batch_size {batch_size} and chunk {chunk} must be positive")
    slices = [slice(start, min(start + chunk, batch_size)) for start in range(0, batch_size, chunk)]
    queries, query_states, query_rows = _embed_without_grad(encode_query, slices)
    targets, target_states, target_rows = _embed_without_grad(encode_target, slices)

    # The graph of this step spans only loss_fn (and any cross-rank gather inside it), not the model.
    queries.requires_grad_()
    targets.requires_grad_()
    loss = loss_fn(queries, targets)
    query_grad, target_grad = torch.autograd.grad(loss, [queries, targets])

    with reduction_context():
        for encode, states, grads in (
            (encode_query, query_states, query_grad.split(query_rows)),
            (encode_target, target_states, target_grad.split(target_rows)),
        ):
            for part, state, grad in zip(slices, states, grads, strict=True):
                with _replay_rng(state):
                    embeddings = encode(part)
                backward(torch.dot(embeddings.flatten(), grad.flatten()))
    return loss.detach()
