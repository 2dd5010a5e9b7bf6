"""Stage 5, evaluate: a model on an MMEB-eval-format folder (or the synthetic benchmark's eval split) ->
an `eval` artifact: results.json (per dataset and aggregates), summary.md / summary.csv, the query
rationales (rationales.parquet: generated, or another query's / a given one with eval.rationales), per-query
predictions (predictions.parquet), published.md and summary.png (next to the published MMEB-V1 numbers)
and, with eval.compare_to, diff.md (with a paired significance test when the other eval has predictions too).

    rge eval --config configs/tiny.yaml [--model ID_OR_DIR] [--data DIR] [--reasoning on|off]
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from data_schemas import validate
from rge_core import progress
from rge_core.artifacts.local import build_folder, cache_root, local_folder
from rge_core.artifacts.store import ArtifactStore
from rge_core.artifacts.verify import folder_identity
from rge_core.builds import StageSpec
from rge_core.config.schema import Config, versioned
from rge_core.data.image_header import pixel_cap
from rge_core.data.mmeb_registry import missing_datasets
from rge_core.evaluation import rationale_checks, rationale_modes
from rge_core.evaluation.predictions import pair_predictions, prediction_rows, read_predictions
from rge_core.evaluation.reports import (
    DatasetResult,
    EvalResults,
    diff_markdown,
    published_comparison_markdown,
    summary_csv,
    summary_markdown,
)
from rge_core.evaluation.row_failures import reason_kind, scored_rows
from rge_core.launch import Launch, run_launched
from rge_core.stages.declaration import Option, StageDecl

if TYPE_CHECKING:  # heavy (torch, matplotlib): imported where they run, so `rge --help` stays quick
    from rge_core.evaluation.encode import Encoder
    from rge_core.evaluation.plan import EvalPlan
    from rge_core.evaluation.runner import EvalJob

# The settings an embedding depends on (the rest of the version is about scoring): they key the embedding cache.
_EMBEDDING_SETTINGS = (
    "reasoning",
    "decoding",
    "on_budget_hit",
    "rewrites",
    "image_bounds",
    "max_text_chars",  # which items are rejects is cached with them
    "pixel_cap",
    "engine",
    "dtype",
    "attn_implementation",
)
_CODE = [
    "rge_core/evaluation",
    "rge_core/embedder.py",  # the encoding itself
    "rge_core/embedding",
    "rge_core/model",
    "rge_core/data",
    "rge_core/sources.py",
    "rge_core/stages/evaluate.py",
    "rge_core/synth/facts.py",  # whether a rationale reaches the reference conclusion
    "rge_core/generation/reference.py",  # how eval.given_rationales files are read
]


def _write_reports(writer, results: EvalResults, predictions: pa.Table, plan: EvalPlan, mode: str) -> dict:
    writer.write_text("results.json", json.dumps(results.to_dict(), indent=2))
    writer.write_text("summary.md", summary_markdown(results) + rationale_checks.crosstab_markdown(predictions))
    writer.write_text("summary.csv", summary_csv(results))
    aggregates = results.aggregates()
    writer.write_text("published.md", published_comparison_markdown(aggregates, plan.rewrite_records()))
    from rge_core.evaluation.charts import summary_png

    writer.write_bytes("summary.png", summary_png(aggregates))
    if plan.compare_to is not None:
        older = plan.compare_to
        theirs = EvalResults.from_dict(json.loads(older.read_bytes("results.json")))
        pairing = None  # evals made before predictions.parquet existed: the diff says so
        if "predictions.parquet" in older.manifest.files:
            pairing = pair_predictions(read_predictions(older.file_url("predictions.parquet")), predictions)
        modes = (older.manifest.config.get("rationales", rationale_modes.GENERATED), mode)
        note = f"Queries embedded after their rationales: {older.id} {modes[0]}, {writer.version_id} {modes[1]}.\n"
        diff = diff_markdown(theirs, results, older.id, writer.version_id, pairing=pairing)
        writer.write_text("diff.md", diff + ("\n" + note if modes[0] != modes[1] else ""))
    return aggregates


def _run_shards(config: Config, job: EvalJob, folder: Path) -> None:
    """eval.launch.nproc shard processes encode their chunks into the cache (the stage then reads them all)."""
    from rge_core.evaluation.runner import RUNNER_MODULE

    folder.mkdir(parents=True, exist_ok=True)
    job_file = folder / "job.json"
    job_file.write_text(job.to_json())
    run_launched(Launch.of(config.eval.launch, "eval"), RUNNER_MODULE, job_file, folder / "shards.log")


def _score_datasets(enc: Encoder, job: EvalJob, plan: EvalPlan, facts: dict[str, str]):
    """Encode (or read from the cache) and score every dataset: (per-dataset results, rationale rows,
    prediction rows, counts, texts the rewrites changed per side, rejected queries). `facts`: item id ->
    reference facts."""
    from rge_core.evaluation.runner import chunk_name, dataset_works

    per_dataset: dict[str, DatasetResult] = {}
    rationale_rows: list[dict] = []
    predictions: list[dict] = []
    counts: Counter[str] = Counter()
    rejects: list[dict] = []
    changed: dict[str, Counter[str]] = {"query": Counter(), "candidate": Counter()}
    for done, work in enumerate(dataset_works(job, changed)):
        progress.report("evaluate", done, len(plan.datasets), dataset=work.dataset, queries=len(rationale_rows))
        counts["unique"] += len(work.targets)
        counts["references"] += work.references
        q = enc.encode("queries", chunk_name(work, "queries"), work.queries)
        c = enc.encode("candidates", chunk_name(work, "candidates"), work.targets)
        counts["chunks_encoded"] += q.chunks_encoded + c.chunks_encoded
        scores, dataset_rejects = scored_rows(work, q, c)
        rejects += dataset_rejects
        per_dataset[work.dataset] = DatasetResult.from_scores(
            work.dataset, scores, budget_hits=sum(q.budget_hit), extra=plan.categories, gt_copy_rows=work.gt_copy_rows
        )
        item_ids = [r["item_id"] for r in work.rows]
        # Whose rationale each query was embedded after: its own, or (eval.rationales shuffled) another's.
        of = [getattr(query, "rationale_of", "") or item for query, item in zip(work.queries, item_ids, strict=True)]
        rationale_rows += [
            {"item_id": item, "dataset": work.dataset, "rationale": text, "num_tokens": n, "budget_hit": hit}
            | {"rationale_of": source}
            for item, text, n, hit, source in zip(item_ids, q.rationales, q.num_tokens, q.budget_hit, of, strict=True)
        ]
        checks = rationale_checks.checks(facts, item_ids, q.rationales)
        predictions += prediction_rows(
            work.dataset, item_ids, scores, work.ranked_positions, q.rationales, q.budget_hit, checks
        )
    progress.report("evaluate", len(plan.datasets), len(plan.datasets))
    return per_dataset, rationale_rows, predictions, counts, changed, rejects


def _cache_folder(store: ArtifactStore, key: list) -> Path:
    cache = cache_root(store) / "eval-embeddings" / hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def _assign_rationales(config: Config, store: ArtifactStore, plan: EvalPlan, job: EvalJob, generated: Path) -> str:
    """eval.rationales shuffled / given: every query's rationale settled before encoding (rationale_modes). For
    shuffled the queries are first encoded in generated mode, into that mode's cache `generated` (sharded with
    eval.launch.nproc), so an earlier generated eval of the same model is reused."""
    from rge_core.embedder import Rationale
    from rge_core.evaluation.runner import chunk_name, dataset_works, encoder

    generated_config = replace(config, eval=replace(config.eval, rationales=rationale_modes.GENERATED))
    generated_job = replace(job, config=generated_config, cache=str(generated))
    if config.eval.rationales == rationale_modes.SHUFFLED and config.eval.launch.nproc > 1:
        _run_shards(generated_config, generated_job, generated / "shards")
    enc = encoder(generated_job)

    def generate(work) -> list[Rationale]:
        q = enc.encode("queries", chunk_name(work, "queries"), work.queries)
        return [Rationale(*r) for r in zip(q.rationales, q.budget_hit, q.num_tokens, strict=True)]

    try:
        benchmark = plan.source.inputs.get("benchmark")
        return rationale_modes.assign(
            config, store, dataset_works(job), plan.given, benchmark, generate, Path(job.cache)
        )
    finally:
        enc.close()


def _build(writer, config: Config, store: ArtifactStore, plan: EvalPlan, settings: dict) -> dict:
    """Encode (through the cache, sharded with eval.launch.nproc), score and write the reports; the stats."""
    ev = config.eval
    from rge_core.evaluation.runner import EvalJob, encoder

    model_dir = plan.model_dir(config, store)
    # Everything that changes an embedding keys the cache; items key each chunk inside it.
    key = [plan.model_id or settings["model"], {name: settings[name] for name in _EMBEDDING_SETTINGS}]
    generated = _cache_folder(store, key)  # eval.rationales generated keys nothing more
    cache = _cache_folder(store, key + rationale_modes.cache_extra(config, plan.given))
    folder, images = plan.source.folder(store), plan.source.image_root(store)
    job = EvalJob(config, str(model_dir), str(folder), str(images), plan.datasets, str(cache))
    if ev.rationales != rationale_modes.GENERATED:
        job = replace(job, assigned=_assign_rationales(config, store, plan, job, generated))
    if ev.launch.nproc > 1:
        progress.report("evaluate", 0, len(plan.datasets))
        build_folder(writer, lambda folder: _run_shards(config, job, folder / "shards"))
    enc = encoder(job)  # loads the model only for chunks the cache lacks (none after the shards)
    try:
        facts = rationale_checks.reference_facts(_facts_file(store, plan))
        per_dataset, rationale_rows, prediction_list, counts, changed, rejects = _score_datasets(enc, job, plan, facts)
    finally:
        enc.close()
    reject_rate = _check_rejects(writer, rejects, sum(r.num_queries for r in per_dataset.values()), ev)
    writer.write_parquet("rationales.parquet", pa.Table.from_pylist(rationale_rows))
    url = writer.file_url("predictions.parquet")
    predictions = validate(pa.Table.from_pylist(prediction_list), "predictions", source=url)
    writer.write_parquet("predictions.parquet", predictions)
    results = EvalResults(per_dataset)
    aggregates = _write_reports(writer, results, predictions, plan, ev.rationales)
    checked = Counter(predictions.column("rationale_check").to_pylist())
    return {
        "aggregates": aggregates,
        "datasets": len(per_dataset),
        "missing_mmeb_datasets": len(missing_datasets(list(per_dataset))),
        "candidate_encodings_saved_by_dedup": counts["references"] - counts["unique"],
        "candidate_references": counts["references"],
        "chunks_encoded": counts["chunks_encoded"],  # the rest came from the embedding cache
        "budget_hits": sum(r.budget_hits for r in per_dataset.values()),
        "gt_copy_rows": {name: r.gt_copy_rows for name, r in per_dataset.items() if r.gt_copy_rows},
        "model": plan.model_id or str(model_dir),
        "rewrites": plan.rewrite_records(),
        # texts per dataset that the rewrite rules changed (beyond the newline), per side
        "rewritten_texts": {side: dict(sorted(counts.items())) for side, counts in changed.items()},
        "reasoning": ev.reasoning,
        "rejects": len(rejects),
        "reject_rate": round(reject_rate, 4),
        "rationales": ev.rationales,
        "rationale_checks": {"right": checked["right"], "wrong": checked["wrong"]},  # against reference facts
    }


class EvalRejectsError(ValueError):
    """More queries were rejected than eval.max_reject_rate allows."""


def _check_rejects(writer, rejects: list[dict], queries: int, ev) -> float:
    """Write rejects.jsonl; fail past eval.max_reject_rate (the encoded chunks stay cached: a rerun with a
    higher gate, which is not part of the version, encodes nothing again)."""
    writer.write_text("rejects.jsonl", "".join(json.dumps(r) + "\n" for r in rejects))
    rate = len(rejects) / max(queries, 1)
    if rate > ev.max_reject_rate:
        reasons = Counter(reason_kind(r["reason"]) for r in rejects).most_common(3)
        raise EvalRejectsError(
            f"{writer.version_id}: {len(rejects)} of {queries} queries rejected ({rate:.1%} > "
            f"eval.max_reject_rate={ev.max_reject_rate:.1%}); top reasons {reasons}; "
            f"see {writer.file_url('rejects.jsonl')}"
        )
    return rate


def _facts_file(store: ArtifactStore, plan: EvalPlan) -> Path:
    """The reference facts: the synthetic benchmark's, else a facts.parquet in the eval folder (if any)."""
    if "benchmark" in plan.source.inputs:
        return local_folder(store.get(plan.source.inputs["benchmark"])) / rationale_checks.FACTS
    return plan.source.folder(store) / rationale_checks.FACTS


