"""Losses against independent computations (numpy / per-token and per-row loops), and InfoNCE (with and
without masked hard negatives) across 2 gloo processes against the single-process full batch."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from rge_core.launch import free_port
from rge_core.training.distributed import all_reduce_mean, gather_with_grad, world
from rge_core.training.losses import info_nce, lm_labels, lm_loss
from tests.reference_losses import per_row_info_nce

X = -100


def test_lm_labels_right_padding():
    input_ids = torch.tensor([[11, 12, 13, 14, 15, 0, 0], [21, 22, 23, 24, 25, 26, 27]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1]])
    expected = torch.tensor([[X, X, X, 14, 15, X, X], [X, X, X, X, 25, 26, 27]])
    assert torch.equal(lm_labels(input_ids, mask, torch.tensor([3, 4])), expected)


def test_lm_labels_left_padding():
    input_ids = torch.tensor([[0, 0, 11, 12, 13, 14, 15], [21, 22, 23, 24, 25, 26, 27]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]])
    expected = torch.tensor([[X, X, X, X, X, 14, 15], [X, X, X, 24, 25, 26, 27]])
    assert torch.equal(lm_labels(input_ids, mask, torch.tensor([5, 3])), expected)


def test_lm_loss_matches_per_token_loop():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, 5, generator=generator)
    labels = torch.tensor([[X, X, 3, 1, 4, X], [X, 2, 0, 0, 1, 2]])
    losses = []
    for b in range(2):
        for t in range(5):  # logits at t predict the label at t + 1
            target = int(labels[b, t + 1])
            if target != X:
                row = logits[b, t].double().numpy()
                losses.append(math.log(np.exp(row).sum()) - row[target])
    assert len(losses) == 8
    assert abs(lm_loss(logits, labels).item() - float(np.mean(losses))) < 1e-5
    assert lm_loss(logits, torch.full_like(labels, X)).item() == 0.0


def _unit(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def _reference_info_nce(q: np.ndarray, t: np.ndarray, temperature: float, hn: np.ndarray | None) -> dict[str, float]:
    """Row by row: positive of query i is target i; every other target and every hard negative is a negative."""
    columns = t if hn is None else np.concatenate([t, hn])
    losses, correct, pos, hardest = [], [], [], []
    for i in range(len(q)):
        sims = np.array([float(np.dot(q[i], c)) for c in columns])
        logits = sims / temperature
        top = logits.max()
        losses.append(top + math.log(np.exp(logits - top).sum()) - logits[i])
        correct.append(float(np.argmax(sims) == i))
        pos.append(sims[i])
        hardest.append(max(s for j, s in enumerate(sims) if j != i))
    means = {"loss": losses, "accuracy": correct, "pos_sim": pos, "hard_neg_sim": hardest}
    return {key: float(np.mean(values)) for key, values in means.items()}


def test_info_nce_matches_numpy_with_and_without_hard_negatives():
    q = _unit((6, 8), 1)
    # Half the targets close to their query, half random: accuracy strictly between 0 and 1.
    t = torch.nn.functional.normalize(torch.cat([q[:3] + 0.3 * _unit((3, 8), 2), _unit((3, 8), 3)]), dim=-1)
    hn = torch.nn.functional.normalize(q + 0.5 * _unit((6, 8), 4), dim=-1)
    seen = set()
    for hard, temperature in ((None, 0.05), (None, 1.0), (hn, 0.02), (hn, 0.5)):
        loss, stats = info_nce(q, t, temperature, hard_negatives=hard)
        hard_np = None if hard is None else hard.double().numpy()
        ref = _reference_info_nce(q.double().numpy(), t.double().numpy(), temperature, hard_np)
        assert abs(loss.item() - ref["loss"]) < 1e-4 * max(1.0, ref["loss"])
        for key in ("accuracy", "pos_sim", "hard_neg_sim"):
            assert abs(stats[key] - ref[key]) < 1e-5, key
        seen.add(round(ref["accuracy"], 3))
    assert seen and all(0.0 < a < 1.0 for a in seen)


def test_masked_hard_negatives_match_a_log_softmax_over_the_real_columns_only():
    q = _unit((6, 8), 1)
    t = torch.nn.functional.normalize(torch.cat([q[:3] + 0.3 * _unit((3, 8), 2), _unit((3, 8), 3)]), dim=-1)
    # Negatives close to their queries: using a masked one would move the loss a lot.
    hn = torch.nn.functional.normalize(q + 0.3 * _unit((6, 8), 4), dim=-1)
    mask = [True, False, True, False, False, True]
    for temperature in (0.05, 0.5):
        ours = [x.double().clone().requires_grad_() for x in (q, t, hn)]
        loss, stats = info_nce(*ours[:2], temperature, hard_negatives=ours[2], negative_mask=torch.tensor(mask))
        loss.backward()
        theirs = [x.double().clone().requires_grad_() for x in (q, t, hn)]
        expected = per_row_info_nce(*theirs, mask, temperature)
        expected.backward()
        assert abs(loss.item() - expected.item()) < 1e-5 * max(1.0, expected.item())
        for mine, reference in zip(ours, theirs, strict=True):
            torch.testing.assert_close(mine.grad, reference.grad, rtol=1e-5, atol=1e-5)
        assert not ours[2].grad[[not real for real in mask]].any()  # a pair without a negative has no column
        ref = _reference_info_nce(q.double().numpy(), t.double().numpy(), temperature, hn[mask].double().numpy())
        for key in ("accuracy", "pos_sim", "hard_neg_sim"):
            assert abs(stats[key] - ref[key]) < 1e-5, key
        assert 0.0 < stats["accuracy"] < 1.0
    # The two ends: every negative real is the unmasked loss, none real is the loss without negatives.
    every = info_nce(q, t, 0.1, hard_negatives=hn, negative_mask=torch.ones(6, dtype=torch.bool))[0]
    none = info_nce(q, t, 0.1, hard_negatives=hn, negative_mask=torch.zeros(6, dtype=torch.bool))[0]
    assert every.item() == info_nce(q, t, 0.1, hard_negatives=hn)[0].item()
    assert abs(none.item() - info_nce(q, t, 0.1)[0].item()) < 1e-6


WORLD, B, D, TEMPERATURE = 2, 3, 5, 0.1
# Which pairs have a hard negative: some on rank 0, none on rank 1 (which must still join the gathers).
MASK = torch.tensor([True, False, True, False, False, False])
CASES = {"plain": (False, None), "hard": (True, None), "masked": (True, MASK)}  # name: (hard negatives, mask)


def _global_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _unit((WORLD * B, D), 10), _unit((WORLD * B, D), 11), _unit((WORLD * B, D), 12)


def _distributed_worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        local = [x[rank * B : (rank + 1) * B] for x in _global_batch()]
        result: dict = {"world": world(), "mean": all_reduce_mean(float(rank + 1))}
        for name, (with_hard, mask) in CASES.items():
            q, t, hn = (x.clone().requires_grad_() for x in local)
            local_mask = None if mask is None else mask[rank * B : (rank + 1) * B]
            loss, stats = info_nce(
                q, t, TEMPERATURE, hard_negatives=hn if with_hard else None, negative_mask=local_mask
            )
            loss.backward()
            accuracy = all_reduce_mean(stats["accuracy"])
            result[name] = {"loss": loss.detach(), "q": q.grad, "t": t.grad, "hn": hn.grad, "accuracy": accuracy}
        local_only, _ = info_nce(local[0], local[1], TEMPERATURE, gather=False)
        result["local_only"] = local_only
        try:  # rank 1 brings one row fewer: the row-count check must refuse it on every rank
            gather_with_grad(local[1][: B - rank])
            result["unequal_rows"] = "gathered"
        except ValueError as error:
            result["unequal_rows"] = str(error)
        torch.save(result, f"{out}.{rank}")
    finally:
        torch.distributed.destroy_process_group()


def test_info_nce_two_gloo_processes_match_full_batch(tmp_path: Path):
    out = str(tmp_path / "result")
    mp.spawn(_distributed_worker, args=(free_port(), out), nprocs=WORLD, join=True)
    results = [torch.load(f"{out}.{rank}") for rank in range(WORLD)]
    assert [r["world"] for r in results] == [(0, WORLD), (1, WORLD)]
    assert all(abs(r["mean"] - 1.5) < 1e-12 for r in results)

    q_all, t_all, hn_all = _global_batch()
    for name, (with_hard, mask) in CASES.items():
        q, t, hn = (x.clone().requires_grad_() for x in (q_all, t_all, hn_all))
        full, stats = info_nce(q, t, TEMPERATURE, hard_negatives=hn if with_hard else None, negative_mask=mask)
        full.backward()
        # Global objective = mean of the ranks' losses; each rank's grads are WORLD x those of that mean.
        assert abs(sum(r[name]["loss"].item() for r in results) / WORLD - full.item()) < 1e-6
        for rank, r in enumerate(results):
            rows = slice(rank * B, (rank + 1) * B)
            for key, tensor in (("q", q), ("t", t)) + ((("hn", hn),) if with_hard else ()):
                assert torch.allclose(r[name][key] / WORLD, tensor.grad[rows], atol=1e-6), (name, key, rank)
            if not with_hard:
                assert r[name]["hn"] is None
            assert abs(r[name]["accuracy"] - stats["accuracy"]) < 1e-9

    # gather=False inside a process group: only the rank's own targets are columns.
    for rank, r in enumerate(results):
        rows = slice(rank * B, (rank + 1) * B)
        assert abs(r["local_only"].item() - info_nce(q_all[rows], t_all[rows], TEMPERATURE)[0].item()) < 1e-6
        assert r["unequal_rows"] == f"gather_with_grad needs equal rows on all ranks, got {[B, B - 1]}"


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (((4, 8), (3, 8), None, None), "one target per query"),
        (((4, 8), (4, 8), (3, 8), None), "hard_negatives"),
        (((4, 8), (4, 8), None, (4,)), "negative_mask"),
        (((4, 8), (4, 8), (4, 8), (3,)), "negative_mask"),
    ],
)
def test_info_nce_refuses_mismatched_shapes_with_an_exception(shapes, message):
    """Argument checks are exceptions, not asserts: they must hold under `python -O` too."""
    q, t, hn, mask = shapes
    with pytest.raises(ValueError, match=message):
        info_nce(
            torch.randn(*q),
            torch.randn(*t),
            0.05,
            hard_negatives=torch.randn(*hn) if hn else None,
            negative_mask=torch.ones(*mask, dtype=torch.bool) if mask else None,
        )
