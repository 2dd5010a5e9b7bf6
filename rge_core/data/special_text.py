"""Data text must not contain the model's own special tokens: the chat template would read them as turn,
image or pooling markers (an `<|image_pad|>` in a caption breaks the image token count; an `<emb>` moves
the pooled position). Such texts are refused with a count per dataset, before any model work."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from rge_core.data.issues import DataError
from rge_core.model.special_tokens import EMB_TOKEN, QWEN_SPECIAL_TOKENS

RESERVED = (EMB_TOKEN, *QWEN_SPECIAL_TOKENS, "<|endoftext|>")


def check_no_special_tokens(texts: Iterable[tuple[str, str, int, str]], where: str) -> None:
    """`texts`: (dataset, field, row, text). Raises DataError naming each dataset's count and first row."""
    counts: Counter = Counter()
    first: dict[str, str] = {}
    for dataset, field, row, text in texts:
        found = [token for token in RESERVED if token in (text or "")]
        if found:
            counts[dataset] += 1
            first.setdefault(dataset, f"row {row} {field} has {' '.join(found)}")
    if counts:
        listed = "; ".join(f"{dataset}: {n} texts (first: {first[dataset]})" for dataset, n in sorted(counts.items()))
        raise DataError(
            f"{where}: texts contain the model's special tokens, which the chat template would read "
            f"as markers: {listed}"
        )
