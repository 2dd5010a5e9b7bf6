"""Encoding of eval queries (optionally reasoning first) and deduplicated candidates, in chunks cached on
disk: an interrupted or repeated evaluation reuses every chunk already encoded and encodes nothing twice.

The cache folder is keyed by everything that changes an embedding (model version, instruction set,
reasoning settings); inside it each dataset side has numbered chunk files, written atomically.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from rge_core.fileio import atomic_write_bytes
from rge_core.model.decoding import Decoding
from rge_core.model.generation import Sampling
from rge_core.model.inputs import Query, Target
from rge_core.model.rge_model import RGEModel


@dataclass
class Encoded:
    embeddings: np.ndarray  # [n, hidden], L2-normalised, float32
    rationales: list[str]
    num_tokens: list[int]
    hit_budget: list[bool]
    chunks_encoded: int = 0  # chunks computed now (the rest came from the cache)


def _save(path: Path, encoded: Encoded) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, embeddings=encoded.embeddings, rationales=np.array(encoded.rationales, dtype=object),
             num_tokens=np.array(encoded.num_tokens), hit_budget=np.array(encoded.hit_budget))
    atomic_write_bytes(str(path), buffer.getvalue())


def _load(path: Path) -> Encoded:
    data = np.load(path, allow_pickle=True)
    return Encoded(data["embeddings"], data["rationales"].tolist(), data["num_tokens"].tolist(), data["hit_budget"].tolist())


@torch.inference_mode()
def _encode_queries(rge: RGEModel, queries: Sequence[Query], reasoning: bool, max_new_tokens: int, decoding: Decoding,
                    batch_size: int) -> Encoded:
    parts = []
    for start in range(0, len(queries), batch_size):
        batch = list(queries[start : start + batch_size])
        if reasoning:
            generated = rge.generate_rationales(batch, max_new_tokens, Sampling(decoding))
            texts, tokens, hits = generated.texts, generated.num_tokens, generated.hit_budget
        else:
            texts, tokens, hits = [""] * len(batch), [0] * len(batch), [False] * len(batch)
        vectors = rge.embed_queries(batch, texts if reasoning else None)
        parts.append(Encoded(vectors.cpu().numpy().astype(np.float32), list(texts), list(tokens), list(hits)))
    return _concat(parts)


@torch.inference_mode()
def _encode_targets(rge: RGEModel, targets: Sequence[Target], batch_size: int) -> Encoded:
    parts = []
    for start in range(0, len(targets), batch_size):
        vectors = rge.embed_targets(list(targets[start : start + batch_size]))
        n = vectors.shape[0]
        parts.append(Encoded(vectors.cpu().numpy().astype(np.float32), [""] * n, [0] * n, [False] * n))
    return _concat(parts)


def _concat(parts: list[Encoded]) -> Encoded:
    return Encoded(
        np.concatenate([p.embeddings for p in parts]),
        [r for p in parts for r in p.rationales],
        [t for p in parts for t in p.num_tokens],
        [h for p in parts for h in p.hit_budget],
    )


def _items_key(items: Sequence) -> str:
    """Identity of a chunk's items (texts and image paths), so edited data never hits a stale chunk."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item.text}\0{item.image}\0{getattr(item, 'instruction', '')}\n".encode())
    return digest.hexdigest()[:16]


def encode_cached(cache: Path, name: str, items: Sequence, encode, chunk_size: int) -> Encoded:
    """Encode `items` with `encode(list) -> Encoded` chunk by chunk, reusing `cache/name-NNNNN-KEY.npz`."""
    parts, fresh = [], 0
    for index, start in enumerate(range(0, len(items), chunk_size)):
        chunk = list(items[start : start + chunk_size])
        path = cache / f"{name}-{index:05d}-{_items_key(chunk)}.npz"
        if path.exists():
            parts.append(_load(path))
            continue
        part = encode(chunk)
        _save(path, part)
        parts.append(part)
        fresh += 1
    result = _concat(parts)
    result.chunks_encoded = fresh
    return result


def encode_queries(rge, queries, cache: Path, name: str, reasoning: bool, max_new_tokens: int, decoding: Decoding,
                   batch_size: int, chunk_size: int) -> Encoded:
    def encode(chunk):
        return _encode_queries(rge, chunk, reasoning, max_new_tokens, decoding, batch_size)

    return encode_cached(cache, name, queries, encode, chunk_size)


def encode_targets(rge, targets, cache: Path, name: str, batch_size: int, chunk_size: int) -> Encoded:
    return encode_cached(cache, name, targets, lambda chunk: _encode_targets(rge, chunk, batch_size), chunk_size)
