"""GradCache against plain backward: same loss and parameter gradients (dropout included), and under a
real DeepSpeed ZeRO-2 engine the same parameters after engine.step()."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from rge_core.launch import free_port
from rge_core.training import grad_cache
from rge_core.training.grad_cache import grad_cache_step
from rge_core.training.losses import info_nce

BATCH, DIM, TEMPERATURE = 8, 6, 0.05


def _model(seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.nn.Module:
    """float64 by default so that "equal" can mean 1e-6 on gradients of size ~5 (fp32 rounding alone is ~1e-6)."""
    torch.manual_seed(seed)
    layers = torch.nn.Linear(DIM, 16), torch.nn.Dropout(p=0.1), torch.nn.Tanh(), torch.nn.Linear(16, 8)
    return torch.nn.Sequential(*layers).to(dtype)


def _inputs(dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(1)
    return tuple(torch.randn(BATCH, DIM, generator=generator, dtype=dtype) for _ in range(3))


def _encoders(model: torch.nn.Module, hard: bool) -> tuple[Callable, Callable, Callable]:
    """Query and target encoders over slices; with `hard`, a target chunk holds rows (target, hard
    negative) interleaved, and the loss splits them apart."""
    xq, xt, xh = _inputs(next(model.parameters()).dtype)

    def encode_query(part: slice) -> torch.Tensor:
        return F.normalize(model(xq[part]), dim=-1)

    def encode_target(part: slice) -> torch.Tensor:
        rows = torch.stack([xt[part], xh[part]], dim=1).reshape(-1, DIM) if hard else xt[part]
        return F.normalize(model(rows), dim=-1)

    def loss_fn(q: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if hard:
            pairs = t.reshape(-1, 2, t.shape[-1])
            return info_nce(q, pairs[:, 0], TEMPERATURE, hard_negatives=pairs[:, 1])[0]
        return info_nce(q, t, TEMPERATURE)[0]

    return encode_query, encode_target, loss_fn


def _reference(
    model: torch.nn.Module, chunk: int, hard: bool, backward: Callable = lambda t: t.backward()
) -> torch.Tensor:
    """Plain forward with a graph over the whole batch, one backward. The forward runs in the same chunks
    and order as GradCache's no-grad pass, so dropout draws the same masks from the same seed (with
    chunk == BATCH it is a single full-batch forward)."""
    encode_query, encode_target, loss_fn = _encoders(model, hard)
    parts = [slice(s, min(s + chunk, BATCH)) for s in range(0, BATCH, chunk)]
    q = torch.cat([encode_query(p) for p in parts])
    t = torch.cat([encode_target(p) for p in parts])
    loss = loss_fn(q, t)
    backward(loss)
    return loss.detach()


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("chunk", [2, 3, BATCH])
@pytest.mark.parametrize("hard", [False, True])
def test_grad_cache_matches_full_batch_backward(chunk: int, hard: bool):
    model, reference = _model(), _model()
    torch.manual_seed(123)
    encode_query, encode_target, loss_fn = _encoders(model, hard)
    loss = grad_cache_step(encode_query, encode_target, BATCH, chunk, loss_fn)
    after_cached = torch.rand(4)
    torch.manual_seed(123)
    expected = _reference(reference, chunk, hard)
    after_reference = torch.rand(4)

    assert torch.isfinite(loss) and abs(loss.item() - expected.item()) < 1e-6
    got, want = _grads(model), _grads(reference)
    assert got.keys() == want.keys() and len(got) == 4
    for name in want:
        assert want[name].abs().sum() > 0, name
        assert torch.allclose(got[name], want[name], atol=1e-6, rtol=0), (name, (got[name] - want[name]).abs().max())
    # The replays leave the RNG where a single forward would have.
    assert torch.equal(after_cached, after_reference)


def test_replay_without_rng_restore_differs(monkeypatch):
    """Dropout is active here, so replaying chunks with fresh random masks gives wrong gradients: the RNG
    save/restore is what makes the equality above hold."""
    model, reference = _model(), _model()
    monkeypatch.setattr(grad_cache, "_replay_rng", lambda state: contextlib.nullcontext())
    torch.manual_seed(123)
    encode_query, encode_target, loss_fn = _encoders(model, False)
    grad_cache_step(encode_query, encode_target, BATCH, 2, loss_fn)
    torch.manual_seed(123)
    _reference(reference, 2, False)
    assert not torch.allclose(model[0].weight.grad, reference[0].weight.grad, atol=1e-4)


@pytest.fixture(scope="module")
def deepspeed_env():
    """Single-process DeepSpeed on CPU: launcher env vars (else it looks for mpi4py), the project's own
    JIT cache, and no shared-memory comm op. DeepSpeed's TorchBackend JIT-builds deepspeed_shm_comm
    (~100 s) on every CPU init; it only speeds up intra-node all_reduce, useless for one process, so the
    test skips it and DeepSpeed falls back to plain gloo collectives.

    The world-size-1 process group stays up for the rest of the session: DeepSpeed keeps process-global
    comm state (deepspeed.comm's backend, deepspeed.utils.groups) that does not survive a teardown and
    re-init in the same process; a later deepspeed.initialize reuses it."""
    deepspeed = pytest.importorskip("deepspeed")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"}.items():
            patch.setenv(key, value)
        patch.setenv("MASTER_PORT", str(free_port()))
        patch.setenv("TORCH_EXTENSIONS_DIR", str(Path(__file__).resolve().parents[1] / ".cache" / "torch_extensions"))
        # By module object: the dotted path "deepspeed.comm.torch" resolves to the torch that deepspeed.comm imports.
        patch.setattr(importlib.import_module("deepspeed.comm.torch"), "build_shm_op", lambda: None)
        yield deepspeed


def _engine(deepspeed, seed: int):
    model = _model(seed, torch.float32)
    config = {
        "train_batch_size": BATCH,
        "train_micro_batch_size_per_gpu": BATCH,
        "gradient_accumulation_steps": 1,
        "zero_optimization": {"stage": 2},
        "zero_allow_untested_optimizer": True,  # plain SGD: the update is linear in the gradient
        "fp16": {"enabled": False},
        "bf16": {"enabled": False},
    }
    # A torch optimizer avoids JIT-building DeepSpeed's fused_adam / cpu_adam.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=config)
    return engine


def _params(engine) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in engine.module.named_parameters()}


@pytest.mark.parametrize("coalesce", [True, False])
def test_grad_cache_under_deepspeed_zero2(deepspeed_env, coalesce: bool):
    """With engine.coalesce_grad_reduction the chunked step updates the parameters exactly like an
    unchunked engine step; without it ZeRO-2 keeps only part of the gradient (the reason for the hook)."""
    cached, plain = _engine(deepspeed_env, 0), _engine(deepspeed_env, 0)
    start = _params(cached)
    assert all(torch.equal(start[name], value) for name, value in _params(plain).items())

    torch.manual_seed(7)
    context = cached.coalesce_grad_reduction if coalesce else contextlib.nullcontext
    encode_query, encode_target, loss_fn = _encoders(cached, hard=True)
    loss = grad_cache_step(
        encode_query, encode_target, BATCH, 2, loss_fn, backward=cached.backward, reduction_context=context
    )
    cached.step()
    torch.manual_seed(7)
    expected = _reference(plain, 2, hard=True, backward=plain.backward)
    plain.step()

    assert abs(loss.item() - expected.item()) < 1e-6
    got, want = _params(cached), _params(plain)
    assert all(not torch.equal(want[name], start[name]) for name in want)
    same = all(torch.allclose(got[name], want[name], atol=1e-6, rtol=0) for name in want)
    assert same is coalesce


@pytest.mark.parametrize(("batch_size", "chunk"), [(0, 2), (4, 0)])
def test_grad_cache_refuses_empty_batches_or_chunks(batch_size: int, chunk: int):
    encode_query, encode_target, loss_fn = _encoders(_model(), False)
    with pytest.raises(ValueError, match="must be positive"):
        grad_cache_step(encode_query, encode_target, batch_size, chunk, loss_fn)
