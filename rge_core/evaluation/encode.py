"""Encoding of eval queries (optionally reasoning first) and deduplicated candidates, in chunks cached on
disk: an interrupted or repeated evaluation reuses every chunk already encoded and encodes nothing twice,
and eval shard processes (eval.nproc) share the work by chunk through the same cache. The model work is the
Embedder's (rge_core/embedder.py), the same that `rge embed` and the Python API use.

The cache folder is keyed by everything that changes an embedding (model version, rewrites, reasoning
settings, dtype); inside it each dataset side has numbered chunk files, written atomically. Inside a
chunk, items are batched by similar prompt length (eval.sort_by_length): fewer pad tokens, the same
embeddings up to float rounding.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rge_core.data.images import decode_problem
from rge_core.data.issues import DataError
from rge_core.fileio import atomic_write_bytes
from rge_core.model.inputs import Query, Target

if TYPE_CHECKING:
    from rge_core.embedder import Embedder


@dataclass
class Encoded:
    embeddings: np.ndarray  # [n, hidden], L2-normalised, float32
    rationales: list[str]
    num_tokens: list[int]
    budget_hit: list[bool]
    chunks_encoded: int = 0  # chunks computed now (the rest came from the cache)


@dataclass(frozen=True)
class EncodeSettings:
    reasoning: bool
    chunk_size: int


def _save(path: Path, encoded: Encoded) -> None:
    buffer = io.BytesIO()
    # Texts as a fixed-width unicode array, so a chunk loads without unpickling anything.
    np.savez(
        buffer,
        embeddings=encoded.embeddings,
        rationales=np.array(encoded.rationales, dtype=str),
        num_tokens=np.array(encoded.num_tokens),
        budget_hit=np.array(encoded.budget_hit),
    )
    atomic_write_bytes(str(path), buffer.getvalue())


def _load(path: Path, rows: int) -> Encoded | None:
    """The chunk at `path`, or None when it is absent, unreadable or not `rows` long (damaged on disk: our
    writes are atomic), so that it is encoded (again)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            encoded = Encoded(
                data["embeddings"],
                data["rationales"].tolist(),
                data["num_tokens"].tolist(),
                data["budget_hit"].tolist(),
            )
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
    return encoded if len(encoded.embeddings) == rows == len(encoded.rationales) else None


def _concat(parts: list[Encoded]) -> Encoded:
    return Encoded(
        np.concatenate([p.embeddings for p in parts]),
        [r for p in parts for r in p.rationales],
        [t for p in parts for t in p.num_tokens],
        [h for p in parts for h in p.budget_hit],
    )


def _items_key(items: Sequence) -> str:
    """Identity of a chunk's items (texts and image paths), so edited data never hits a stale chunk."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item.text}\0{item.image}\0{getattr(item, 'instruction', '')}\n".encode())
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

    def __init__(self, load: Callable[[], Embedder], settings: EncodeSettings, cache: Path):
        self._load = load
        self._loaded: Embedder | None = None
        self.settings = settings
        self.cache = cache

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
        """One chunk; an image that cannot be decoded is named by dataset side, item and file."""
        try:
            return self._encoder(side)(chunk)
        except (OSError, ValueError):
            for offset, item in enumerate(chunk):
                if isinstance(item.image, (str, Path)):
                    problem = decode_problem(item.image, str(item.image))
                    if problem:
                        number = index * self.settings.chunk_size + offset
                        where = f"row {number}" if side == "queries" else f"unique candidate {number}"
                        raise DataError(f"{name}: {where}: {problem}") from None
            raise

    def encode_chunks(self, side: str, name: str, items: Sequence, indices: Iterable[int]) -> int:
        """Encode the chunks `indices` of `items` that are not cached yet (a shard's share); returns how many."""
        chunks, fresh = _chunks(self.cache, name, items, self.settings.chunk_size), 0
        for index in indices:
            path, chunk = chunks[index]
            if not path.exists():
                _save(path, self._encode_chunk(side, name, index, chunk))
                fresh += 1
        return fresh

    def encode(self, side: str, name: str, items: Sequence) -> Encoded:
        """All of `items` ("queries" or "candidates"), from the cache where it has them."""
        parts, fresh = [], 0
        for index, (path, chunk) in enumerate(_chunks(self.cache, name, items, self.settings.chunk_size)):
            part = _load(path, len(chunk))
            if part is None:  # not cached yet, or damaged on disk
                part = self._encode_chunk(side, name, index, chunk)
                _save(path, part)
                fresh += 1
            parts.append(part)
        result = _concat(parts)
        result.chunks_encoded = fresh
        return result
