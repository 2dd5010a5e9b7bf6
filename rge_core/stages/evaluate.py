"""Stage 5, evaluate: a model on an MMEB-eval-format folder (or the synthetic benchmark's eval split) ->
an `eval` artifact: results.json (per dataset and aggregates), summary.md / summary.csv, the generated
query rationales (rationales.parquet), published.md (next to the published MMEB-V1 numbers) and, with
eval.compare_to, diff.md.

    rge eval --config configs/tiny.yaml [--model ID_OR_DIR] [--data DIR] [--reasoning on|off]
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from rge_core import progress
from rge_core.artifacts.store import ArtifactStore
from rge_core.artifacts.versioning import code_version
from rge_core.config.schema import Config
from rge_core.data.mmeb_eval import read_mmeb_eval
from rge_core.evaluation.encode import encode_queries, encode_targets
from rge_core.evaluation.instructions import load_instructions, rewrite
from rge_core.evaluation.mmeb import missing_datasets
from rge_core.evaluation.reports import (
    DatasetResult,
    EvalResults,
    diff_markdown,
    published_comparison_markdown,
    summary_csv,
    summary_markdown,
)
from rge_core.model.inputs import Query, Target
from rge_core.stages.ingest import SYNTHETIC, folder_fingerprint
from rge_core.stages.materialize import CACHE_ENV, DEFAULT_CACHE, local_folder
from rge_core.stages.prepare import model_folder, prepare_benchmark

_CODE = ["rge_core/evaluation", "rge_core/model", "rge_core/data", "rge_core/stages/evaluate.py"]


def _model(config: Config, store: ArtifactStore, inputs: dict) -> tuple[str | None, Path]:
    chosen = config.eval.model or inputs.get("train")
    if chosen and store.is_complete(chosen):
        return chosen, model_folder(config, store, chosen)
    if not chosen:
        raise ValueError("eval.model: no model to evaluate (train first, or name an artifact id or a folder)")
    return None, Path(chosen).resolve()


def _data(config: Config, store: ArtifactStore) -> tuple[Path, Path, dict[str, str], dict, dict[str, str]]:
    """(eval folder, image root, input artifacts, identity for the version, categories of non-MMEB sets)."""
    ev = config.eval
    if ev.data == SYNTHETIC:
        benchmark_id = prepare_benchmark(config, store)
        folder = local_folder(store.get(benchmark_id)) / "eval"
        categories = {s["name"]: s["category"] for s in store.get(benchmark_id).manifest.stats["subsets"]}
        return folder, folder, {"benchmark": benchmark_id}, {"data": SYNTHETIC}, categories
    folder = Path(ev.data).resolve()
    root = Path(ev.image_root).resolve() if ev.image_root else folder
    return folder, root, {}, {"data": str(folder), "image_root": str(root), "fingerprint": folder_fingerprint(folder)}, {}


def _write_reports(writer, results: EvalResults, other) -> dict:
    writer.write_text("results.json", json.dumps(results.to_dict(), indent=2))
    writer.write_text("summary.md", summary_markdown(results))
    writer.write_text("summary.csv", summary_csv(results))
    aggregates = results.aggregates()
    writer.write_text("published.md", published_comparison_markdown(aggregates))
    if other is not None:
        theirs = EvalResults.from_dict(json.loads(other.read_bytes("results.json")))
        writer.write_text("diff.md", diff_markdown(theirs, results, other.id, writer.version_id))
    return aggregates


def evaluate(config: Config, store: ArtifactStore, inputs: dict[str, str | None]) -> str:
    ev = config.eval
    model_id, model_dir = _model(config, store, inputs)
    folder, image_root, data_inputs, identity, categories = _data(config, store)
    rewrites, instructions = load_instructions(ev.instructions)
    settings = {"reasoning": ev.reasoning, "max_new_tokens": ev.max_new_tokens, "instructions": instructions,
                "datasets": ev.datasets, **identity}
    lineage = dict(data_inputs)
    if model_id:
        lineage["model"] = model_id
    else:
        settings["model"] = str(model_dir)
    writer = store.open("eval", settings, inputs=lineage, code=code_version(_CODE), resume=True)
    if writer.exists_complete:
        return writer.version_id
    from rge_core.model.rge_model import RGEModel  # heavy: transformers

    items = read_mmeb_eval(folder, ev.datasets or None, image_root)
    rge = RGEModel.load(str(model_dir))
    # Everything that changes an embedding keys the cache; items key each chunk inside it.
    key = json.dumps([model_id or str(model_dir), instructions, ev.reasoning, ev.max_new_tokens])
    cache = Path(os.environ.get(CACHE_ENV, DEFAULT_CACHE)) / "eval-embeddings" / hashlib.sha256(key.encode()).hexdigest()[:16]
    cache.mkdir(parents=True, exist_ok=True)
    per_dataset: dict[str, DatasetResult] = {}
    rationale_rows, dedup = [], Counter()

    def image(rel: str) -> Path | None:
        return image_root / rel if rel else None

    datasets = sorted(set(items.column("dataset").to_pylist()))
    for done, dataset in enumerate(datasets):
        progress.report("evaluate", done, len(datasets))
        rows = items.filter(pc.equal(items.column("dataset"), dataset)).to_pylist()
        queries = [Query(rewrite(rewrites, dataset, "query", r["qry_text"], r["item_id"]), image(r["qry_image"])) for r in rows]
        unique: dict[tuple[str, str], int] = {}
        candidate_index = []
        for r in rows:
            keys = [(rewrite(rewrites, dataset, "candidate", t, r["item_id"]), i) for t, i in zip(r["tgt_text"], r["tgt_image"])]
            candidate_index.append([unique.setdefault(k, len(unique)) for k in keys])
        dedup["references"] += sum(len(c) for c in candidate_index)
        dedup["unique"] += len(unique)
        targets = [Target(text, image(img)) for text, img in unique]
        q = encode_queries(rge, queries, cache, f"{dataset}-queries", ev.reasoning, ev.max_new_tokens, ev.batch_size, ev.chunk_size)
        c = encode_targets(rge, targets, cache, f"{dataset}-candidates", ev.batch_size, ev.chunk_size)
        dedup["chunks_encoded"] += q.chunks_encoded + c.chunks_encoded
        scores = [c.embeddings[index] @ q.embeddings[row] for row, index in enumerate(candidate_index)]
        per_dataset[dataset] = DatasetResult.from_scores(dataset, scores, budget_hits=sum(q.hit_budget), extra=categories)
        rationale_rows += [
            {"item_id": r["item_id"], "dataset": dataset, "rationale": text, "num_tokens": n, "hit_budget": hit}
            for r, text, n, hit in zip(rows, q.rationales, q.num_tokens, q.hit_budget)
        ]
    progress.report("evaluate", len(datasets), len(datasets))
    writer.write_parquet("rationales.parquet", pa.Table.from_pylist(rationale_rows))
    results = EvalResults(per_dataset)
    aggregates = _write_reports(writer, results, store.get(ev.compare_to) if ev.compare_to else None)
    writer.finish(
        {
            "aggregates": aggregates,
            "datasets": len(per_dataset),
            "missing_mmeb_datasets": len(missing_datasets(list(per_dataset))),
            "candidate_encodings_saved_by_dedup": dedup["references"] - dedup["unique"],
            "candidate_references": dedup["references"],
            "chunks_encoded": dedup["chunks_encoded"],  # the rest came from the embedding cache
            "budget_hits": sum(r.budget_hits for r in per_dataset.values()),
            "model": model_id or str(model_dir),
            "instructions": instructions,
            "reasoning": ev.reasoning,
        }
    )
    return writer.version_id
