"""Independent reference computations of the training losses, shared by the loss and step tests."""

from __future__ import annotations

import torch


def per_row_info_nce(
    q: torch.Tensor, t: torch.Tensor, hn: torch.Tensor, mask: list[bool], temperature: float
) -> torch.Tensor:
    """Mean over queries of a log-softmax written out row by row, over exactly the columns a row sees:
    every target, then the hard negatives of the pairs that have one (mask)."""
    seen = list(t) + [negative for negative, real in zip(hn, mask, strict=True) if real]
    losses = []
    for i in range(len(q)):
        logits = torch.stack([q[i] @ column for column in seen]) / temperature
        losses.append(torch.logsumexp(logits, dim=0) - logits[i])
    return torch.stack(losses).mean()
