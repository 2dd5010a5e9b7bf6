"""Encoding of eval queries (optionally reasoning first) and deduplicated candidates, in chunks cached on
disk: an interrupted or repeated evaluation reuses every chunk already encoded and encodes nothing twice,
and eval shard processes (eval.launch.nproc) share the work by chunk through the same cache. The model work is the
Embedder's (rge_core/embedder.py), the same that `rge embed` and the Python API use.

The cache folder is keyed by everything that changes an embedding (model version, rewrites, reasoning
settings, dtype); inside it each dataset side has numbered chunk files, written atomically, named by the
content of their items (texts, and the sha256 of each image file, so a repainted image is encoded anew).
Each chunk's own sha256 is recorded beside it when it is written (`<chunk>.sha256`) and checked when it is
read: a chunk changed or replaced since, even by a valid file, is encoded again. Inside a chunk, items are
batched by similar prompt length (eval.sort_by_length): fewer pad tokens, the same embeddings up to float
rounding. An item that cannot be encoded is a reject (rge_core/evaluation/row_failures.py).
"""

from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rge_core.artifacts.verify import local_sha256
from rge_core.evaluation.encoded import Encoded
from rge_core.evaluation.row_failures import ItemScreen, encode_screened
from rge_core.fileio import atomic_write_bytes
from rge_core.model.inputs import Query, Target

if TYPE_CHECKING:
    from rge_core.embedder import Embedder


@dataclass(frozen=True)
class EncodeSettings:
    reasoning: bool
    chunk_size: int


log = logging.getLogger(__name__)


def _save(path: Path, encoded: Encoded) -> None:
    buffer = io.BytesIO()
    # Texts as a fixed-width unicode array, so a chunk loads without unpickling anything.
    np.savez(
        buffer,
        embeddings=encoded.embeddings,
        rationales=np.array(encoded.rationales, dtype=str),
        num_tokens=np.array(encoded.num_tokens),
        budget_hit=np.array(encoded.budget_hit),
        errors=np.array(encoded.errors, dtype=str),
    )
    data = buffer.getvalue()
    atomic_write_bytes(str(path), data)
    atomic_write_bytes(f"{path}.sha256", hashlib.sha256(data).hexdigest().encode())  # last: the chunk counts now


def _load(path: Path, rows: int) -> Encoded | None:
    """The chunk at `path`, or None when it is absent, unreadable, not `rows` long or not the file its recorded
    sha256 says was written (changed or replaced since), so that it is encoded (again)."""
    try:
        recorded = Path(f"{path}.sha256").read_text().strip()
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != recorded:
            log.warning(
                "%s: not the chunk that was written (sha256 differs from %s.sha256); encoding it again", path, path
            )
            return None
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            encoded = Encoded(
                npz["embeddings"],
                npz["rationales"].tolist(),
                npz["num_tokens"].tolist(),
                npz["budget_hit"].tolist(),
                errors=npz["errors"].tolist(),
            )
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
    return encoded if len(encoded.embeddings) == rows == len(encoded.rationales) == len(encoded.errors) else None


def _concat(parts: list[Encoded]) -> Encoded:
    # A chunk whose every item failed has no embedding width: zeros as wide as the others'.
    width = max(p.embeddings.shape[1] for p in parts)
    return Encoded(
        np.concatenate(
            [
                p.embeddings if p.embeddings.shape[1] == width else np.zeros((len(p.errors), width), np.float32)
                for p in parts
            ]
        ),
        [r for p in parts for r in p.rationales],
        [t for p in parts for t in p.num_tokens],
        [h for p in parts for h in p.budget_hit],
        errors=[e for p in parts for e in p.errors],
    )


def _items_key(items: Sequence) -> str:
    """Identity of a chunk's items (texts, and each image file's content), so edited data never hits a stale
    chunk."""
    digest = hashlib.sha256()
    for item in items:
        image = local_sha256(item.image) if isinstance(item.image, (str, Path)) and Path(item.image).is_file() else ""
        digest.update(f"{item.text}\0{item.image}\0{image}\0{getattr(item, 'instruction', '')}\n".encode())
    return digest.hexdigest()[:16]


def chunk_count(items: Sequence, chunk_size: int) -> int:
    return -(-len(items) // chunk_size)


def _chunks(cache: Path, name: str, items: Sequence, chunk_size: int) -> list[tuple[Path, list]]:
    """(`cache/name-NNNNN-KEY.npz`, items) of every chunk."""
    chunks = []
    for index, start in enumerate(range(0, len(items), chunk_size)):
        chunk = list(items[start : start + chunk_size])
        chunks.append((cache / f"{name}-{index:05d}-{_items_key(chunk)}.npz", chunk))
    return chunks


class Encoder:
    """Encodes eval chunks through the cache with the Embedder that `load()` gives; it is called on the first
    chunk that is not cached, so a process whose chunks are all cached loads nothing."""

    def __init__(
        self, load: Callable[[], Embedder], settings: EncodeSettings, cache: Path, screen: ItemScreen | None = None
    ):
        self._load = load
        self._loaded: Embedder | None = None
        self.settings = settings
        self.cache = cache
        self.screen = screen or ItemScreen()

    def _model(self) -> Embedder:
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def close(self) -> None:
        """Shut the rationale engine down (a vLLM engine holds its KV cache until then)."""
        if self._loaded is not None:
            self._loaded.close()
        self._loaded = None

    def _encode_queries(self, queries: list[Query]) -> Encoded:
        from rge_core.evaluation.rationale_modes import FixedQuery

        # eval.rationales shuffled / given: each query comes with the rationale to embed it after.
        fixed = [q.given for q in queries if isinstance(q, FixedQuery)] or None
        vectors, rationales = self._model().encode_queries(
            queries, reasoning=self.settings.reasoning, return_rationales=True, rationales=fixed
        )
        return Encoded(
            vectors,
            [r.text for r in rationales],
            [r.num_tokens for r in rationales],
            [r.budget_hit for r in rationales],
        )

    def _encode_targets(self, targets: list[Target]) -> Encoded:
        n = len(targets)
        return Encoded(self._model().encode_candidates(targets), [""] * n, [0] * n, [False] * n)

    def _encoder(self, side: str) -> Callable[[list], Encoded]:
        return self._encode_queries if side == "queries" else self._encode_targets

    def _encode_chunk(self, side: str, name: str, index: int, chunk: list) -> Encoded:
        """One chunk; an item whose text or image is unusable, or whose encoding fails, is a reject."""
        return encode_screened(self._encoder(side), chunk, self.screen)

    def encode_chunks(self, side: str, name: str, items: Sequence, indices: Iterable[int]) -> int:
        """Encode the chunks `indices` of `items` that are not cached yet (a shard's share); returns how many."""
        chunks, fresh = _chunks(self.cache, name, items, self.settings.chunk_size), 0
        for index in indices:
            path, chunk = chunks[index]
            if _load(path, len(chunk)) is None:
                _save(path, self._encode_chunk(side, name, index, chunk))
                fresh += 1
        return fresh

    def encode(self, side: str, name: str, items: Sequence) -> Encoded:
        """All of `items` ("queries" or "candidates"), from the cache where it has them."""
        parts, fresh = [], 0
        for index, (path, chunk) in enumerate(_chunks(self.cache, name, items, self.settings.chunk_size)):
            part = _load(path, len(chunk))
            if part is None:  # not cached yet, or damaged or changed on disk
                part = self._encode_chunk(side, name, index, chunk)
                _save(path, part)
                fresh += 1
            parts.append(part)
        result = _concat(parts)
        result.chunks_encoded = fresh
        return result
