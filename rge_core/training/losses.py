"""RGE training losses: teacher-forced LM loss on the oracle rationale and InfoNCE on embeddings.

    L = w_lm * lm_loss(logits, lm_labels(...)) + w_emb * info_nce(q, t, temperature)[0]

Pure torch; cross-rank negatives go through rge_core.training.distributed.gather_with_grad.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rge_core.training.distributed import gather_with_grad, world

IGNORE_INDEX = -100


def lm_labels(input_ids: torch.Tensor, attention_mask: torch.Tensor, completion_start: torch.Tensor) -> torch.Tensor:
    """Labels for the LM loss: the token id at positions >= completion_start[row] (the assistant turn:
    oracle rationale tokens and the final `<emb>`), IGNORE_INDEX on prompt tokens and padding.

    completion_start is an absolute position per row, so left and right padding both work: left padding
    lies before the prompt, right padding is removed by the attention mask."""
    start = torch.as_tensor(completion_start, device=input_ids.device).view(-1, 1)
    positions = torch.arange(input_ids.shape[1], device=input_ids.device).view(1, -1)
    keep = (positions >= start) & attention_mask.bool()
    return torch.where(keep, input_ids, torch.full_like(input_ids, IGNORE_INDEX))


def lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy (logits at t predict labels at t+1), mean over labelled tokens; 0 when a
    batch has none (instead of NaN). Computed in float32 so bf16 logits keep precision."""
    shifted_logits = logits[:, :-1].float().reshape(-1, logits.shape[-1])
    shifted_labels = labels[:, 1:].reshape(-1)
    total = F.cross_entropy(shifted_logits, shifted_labels, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (shifted_labels != IGNORE_INDEX).sum().clamp(min=1)


def info_nce(
    queries: torch.Tensor,
    targets: torch.Tensor,
    temperature: float,
    hard_negatives: torch.Tensor | None = None,
    negative_mask: torch.Tensor | None = None,
    gather: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """InfoNCE over L2-normalised embeddings (dot product = cosine similarity).

    Columns are every rank's targets (gathered with gradient when a process group with world_size > 1 is
    initialised and gather=True), then every rank's hard negatives if given ([B, D], one row per query).
    `negative_mask` ([B] bool, default all true) marks the rows of hard_negatives that are real: the
    columns of the others are left out of every query's softmax and of the stats. So pairs with and
    without a negative share a batch while every rank gathers the same shapes. The positive of local
    query i is column rank * B + i. Returns the cross-entropy averaged over LOCAL queries, so the global
    objective is the mean of the ranks' losses; with the SUM-backward of the gather, each rank's gradients
    are world_size times those of that global mean, which the data-parallel gradient averaging divides
    back out.

    stats (local, detached): accuracy (argmax == positive), pos_sim (mean positive cosine),
    hard_neg_sim (mean over queries of the most similar negative's cosine)."""
    if queries.shape != targets.shape:
        raise ValueError(f"queries {tuple(queries.shape)} vs targets {tuple(targets.shape)}: one target per query")
    if hard_negatives is not None and hard_negatives.shape != targets.shape:
        raise ValueError(f"hard_negatives {tuple(hard_negatives.shape)}: one row per query, like targets")
    if negative_mask is not None and (hard_negatives is None or negative_mask.shape != targets.shape[:1]):
        raise ValueError("negative_mask needs hard_negatives and one flag per query")
    rank, _ = world() if gather else (0, 1)
    columns = gather_with_grad(targets) if gather else targets
    absent = torch.zeros(columns.shape[0], dtype=torch.bool, device=queries.device)  # columns to leave out
    if hard_negatives is not None:
        negatives = gather_with_grad(hard_negatives) if gather else hard_negatives
        columns = torch.cat([columns, negatives])
        real = torch.ones(negatives.shape[0], dtype=torch.bool, device=queries.device)
        if negative_mask is not None:
            with torch.no_grad():  # the mask is data; gathered as uint8, which every backend takes
                real = (gather_with_grad(negative_mask.to(torch.uint8)) if gather else negative_mask).bool()
        absent = torch.cat([absent, ~real])
    sims = (queries.float() @ columns.float().T).masked_fill(absent, float("-inf"))
    positives = torch.arange(queries.shape[0], device=queries.device) + rank * queries.shape[0]
    loss = F.cross_entropy(sims / temperature, positives)
    with torch.no_grad():
        rows = torch.arange(queries.shape[0], device=queries.device)
        others = sims.detach().clone()
        others[rows, positives] = float("-inf")
        stats = {
            "accuracy": (sims.argmax(dim=1) == positives).float().mean().item(),
            "pos_sim": sims[rows, positives].mean().item(),
            "hard_neg_sim": others.max(dim=1).values.mean().item(),
        }
    return loss, stats
