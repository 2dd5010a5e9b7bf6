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
from rge_core.evaluation.mmeb import missing_datasets
from rge_core.evaluation.plan import EvalPlan, plan_eval
from rge_core.evaluation.reports import (
    DatasetResult,
    EvalResults,
    diff_markdown,
    published_comparison_markdown,
    summary_csv,
    summary_markdown,
)
from rge_core.evaluation.scoring import distinct_from_gt
from rge_core.model.decoding import Decoding
from rge_core.model.inputs import Query, Target
from rge_core.stages.materialize import CACHE_ENV, DEFAULT_CACHE

_CODE = ["rge_core/evaluation", "rge_core/model", "rge_core/data", "rge_core/stages/evaluate.py"]


def _write_reports(writer, results: EvalResults, plan: EvalPlan) -> dict:
    writer.write_text("results.json", json.dumps(results.to_dict(), indent=2))
    writer.write_text("summary.md", summary_markdown(results))
    writer.write_text("summary.csv", summary_csv(results))
    aggregates = results.aggregates()
    writer.write_text("published.md", published_comparison_markdown(aggregates, plan.rewrite_records()))
    if plan.compare_to is not None:
        theirs = EvalResults.from_dict(json.loads(plan.compare_to.read_bytes("results.json")))
        writer.write_text("diff.md", diff_markdown(theirs, results, plan.compare_to.id, writer.version_id))
    return aggregates


def _rewrite(rewrites, dataset: str, text: str, changed: Counter) -> str:
    """The text as evaluated; counts the texts whose dataset rules changed them (not just the newline)."""
    if rewrites is None:
        return text
    rewritten, was_changed = rewrites.apply(dataset, text)
    if rewrites.rules_for(dataset) is not None:  # a dataset with rules that change nothing shows 0
        changed[dataset] += was_changed
    return rewritten


def evaluate(config: Config, store: ArtifactStore, inputs: dict[str, str | None]) -> str:
    ev = config.eval
    plan = plan_eval(config, store, inputs)  # every setting checked before any model or encoding work
    decoding = Decoding(temperature=0.0, repetition_penalty=ev.repetition_penalty)  # greedy, as MMEB evals are
    settings = {"reasoning": ev.reasoning, "max_new_tokens": ev.max_new_tokens,
                "repetition_penalty": ev.repetition_penalty, "rewrites": plan.rewrite_records(),
                "categories": plan.categories, "datasets": ev.datasets,
                "image_bounds": [config.model.min_pixels, config.model.max_pixels], **plan.data_identity}
    lineage = dict(plan.data_inputs)
    if plan.model_id:
        lineage["model"] = plan.model_id
    else:
        settings["model"] = str(plan.model_dir)
    writer = store.open("eval", settings, inputs=lineage, code=code_version(_CODE), resume=True)
    if writer.exists_complete:
        return writer.version_id
    from rge_core.model.rge_model import RGEModel  # heavy: transformers

    items = read_mmeb_eval(plan.folder, plan.datasets, plan.image_root)
    rge = RGEModel.load(str(plan.model_dir), min_pixels=config.model.min_pixels, max_pixels=config.model.max_pixels)
    # Everything that changes an embedding keys the cache; items key each chunk inside it.
    key = json.dumps([plan.model_id or str(plan.model_dir), plan.rewrite_records(), ev.reasoning, ev.max_new_tokens,
                      ev.repetition_penalty, settings["image_bounds"]])
    cache_root = Path(os.environ.get(CACHE_ENV, DEFAULT_CACHE)) / "eval-embeddings"
    cache = cache_root / hashlib.sha256(key.encode()).hexdigest()[:16]
    cache.mkdir(parents=True, exist_ok=True)
    per_dataset: dict[str, DatasetResult] = {}
    rationale_rows, counts = [], Counter()
    changed = {"query": Counter(), "candidate": Counter()}

    def image(rel: str) -> Path | None:
        return plan.image_root / rel if rel else None

    for done, dataset in enumerate(plan.datasets):
        progress.report("evaluate", done, len(plan.datasets))
        rows = items.filter(pc.equal(items.column("dataset"), dataset)).to_pylist()
        queries = [Query(_rewrite(plan.query_rewrites, dataset, r["qry_text"], changed["query"]), image(r["qry_image"]))
                   for r in rows]
        unique: dict[tuple[str, str], int] = {}
        candidate_index, gt_copy_rows = [], 0
        for r in rows:
            keys = [(_rewrite(plan.candidate_rewrites, dataset, t, changed["candidate"]), i)
                    for t, i in zip(r["tgt_text"], r["tgt_image"])]
            kept = distinct_from_gt(keys)
            gt_copy_rows += len(kept) < len(keys)
            counts["references"] += len(keys)
            candidate_index.append([unique.setdefault(keys[k], len(unique)) for k in kept])
        counts["unique"] += len(unique)
        targets = [Target(text, image(img)) for text, img in unique]
        q = encode_queries(rge, queries, cache, f"{dataset}-queries", ev.reasoning, ev.max_new_tokens, decoding,
                           ev.batch_size, ev.chunk_size)
        c = encode_targets(rge, targets, cache, f"{dataset}-candidates", ev.batch_size, ev.chunk_size)
        counts["chunks_encoded"] += q.chunks_encoded + c.chunks_encoded
        scores = [c.embeddings[index] @ q.embeddings[row] for row, index in enumerate(candidate_index)]
        per_dataset[dataset] = DatasetResult.from_scores(dataset, scores, budget_hits=sum(q.hit_budget),
                                                         extra=plan.categories, gt_copy_rows=gt_copy_rows)
        rationale_rows += [
            {"item_id": r["item_id"], "dataset": dataset, "rationale": text, "num_tokens": n, "hit_budget": hit}
            for r, text, n, hit in zip(rows, q.rationales, q.num_tokens, q.hit_budget)
        ]
    progress.report("evaluate", len(plan.datasets), len(plan.datasets))
    writer.write_parquet("rationales.parquet", pa.Table.from_pylist(rationale_rows))
    results = EvalResults(per_dataset)
    aggregates = _write_reports(writer, results, plan)
    writer.finish(
        {
            "aggregates": aggregates,
            "datasets": len(per_dataset),
            "missing_mmeb_datasets": len(missing_datasets(list(per_dataset))),
            "candidate_encodings_saved_by_dedup": counts["references"] - counts["unique"],
            "candidate_references": counts["references"],
            "chunks_encoded": counts["chunks_encoded"],  # the rest came from the embedding cache
            "budget_hits": sum(r.budget_hits for r in per_dataset.values()),
            "gt_copy_rows": {name: r.gt_copy_rows for name, r in per_dataset.items() if r.gt_copy_rows},
            "model": plan.model_id or str(plan.model_dir),
            "rewrites": plan.rewrite_records(),
            # texts per dataset that the rewrite rules changed (beyond the newline), per side
            "rewritten_texts": {side: dict(sorted(counts.items())) for side, counts in changed.items()},
            "reasoning": ev.reasoning,
        }
    )
    return writer.version_id
