"""Stage 2, curate: pairs + prompt set + generator -> the `rationales` artifact (parquet shards,
rejects.jsonl, a copy of the prompt set). Sharded and resumable: shards are written atomically, a rerun
after a crash or kill curates only the missing ones.

    rge curate --config configs/tiny.yaml [--prompt-set prompts/rge-terse] [--set curation.engines=2]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from data_schemas.io import read_table
from rge_core import progress
from rge_core.artifacts.local import image_root, local_folder
from rge_core.artifacts.store import ArtifactStore, ArtifactWriter
from rge_core.artifacts.verify import folder_identity
from rge_core.builds import StageSpec, planned_id
from rge_core.child_processes import start, wait_for
from rge_core.config.schema import Config, versioned
from rge_core.curation.rationales_artifact import SHARDS_STAT, rationales_summary, shard_file
from rge_core.curation.shards import shard_ranges
from rge_core.model.limits import TINY_MAX_POSITIONS, max_positions
from rge_core.prompts.prompt_set import check_subsets, load_prompt_set
from rge_core.root_cause import failure_report
from rge_core.scratch import scratch_folder
from rge_core.sources import SYNTHETIC, TINY_MODEL, TRAIN, benchmark_spec, data_source, model_folder
from rge_core.stage_logs import log_file
from rge_core.stages.declaration import Option, StageDecl

if TYPE_CHECKING:
    from rge_core.curation.engine_run import CurationJob

_CODE = ["rge_core/curation", "rge_core/generation", "rge_core/prompts", "data_schemas", "rge_core/stages/curate.py"]
SYNTHETIC_FACTS = "synthetic-facts"


class CurationError(ValueError):
    pass


def _reference_path(config: Config, store: ArtifactStore) -> str:
    """The reference generator's file; synthetic-facts names the benchmark's facts (built before curation)."""
    reference = config.curation.reference
    if reference == SYNTHETIC_FACTS:
        return str(local_folder(store.get(planned_id(store, benchmark_spec(config)))) / "facts.parquet")
    return str(Path(reference).resolve()) if reference else ""


def _run_engines(job: CurationJob, writer: ArtifactWriter, curation, shards: int, stage_log: Path) -> None:
    """The one engine in-process, or one process per engine, each logging to <id>.engine-K.log beside `stage_log`."""
    if job.workers == 1:
        from rge_core.curation.engine_run import run_engine  # heavy: the generator's libraries

        run_engine(job, 0, writer.has_file)
        return
    first = curation.node_rank * curation.engines
    gpus = _visible_gpus()
    with scratch_folder("curate") as scratch:
        job_file = scratch / "job.json"
        job_file.write_text(job.to_json())
        processes = []
        for local in range(curation.engines):
            env = dict(os.environ)
            if gpus:  # engine k gets its own tensor_parallel_size GPUs
                tp = curation.tensor_parallel_size
                env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[local * tp : (local + 1) * tp])
            engine = first + local
            command = [sys.executable, "-m", "rge_core.curation.engine_run", str(job_file), str(engine)]
            log = stage_log.with_name(f"{writer.version_id}.engine-{engine}.log")
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a") as output:
                processes.append((engine, start(command, env=env, stdout=output, stderr=subprocess.STDOUT), log))
        wait_for(  # progress: shards present on the artifact
            [p for _, p, _ in processes],
            lambda: progress.report("curate", sum(writer.has_file(shard_file(i)) for i in range(shards)), shards),
        )
        failures = [(engine, p, log) for engine, p, log in processes if p.returncode != 0]
    if failures:
        engine, process, log = failures[0]
        raise CurationError(failure_report(f"curation engine {engine}", process.returncode, log))


def _visible_gpus() -> list[str]:
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def _summarise(writer: ArtifactWriter, shards: int) -> tuple[pa.Table, list[dict]]:
    table = pa.concat_tables([read_table(writer.file_url(shard_file(i)), "rationales") for i in range(shards)])
    rejects = [
        {k: row[k] for k in ("pair_id", "subset", "reject_reason", "finish_reason", "rationale", "seed")}
        for row in table.filter(pc.invert(table.column("valid"))).to_pylist()
    ]
    return table, rejects


def curate_spec(config: Config, store: ArtifactStore, inputs: dict[str, str]) -> StageSpec:
    """The rationales artifact; bad bounds, prompt sets, generator folders and lengths fail here, before any engine."""
    curation = config.curation
    pairs_id = inputs["pairs"]
    from rge_core.model.processor import image_size_kwargs  # heavy imports stay out of `rge --help`

    image_size_kwargs(config.model.min_pixels, config.model.max_pixels)
    prompt_set = load_prompt_set(curation.prompt_set)  # template errors fail here, before any generation
    check_subsets(prompt_set, _subsets(config, store, pairs_id))
    if curation.reference and curation.reference != SYNTHETIC_FACTS and not Path(curation.reference).is_file():
        raise CurationError(f"curation.reference: {curation.reference} is not a file (nor synthetic-facts)")
    if curation.reference == SYNTHETIC_FACTS and config.data.source != SYNTHETIC:
        raise CurationError("curation.reference=synthetic-facts needs data.source=synthetic")
    settings = versioned(curation)
    settings["prompt_set"] = {"name": prompt_set.name, "hash": prompt_set.hash}
    synthetic_facts = curation.reference == SYNTHETIC_FACTS
    settings["reference"] = curation.reference if synthetic_facts else _reference_path(config, store)
    generates = curation.generator != "reference"
    if generates:  # what the generator sees of each image
        settings["image_bounds"] = [config.model.min_pixels, config.model.max_pixels]
        _check_model_len(config)
    versioned_inputs = {"pairs": pairs_id}
    # The pipeline's model generates when no generator_model is named, and its tokenizer counts the budget.
    if (generates and not curation.generator_model) or prompt_set.max_tokens is not None:
        if inputs.get("base-model"):
            versioned_inputs["model"] = inputs["base-model"]
        else:
            settings["model"] = folder_identity(config.model.path)
    if generates and curation.generator_model:
        settings["generator_model"] = folder_identity(curation.generator_model)

    def build(writer) -> dict:
        pipeline_model = str(model_folder(config, store, inputs.get("base-model")))  # its tokenizer counts the budget
        for name, data in sorted(prompt_set.files.items()):  # provenance: exactly what the set's hash covers
            if not writer.has_file(f"prompt_set/{name}"):
                writer.write_bytes(f"prompt_set/{name}", data)
        from rge_core.curation.engine_run import CurationJob, generator_placement

        job = CurationJob(
            curation=curation,
            model=config.model,
            pairs_url=store.get(pairs_id).file_url("pairs.parquet"),
            image_root=str(image_root(store, pairs_id)),
            output_url=writer.url,
            generator_model=curation.generator_model or pipeline_model,
            reference_path=_reference_path(config, store),
            tokenizer_path=pipeline_model,
            workers=curation.engines * curation.num_nodes,
        )
        if curation.generator == "transformers":
            generator_placement(job)  # a bad device, dtype or attention fails before any engine starts
        pairs_manifest = store.get(pairs_id).manifest
        check_subsets(prompt_set, list(pairs_manifest.stats["subsets"]))
        shards = len(shard_ranges(pairs_manifest.stats["rows"], curation.shard_size))
        _run_engines(job, writer, curation, shards, log_file(store, writer.version_id))
        missing = [i for i in range(shards) if not writer.has_file(shard_file(i))]
        if missing:  # other nodes are still at work; the last one to finish (or a rerun) completes the artifact
            raise CurationError(f"{writer.version_id}: {len(missing)} of {shards} shards still missing (other nodes?)")
        table, rejects = _summarise(writer, shards)
        writer.write_text("rejects.jsonl", "".join(json.dumps(r) + "\n" for r in rejects))
        reject_rate = len(rejects) / max(table.num_rows, 1)
        if reject_rate > curation.max_reject_rate:
            reasons = Counter(r["reject_reason"].split(":")[0] for r in rejects).most_common(3)
            raise CurationError(
                f"{writer.version_id}: {len(rejects)} of {table.num_rows} rationales invalid ({reject_rate:.0%} > "
                f"curation.max_reject_rate={curation.max_reject_rate:.0%}); top reasons {reasons}; "
                f"see {writer.file_url('rejects.jsonl')}"
            )
        return {**rationales_summary(table), SHARDS_STAT: shards}

    # Several nodes curate one version together (disjoint shards; the last one writes the manifest).
    return StageSpec(
        "rationales", settings, versioned_inputs, _CODE, build, resume=True, exclusive=curation.num_nodes == 1
    )


def _subsets(config: Config, store: ArtifactStore, pairs_id: str) -> list[str]:
    """The subsets the pairs hold: from the artifact once built, else what the data source holds."""
    if store.is_complete(pairs_id):
        return list(store.get(pairs_id).manifest.stats["subsets"])
    return list(config.data.subsets or data_source(config, store, TRAIN).subsets)


def _check_model_len(config: Config) -> None:
    """vLLM refuses a max_model_len above the generator's positions, but only once its engine starts."""
    name, limit = _generator_positions(config)
    length = config.curation.max_model_len
    if config.curation.generator == "vllm" and limit is not None and length > limit:
        raise CurationError(
            f"curation.max_model_len: {length} is above {limit}, the max_position_embeddings of {name} "
            "(vLLM refuses it)"
        )


def _generator_positions(config: Config) -> tuple[str, int | None]:
    """(the generator's name, its max_position_embeddings) without loading it."""
    if config.curation.generator_model:
        return config.curation.generator_model, max_positions(Path(config.curation.generator_model))
    if config.model.path == TINY_MODEL:
        return "the tiny model", TINY_MAX_POSITIONS
    return config.model.path, max_positions(Path(config.model.path))


STAGE = StageDecl(
    "curate",
    provides="rationales",
    needs=("pairs", "base-model"),
    spec=curate_spec,
    section="curation",
    help="Curate oracle rationales (and what curation needs; existing artifacts are reused).",
    options=(Option("--prompt-set", "curation.prompt_set", "Prompt set folder (curation.prompt_set)."),),
    loads_model=lambda config: config.curation.generator == "transformers",
)
