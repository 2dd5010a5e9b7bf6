"""Encoding of eval queries (optionally reasoning first) and deduplicated candidates, in chunks cached on
disk: an interrupted or repeated evaluation reuses every chunk already encoded and encodes nothing twice,
and eval shard processes (eval.nproc) share the work by chunk through the same cache.

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

import numpy as np
import torch

from rge_core.data.images import decode_problem
from rge_core.data.issues import DataError
from rge_core.fileio import atomic_write_bytes
from rge_core.model.batching import in_batches, prompt_lengths
from rge_core.model.decoding import Decoding
from rge_core.model.generation import RationaleBatch
from rge_core.model.inputs import Query, Target
from rge_core.model.rge_model import RGEModel

RationaleFn = Callable[[Sequence[Query]], RationaleBatch]  # one chunk's queries -> their rationales


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
    max_new_tokens: int
    decoding: Decoding
    batch_size: int
    chunk_size: int
    sort_by_length: bool = True
    on_budget_hit: str = "append-emb"  # eval.on_budget_hit


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


def hf_rationales(rge: RGEModel, settings: EncodeSettings) -> RationaleFn:
    """Rationales with transformers' batched generate (the model's own weights; greedy for eval)."""

    def generate(queries: Sequence[Query]) -> RationaleBatch:
        lengths = None
        if settings.sort_by_length:
            lengths = prompt_lengths(rge, [rge.generation_prompt(q) for q in queries], [q.image for q in queries])

        def run(batch: list[Query]):
            out = rge.generate_rationales(batch, settings.max_new_tokens, settings.decoding)
            return zip(out.texts, out.num_tokens, out.budget_hit, strict=True)

        rows = in_batches(list(queries), settings.batch_size, run, lengths)
        return RationaleBatch([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])

    return generate


class Encoder:
    """Encodes eval chunks through the cache. `load()` gives the model and the rationale function; it is
    called on the first chunk that is not cached, so a process whose chunks are all cached loads nothing."""

    def __init__(self, load: Callable[[], tuple[RGEModel, RationaleFn]], settings: EncodeSettings, cache: Path):
        self._load = load
        self._loaded: tuple[RGEModel, RationaleFn] | None = None
        self.settings = settings
        self.cache = cache

    def _model(self) -> tuple[RGEModel, RationaleFn]:
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def close(self) -> None:
        """Shut the rationale engine down (a vLLM engine holds its KV cache until then)."""
        if self._loaded is not None and hasattr(self._loaded[1], "close"):
            self._loaded[1].close()
        self._loaded = None

    def _embed(
        self, rge: RGEModel, prompts: list[str], images: list, last_token_without_emb: bool = False
    ) -> np.ndarray:
        lengths = prompt_lengths(rge, prompts, images) if self.settings.sort_by_length else None

        def run(batch: list[tuple[str, object]]):
            prompts, images = [p for p, _ in batch], [i for _, i in batch]
            return rge.embed_prompts(prompts, images, last_token_without_emb=last_token_without_emb).cpu().unbind(0)

        rows = in_batches(list(zip(prompts, images, strict=True)), self.settings.batch_size, run, lengths)
        return torch.stack(rows).numpy().astype(np.float32)

    @torch.inference_mode()
    def _encode_queries(self, queries: list[Query]) -> Encoded:
        rge, rationales_of = self._model()
        n = len(queries)
        if self.settings.reasoning:
            generated = rationales_of(queries)
            rationales: list[str | None] = list(generated.texts)
        else:
            generated, rationales = RationaleBatch([""] * n, [0] * n, [False] * n), [None] * n
        # eval.on_budget_hit last-token: a rationale that never reached <emb> is embedded at its own last token.
        last_token = self.settings.on_budget_hit == "last-token"
        emb = [not (last_token and hit) for hit in generated.budget_hit]
        prompts = [rge.query_prompt(q, r, e) for q, r, e in zip(queries, rationales, emb, strict=True)]
        vectors = self._embed(rge, prompts, [q.image for q in queries], last_token_without_emb=last_token)
        return Encoded(vectors, list(generated.texts), list(generated.num_tokens), list(generated.budget_hit))

    @torch.inference_mode()
    def _encode_targets(self, targets: list[Target]) -> Encoded:
        rge, _ = self._model()
        vectors = self._embed(rge, [rge.target_prompt(t) for t in targets], [t.image for t in targets])
        n = len(targets)
        return Encoded(vectors, [""] * n, [0] * n, [False] * n)

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
