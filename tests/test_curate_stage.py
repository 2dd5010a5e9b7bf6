"""Curate + assemble with the reference generator (fast): validation and rejects, retries, the reject-rate
gate, resumption, multi-engine sharding, prompt-set changes and artifact reuse."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_schemas.io import read_table
from rge_core import progress
from rge_core.artifacts.store import ArtifactStore
from rge_core.curation.rationales_artifact import shard_file
from rge_core.curation.shards import request_seed
from rge_core.pipeline import run_pipeline
from rge_core.stages.assemble import in_validation
from rge_core.stages.curate import CurationError
from tests.helpers import FACTS, rationales, small_config


@pytest.fixture(scope="module")
def facts_run(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("artifacts"))
    config = small_config(root, *FACTS)
    return config, ArtifactStore(root), run_pipeline(config, ["assemble"])


def test_reference_facts_become_valid_rationales_in_five_shards(facts_run):
    _, store, results = facts_run
    manifest = store.get(results["curate"]).manifest
    rows = rationales(store, results["curate"])
    assert manifest.stats["shards"] == 5 and len(rows) == 24 and manifest.stats["valid"] == 24
    assert len({r["pair_id"] for r in rows}) == 24
    assert {r["prompt_set"] for r in rows} == {"rge-v1"} and {r["prompt_set_hash"] for r in rows} == {
        manifest.stats["prompt_set_hash"]
    }
    assert all(r["finish_reason"] == "stop" and r["template"].endswith(".jinja") for r in rows)
    assert (Path(store.path(results["curate"])) / "prompt_set" / "manifest.yaml").is_file()


def test_assembly_splits_counts_and_card(facts_run):
    config, store, results = facts_run
    dataset = store.get(results["assemble"])
    train = read_table(dataset.file_url("train.parquet"), "training_examples").to_pylist()
    validation = (
        read_table(dataset.file_url("validation.parquet"), "training_examples").to_pylist()
        if "validation.parquet" in dataset.manifest.files
        else []
    )
    examples = train + validation
    assert len(examples) == 24 and {e["split"] for e in train} == {"train"}
    for example in examples:
        assert (example["split"] == "validation") == in_validation(
            example["pair_id"], 0, config.assemble.validation_fraction
        )
    lengths = sorted(len(e["rationale"]) for e in examples)
    stats = dataset.manifest.stats
    assert stats["rationale_chars"]["min"] == lengths[0] and stats["rationale_chars"]["max"] == lengths[-1]
    assert stats["rationale_chars"]["mean"] == round(sum(lengths) / len(lengths), 1)
    assert sum(stats["train"]["per_subset"].values()) == len(train)
    card = dataset.read_bytes("README.md").decode()
    assert "rge-v1" in card and f"train {len(train)}" in card
    assert set(dataset.manifest.inputs) == {"pairs", "rationales"}


def test_rerun_does_no_work_and_a_new_prompt_set_reuses_pairs(facts_run, tmp_path):
    config, store, results = facts_run
    created = {v: store.get(v).manifest.created for v in results.values() if v}
    assert run_pipeline(config, ["assemble"]) == results
    assert {v: store.get(v).manifest.created for v in created} == created
    edited = tmp_path / "rge-v1-edited"
    shutil.copytree("prompts/rge-v1", edited)
    template = edited / "vqa.jinja"
    template.write_text(template.read_text() + "\n{# edited #}\n")
    changed = small_config(store.root, *FACTS, f"curation.prompt_set={edited}")
    new = run_pipeline(changed, ["assemble"])
    assert new["ingest"] == results["ingest"] and new["model"] == results["model"]
    assert new["curate"] != results["curate"] and new["assemble"] != results["assemble"]
    assert (
        store.get(new["curate"]).manifest.stats["prompt_set_hash"]
        != store.get(results["curate"]).manifest.stats["prompt_set_hash"]
    )


def write_reference(path: Path, store: ArtifactStore, pairs_id: str) -> None:
    """Good texts for most pairs; one pair missing, one with a special token, one too short, one within the
    characters but over the prompt set's token budget."""
    pairs = read_table(store.get(pairs_id).file_url("pairs.parquet"), "pairs").column("pair_id").to_pylist()
    texts = {
        pid: f"The query about item {i} leads to its target through the shapes shown." for i, pid in enumerate(pairs)
    }
    texts[pairs[1]] = "The answer is <emb> here, which must never be trained on."
    texts[pairs[2]] = "Too short."
    texts[pairs[3]] = "The query leads to its target through " + "the shapes and colours shown, " * 30 + "in order."
    del texts[pairs[0]]
    pq.write_table(pa.table({"pair_id": list(texts), "rationale": list(texts.values())}), path)


