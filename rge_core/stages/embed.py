"""`rge embed`: a whole collection (JSON lines, parquet or an MMEB-eval folder) through the Embedder, one side at
a time, into a parquet file: `id`, `vector` and, for queries, `rationale` and `budget_hit`.

Without --out the result is a versioned `embeddings` artifact under the pipeline's root (embeddings.parquet;
the model artifact is its input, so a rerun with nothing changed does no work). With --out it is that plain
file, stamped with the same version key: a rerun with the same settings and input does nothing. Either way
the work is resumable by chunk (rge_core/embed_io/chunks.py).

    rge embed --model MODEL --input items.jsonl --side query [--out items.parquet] [--reasoning on|off]
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from rge_core.artifacts.local import cache_root
from rge_core.artifacts.store import ArtifactStore
from rge_core.artifacts.verify import folder_identity
from rge_core.artifacts.versioning import code_version
from rge_core.builds import StageSpec, build_or_reuse
from rge_core.config.schema import Config
from rge_core.data.rewrites import RewriteFile, load_rewrites
from rge_core.embed_io.chunks import Embedded, EmbedJob, embed_chunks
from rge_core.embed_io.collection import SIDES, Collection, read_collection
from rge_core.embedder import Embedder
from rge_core.embedding.locate import ModelSource, locate_model
from rge_core.fileio import atomic_write_parquet
from rge_core.model.processor import image_size_kwargs
from rge_core.stage_logs import capture

_CODE = [
    "rge_core/embedder.py",
    "rge_core/embedding",
    "rge_core/model",
    "rge_core/data",
    "rge_core/evaluation",  # MMEB folders are read and deduplicated as the eval does; its vLLM rationales
    "rge_core/stages/embed.py",
]
OUTPUT = "embeddings.parquet"
KEY = b"rge.embed.version"  # parquet metadata of a plain --out file: what it was made from


@dataclass(frozen=True)
class EmbedRequest:
    model: str  # a model artifact id or folder, or a checkpoint folder
    input: str  # .jsonl, .parquet or an MMEB-eval folder
    side: str  # "query" | "candidate"
    reasoning: bool = True  # queries only
    image_root: str = ""  # default: the input file's folder (the MMEB folder itself)
    out: str = ""  # a plain parquet file; empty: an artifact under the root


@dataclass(frozen=True)
class EmbedOutcome:
    path: str  # the parquet file written (or found up to date)
    version: str | None  # the artifact, without --out
    embedded: Embedded | None  # None when nothing had to be done


@dataclass(frozen=True)
class _Prepared:
    collection: Collection
    model: ModelSource
    rewrites: RewriteFile | None  # of the side embedded


def _settings(config: Config, request: EmbedRequest, prepared: _Prepared, store: ArtifactStore) -> dict:
    """What the vectors depend on (the artifact's version, or the --out file's stamp); the model's artifact is an
    input (lineage) when it is one of this root's."""
    ev, collection, model, rewrites = config.eval, prepared.collection, prepared.model, prepared.rewrites
    settings: dict = {
        "side": request.side,
        "input": collection.identity,
        "image_bounds": [config.model.min_pixels, config.model.max_pixels],
        **_placement(config).record(),
        "rewrites": rewrites.record() if rewrites else None,
    }
    if request.side == "query":
        settings["reasoning"] = request.reasoning
        if request.reasoning:
            settings.update(
                max_new_tokens=ev.decoding.max_new_tokens,
                repetition_penalty=ev.decoding.repetition_penalty,
                on_budget_hit=ev.on_budget_hit,
                engine=ev.engine,
            )
    if model.artifact is None:
        settings["model"] = folder_identity(model.folder)
    elif not store.is_complete(model.artifact.id):  # an artifact of another root: named, not an input
        settings["model"] = model.artifact.id
    return settings


def _placement(config: Config):
    from rge_core.model.placement import placement_of  # heavy (torch): the module stays light for the CLI

    return placement_of(config.model)


def _prepare(config: Config, request: EmbedRequest) -> _Prepared:
    """Every check before any model work: the request, the settings, each input row, the model."""
    if request.side not in SIDES:
        raise ValueError(f"--side: {request.side!r} is not one of {', '.join(SIDES)}")
    image_size_kwargs(config.model.min_pixels, config.model.max_pixels)
    _placement(config)
    query = load_rewrites(config.eval.query_rewrites, "eval.query_rewrites")
    candidate = load_rewrites(config.eval.candidate_rewrites, "eval.candidate_rewrites")
    collection = read_collection(request.input, request.side, request.image_root or None, query, candidate)
    model = locate_model(request.model, config.run.artifacts_root or None, "--model")
    return _Prepared(collection, model, query if request.side == "query" else candidate)


def embed(config: Config, request: EmbedRequest) -> EmbedOutcome:
    prepared = _prepare(config, request)
    collection, model = prepared.collection, prepared.model
    store = ArtifactStore.from_config(config)
    settings = _settings(config, request, prepared, store)
    job = EmbedJob(request.side, request.reasoning, config.eval.chunk_size)

    def load() -> Embedder:
        return Embedder.from_config(config, model.folder)

    if request.out:
        return _to_file(Path(request.out), settings, model, collection, job, load)
    lineage = {"model": model.artifact.id} if "model" not in settings and model.artifact else {}
    done: list[Embedded] = []

    def build(writer) -> dict:
        scratch = cache_root(store) / "embed-chunks" / writer.version_id
        embedded = embed_chunks(load, collection, job, scratch)
        writer.write_parquet(OUTPUT, embedded.table)
        shutil.rmtree(scratch, ignore_errors=True)
        done.append(embedded)
        return {
            "rows": embedded.table.num_rows,
            "dim": embedded.table.schema.field("vector").type.list_size,
            "side": request.side,
            "reasoning": request.reasoning if request.side == "query" else False,
            "budget_hits": embedded.budget_hits,
            "chunks": embedded.chunks,
            "chunks_encoded": embedded.chunks_encoded,
            "model": model.artifact.id if model.artifact else str(model.folder),
            "input": collection.identity["input"],
        }

    version = build_or_reuse(store, StageSpec("embeddings", settings, lineage, _CODE, build, resume=True))
    return EmbedOutcome(store.get(version).file_url(OUTPUT), version, done[0] if done else None)


def _to_file(
    out: Path, settings: dict, model: ModelSource, collection: Collection, job: EmbedJob, load
) -> EmbedOutcome:
    # The artifact's version would take the code's version too: a code change must not leave an old file current.
    identity = {**settings, "model": model.artifact.id if model.artifact else settings["model"]}
    identity["code"] = code_version(_CODE)
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    if out.is_file():
        try:
            if (pq.read_schema(out).metadata or {}).get(KEY) == key.encode():
                return EmbedOutcome(str(out), None, None)  # made from the same model, input and settings
        except OSError:
            pass  # not a parquet file we wrote: replaced below
    chunks = out.parent / f".{out.name}.chunks"
    with capture(chunks / key / "embed.log"):  # the libraries' output, under the CLI (kept with the chunks)
        embedded = embed_chunks(load, collection, job, chunks / key)
    atomic_write_parquet(str(out), embedded.table.replace_schema_metadata({KEY: key}))
    shutil.rmtree(chunks, ignore_errors=True)
    return EmbedOutcome(str(out), None, embedded)