def evaluate_spec(config: Config, store: ArtifactStore, inputs: dict[str, str]) -> StageSpec:
    ev = config.eval
    from rge_core.evaluation.plan import plan_eval

    plan = plan_eval(config, store, inputs)  # every setting checked before any model or encoding work
    placement = plan.placement.record()  # dtype and attention kernel change the numbers; the device does not
    settings = {
        **versioned(ev),
        "rewrites": plan.rewrite_records(),
        "categories": plan.categories,  # the synthetic sets' too
        **rationale_modes.version_settings(config, plan.given),
        **placement,
        "image_bounds": [config.model.min_pixels, config.model.max_pixels],
        "pixel_cap": pixel_cap(config.model.max_pixels),  # an image above it is a reject
        **plan.source.identity,
    }
    lineage = dict(plan.source.inputs)
    if plan.model_id:
        lineage["model"] = plan.model_id
    else:
        settings["model"] = folder_identity(plan.model_dir(config, store))
    return StageSpec(
        "eval",
        settings,
        lineage,
        _CODE,
        lambda writer: _build(writer, config, store, plan, settings),
        resume=True,
        before=plan.source.before,
    )


STAGE = StageDecl(
    "evaluate",
    provides="eval",
    needs=("trained-model",),
    spec=evaluate_spec,
    section="eval",
    command="eval",
    help="Evaluate on MMEB (or the synthetic eval split); prints the summary table.",
    options=(
        Option("--model", "eval.model", "Model artifact id or checkpoint folder (eval.model)."),
        Option("--data", "eval.data", "MMEB-eval folder, or 'synthetic' (eval.data)."),
        Option("--datasets", "eval.datasets", "Comma-separated datasets (eval.datasets).", kind="list"),
        Option("--reasoning", "eval.reasoning", "on | off (eval.reasoning).", kind="on-off"),
        Option(
            "--query-rewrites",
            "eval.query_rewrites",
            "Rewrite file for query texts, RGE release format (eval.query_rewrites).",
        ),
        Option(
            "--candidate-rewrites",
            "eval.candidate_rewrites",
            "Rewrite file for candidate texts (eval.candidate_rewrites).",
        ),
        Option("--compare-to", "eval.compare_to", "Another eval artifact id: write diff.md (eval.compare_to)."),
    ),
    skipped_needs=lambda config: ("trained-model",) if config.eval.model else (),
    loads_model=lambda config: True,
)