def test_invalid_rationales_are_retried_then_rejected_with_reasons(facts_run, tmp_path):
    _, store, results = facts_run
    reference = tmp_path / "reference.parquet"
    write_reference(reference, store, results["ingest"])
    config = small_config(
        store.root, "curation.generator=reference", f"curation.reference={reference}", "curation.min_chars=16"
    )
    assert config.curation.prompt_set == "prompts/rge-terse" and config.curation.max_chars >= 1000
    version = run_pipeline(config, ["curate"])["curate"]
    manifest = store.get(version).manifest
    rejects = [json.loads(line) for line in store.get(version).read_bytes("rejects.jsonl").decode().splitlines()]
    reasons = sorted(r["reject_reason"].split(":")[0] for r in rejects)
    assert reasons == ["missing", "special tokens", "too long", "too short"]
    # Counted with the tokenizer of the pipeline's model (the tiny model artifact) against rge-terse's budget.
    [too_long] = [r["reject_reason"] for r in rejects if r["reject_reason"].startswith("too long")]
    assert re.fullmatch(r"too long: \d+ tokens > 128 \(prompt set budget\)", too_long)
    assert manifest.stats["rejects"] == 4 and manifest.stats["valid"] == 20
    rows = {r["pair_id"]: r for r in rationales(store, version)}
    last_attempt = config.curation.max_retries
    for pair_id, row in rows.items():  # rejected rows carry the seed of their last retry, valid ones the first
        attempt = 0 if row["valid"] else last_attempt
        assert row["seed"] == request_seed(config.curation.decoding.seed, pair_id, attempt)


def test_reject_rate_gate_fails_after_writing_then_resumes_without_regenerating(facts_run):
    _, store, results = facts_run
    terse = small_config(store.root, *FACTS, "curation.prompt_set=prompts/rge-terse")  # facts are multi-sentence
    with pytest.raises(CurationError, match=r"24 of 24 rationales invalid .*curation\.max_reject_rate=20%"):
        run_pipeline(terse, ["curate"])
    [incomplete] = [p for p in Path(store.root, "rationales").iterdir() if not (p / "manifest.json").exists()]
    shards = sorted(incomplete.glob("shards/*.parquet"))
    assert len(shards) == 5 and (incomplete / "rejects.jsonl").is_file()
    stamps = [p.stat().st_mtime_ns for p in shards]
    accepted = small_config(store.root, *FACTS, "curation.prompt_set=prompts/rge-terse", "curation.max_reject_rate=1.0")
    version = run_pipeline(accepted, ["curate"])["curate"]
    assert version == incomplete.name  # the gate is not part of the version: the same run, resumed
    assert [p.stat().st_mtime_ns for p in shards] == stamps
    assert store.get(version).manifest.stats["rejects"] == 24


@pytest.mark.slow
def test_two_engine_processes_write_the_same_rationales(facts_run, tmp_path):
    _, store, results = facts_run
    root = str(tmp_path / "two-engines")
    reports = []
    with progress.listening(lambda *report: reports.append(report)):
        version = run_pipeline(small_config(root, *FACTS, "curation.engines=2"), ["curate"])["curate"]
    assert version == results["curate"]
    assert reports and all(stage == "curate" and 0 <= done <= total for stage, done, total in reports)

    def without_generator(rows):  # the reference generator is named by its file, which lives under the root
        return [{k: v for k, v in r.items() if k != "generator"} for r in rows]

    assert without_generator(rationales(ArtifactStore(root), version)) == without_generator(rationales(store, version))


def test_a_rationale_shard_edited_after_curation_stops_assembly_naming_it(tmp_path):
    config = small_config(str(tmp_path), *FACTS)
    store = ArtifactStore(str(tmp_path))
    curated = run_pipeline(config, ["curate"])["curate"]
    shard = Path(store.path(curated)) / shard_file(1)
    table = pq.read_table(shard)
    edited = table.set_column(
        table.schema.get_field_index("rationale"),
        "rationale",
        pa.array(["The answer is the first candidate."] * table.num_rows),
    )
    pq.write_table(edited, shard)
    changed = rf"artifact {curated}: {shard_file(1)} was changed after the artifact was written"
    with pytest.raises(LookupError, match=changed):
        run_pipeline(config, ["assemble"])
    assert not store.list("dataset")  # nothing was built from it


@pytest.mark.slow
def test_a_sigkilled_curation_leaves_a_job_folder_that_the_next_run_removes(tmp_path):
    """SIGKILL cannot be caught: the engines' job folder stays behind, and the next curation, which finds its
    process gone, removes it (two engine processes, so the job file exists)."""
    import os
    import signal
    import subprocess
    import time

    from tests.helpers import SMALL_SYNTH, rge_command

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    command = rge_command("curate", f"run.artifacts_root={tmp_path / 'a'}", *SMALL_SYNTH, *FACTS, "curation.engines=2")
    run = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(scratch.glob("rge-curate-*/job.json")) and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    assert list(scratch.glob("rge-curate-*/job.json"))  # left by the killed run
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(scratch.glob("rge-curate-*")) == []
