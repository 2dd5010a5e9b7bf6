"""A collection embedded in chunks of eval.chunk_size items, each written atomically to a scratch folder as
soon as it is encoded: a killed run loses at most the chunk it was on, and the rerun encodes only the chunks
that are missing (a chunk is trusted when it reads back with exactly its items' ids). The model is loaded on
the first chunk that needs it, so a run whose chunks all exist loads nothing.

Output columns: `id`, `vector` (fixed-size list of float32) and, for queries, `rationale` and `budget_hit`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rge_core import progress
from rge_core.data.images import decode_problem
from rge_core.data.issues import DataError
from rge_core.embed_io.collection import Collection
from rge_core.fileio import atomic_write_parquet
from rge_core.model.inputs import Query, Target

if TYPE_CHECKING:
    from rge_core.embedder import Embedder

PROGRESS = "embed"  # the name progress reports go under


@dataclass(frozen=True)
class EmbedJob:
    side: str  # "query" | "candidate"
    reasoning: bool  # queries only
    chunk_size: int


@dataclass
class Embedded:
    table: pa.Table
    chunks: int
    chunks_encoded: int  # now (the rest were on disk from an earlier, interrupted run)
    budget_hits: int = 0


@dataclass
class _LazyEmbedder:
    load: Callable[[], Embedder]
    loaded: list[Embedder] = field(default_factory=list)

    def get(self) -> Embedder:
        if not self.loaded:
            self.loaded.append(self.load())
        return self.loaded[0]

    def close(self) -> None:
        for embedder in self.loaded:
            embedder.close()


def schema(side: str, dim: int) -> pa.Schema:
    fields = [pa.field("id", pa.string()), pa.field("vector", pa.list_(pa.float32(), dim))]
    if side == "query":
        fields += [pa.field("rationale", pa.string()), pa.field("budget_hit", pa.bool_())]
    return pa.schema(fields)


def _vectors(vectors: np.ndarray) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])


def _encode(embedder: Embedder, collection: Collection, job: EmbedJob, start: int, stop: int) -> pa.Table:
    items: Sequence[Query | Target] = collection.items[start:stop]
    try:
        if job.side == "query":
            vectors, rationales = embedder.encode_queries(items, reasoning=job.reasoning, return_rationales=True)
        else:
            vectors = embedder.encode_candidates(items)
    except (OSError, ValueError):  # most likely an image that exists but does not decode: name its row
        for offset, item in enumerate(items):
            if isinstance(item.image, (str, Path)) and (problem := decode_problem(item.image, str(item.image))):
                raise DataError(f"{collection.where(start + offset)}: field 'image': {problem}") from None
        raise
    columns = {"id": pa.array(collection.ids[start:stop], pa.string()), "vector": _vectors(vectors)}
    if job.side == "query":
        columns["rationale"] = pa.array([r.text for r in rationales], pa.string())
        columns["budget_hit"] = pa.array([r.budget_hit for r in rationales], pa.bool_())
    return pa.table(columns, schema=schema(job.side, vectors.shape[1]))


def _read(path: Path, ids: list[str], side: str) -> pa.Table | None:
    """The chunk at `path` when it is whole and holds exactly `ids` (else None: encode it again)."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid):
        return None
    dim = table.schema.field("vector").type.list_size if "vector" in table.column_names else -1
    if dim <= 0 or table.schema != schema(side, dim) or table.column("id").to_pylist() != ids:
        return None
    return table


def embed_chunks(load: Callable[[], Embedder], collection: Collection, job: EmbedJob, scratch: Path) -> Embedded:
    """Every chunk of `collection`, from `scratch` where a previous run left it, else encoded and saved there."""
    n, size = len(collection.ids), job.chunk_size
    count = -(-n // size)
    embedder, parts, fresh, encoded_rows = _LazyEmbedder(load), [], 0, 0
    progress.report(PROGRESS, 0, count, rows=0)
    try:
        for index, start in enumerate(range(0, n, size)):
            stop = min(start + size, n)
            path = scratch / f"chunk-{index:05d}.parquet"
            table = _read(path, collection.ids[start:stop], job.side)
            if table is None:
                table = _encode(embedder.get(), collection, job, start, stop)
                atomic_write_parquet(str(path), table)
                fresh, encoded_rows = fresh + 1, encoded_rows + stop - start
            parts.append(table)
            progress.report(PROGRESS, index + 1, count, rows=encoded_rows)  # rows/s: of this run's work
    finally:
        embedder.close()
    table = pa.concat_tables(parts)
    hits = sum(table.column("budget_hit").to_pylist()) if job.side == "query" else 0
    return Embedded(table, count, fresh, hits)
