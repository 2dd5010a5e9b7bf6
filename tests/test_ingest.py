"""Ingest and the stage runner: synthetic and user MMEB-train sources, artifact reuse, memory:// roots,
and the model core running on ingested data."""

from __future__ import annotations

import json

import fsspec
import pytest
import torch
from typer.testing import CliRunner

from data_schemas.io import read_table
from rge_core.artifacts.local import image_root, local_folder
from rge_core.artifacts.store import ArtifactStore
from rge_core.cli.data_cmd import app as data_app
from rge_core.cli.main import app
from rge_core.model.inputs import Query, Target
from rge_core.pipeline import run_pipeline
from tests.helpers import small_config


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("artifacts"))
    config = small_config(root)
    return config, ArtifactStore(root), run_pipeline(config, ["ingest"])


def test_synthetic_ingest_writes_valid_pairs_for_every_subset(synthetic_run):
    _, store, results = synthetic_run
    pairs_artifact = store.get(results["ingest"])
    pairs = read_table(pairs_artifact.file_url("pairs.parquet"), "pairs")
    subsets = sorted(set(pairs.column("subset").to_pylist()))
    assert len(subsets) == 6 and pairs.num_rows == 6 * 4
    assert pairs_artifact.manifest.stats["subsets"] == {s: 4 for s in subsets}
    assert pairs_artifact.manifest.stats["rejects"] == 0
    benchmark_id = pairs_artifact.manifest.inputs["benchmark"]
    assert store.lineage(results["ingest"]).ancestors() == [benchmark_id]
    root = image_root(store, results["ingest"])
    for rel in pairs.column("qry_image").to_pylist() + pairs.column("pos_image").to_pylist():
        assert rel == "" or (root / rel).is_file()


def test_rerun_reuses_every_artifact_and_a_new_seed_only_what_depends_on_it(synthetic_run):
    config, store, results = synthetic_run
    created = {vid: store.get(vid).manifest.created for vid in results.values() if vid}
    assert run_pipeline(config, ["model", "ingest"]) == {**run_pipeline(config, ["model"]), **results}
    assert {vid: store.get(vid).manifest.created for vid in created} == created
    reseeded = small_config(store.root, "data.synth.seed=1")
    new = run_pipeline(reseeded, ["model", "ingest"])
    assert new["ingest"] != results["ingest"]
    assert new["model"] == run_pipeline(config, ["model"])["model"]


def test_synthetic_benchmark_passes_data_check(synthetic_run):
    _, store, results = synthetic_run
    benchmark = local_folder(store.get(store.get(results["ingest"]).manifest.inputs["benchmark"]))
    runner = CliRunner()
    for split in ("train", "eval"):
        done = runner.invoke(data_app, ["check", str(benchmark / split)])
        assert done.exit_code == 0, done.output


def test_user_folder_bad_rows_become_counted_rejects(tmp_path, data_train_folder):
    (data_train_folder / "images/CIRR/q1.jpg").unlink()
    config = small_config(str(tmp_path / "artifacts"), f"data.source={data_train_folder}")
    store = ArtifactStore(config.run.artifacts_root)
    pairs_id = run_pipeline(config, ["ingest"])["ingest"]
    manifest = store.get(pairs_id).manifest
    rejects = [json.loads(line) for line in store.get(pairs_id).read_bytes("rejects.jsonl").decode().splitlines()]
    assert manifest.stats["rejects"] == len(rejects) == 1
    assert manifest.stats["rows"] == 4 + 5 + 3 - 1
    assert (rejects[0]["subset"], rejects[0]["row"], rejects[0]["field"]) == ("CIRR", 1, "qry_image_path")
    assert image_root(store, pairs_id) == data_train_folder.resolve()


def test_memory_root_builds_and_reads_back_through_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RGE_CACHE", str(tmp_path / "cache"))
    fsspec.filesystem("memory").store.clear()
    config = small_config("memory://rge-test")
    results = run_pipeline(config, ["model", "ingest"])
    store = ArtifactStore("memory://rge-test")
    assert {m.kind for m in store.list()} == {"model", "benchmark", "pairs"}
    assert (local_folder(store.get(results["model"])) / "config.json").is_file()
    root = image_root(store, results["ingest"])
    assert str(root).startswith(str(tmp_path / "cache")) and any(root.rglob("*.png"))
    fsspec.filesystem("memory").store.clear()


def test_model_core_embeds_and_generates_on_ingested_pairs(synthetic_run, tiny_rge):
    _, store, results = synthetic_run
    pairs = read_table(store.get(results["ingest"]).file_url("pairs.parquet"), "pairs").to_pylist()
    root = image_root(store, results["ingest"])
    rows = pairs[::4][:6]  # one pair of each subset
    queries = [Query(r["qry_text"], root / r["qry_image"] if r["qry_image"] else None) for r in rows]
    targets = [Target(r["pos_text"], root / r["pos_image"] if r["pos_image"] else None) for r in rows]
    with torch.no_grad():
        rationales = tiny_rge.generate_rationales(queries, max_new_tokens=4)
        q = tiny_rge.embed_queries(queries, rationales.texts)
        t = tiny_rge.embed_targets(targets)
    assert q.shape == t.shape == (len(rows), tiny_rge.model.config.text_config.hidden_size)
    assert torch.isfinite(q @ t.T).all()
    assert len(rationales.texts) == len(rows) and all(n <= 4 for n in rationales.num_tokens)


def test_cli_run_reports_config_errors_by_key(tmp_path):
    done = CliRunner().invoke(app, ["run", "--config", "configs/tiny.yaml", "--set", "data.synth.sed=1"])
    assert done.exit_code == 1
    assert "data.synth.sed" in done.output


def test_training_text_with_special_tokens_is_refused_per_subset(tmp_path, data_train_folder):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rge_core.data.issues import DataError

    path = next(p for p in sorted(data_train_folder.rglob("*.parquet")) if "CIRR" in str(p))
    table = pq.read_table(path)
    texts = table.column("pos_text").to_pylist()
    texts[0] = "a caption with <|image_pad|> inside"
    pq.write_table(table.set_column(table.schema.get_field_index("pos_text"), "pos_text", pa.array(texts)), path)
    config = small_config(str(tmp_path / "artifacts"), f"data.source={data_train_folder}")
    with pytest.raises(DataError, match=r"CIRR: 1 texts \(first: row 0 pos_text has <\|image_pad\|>\)"):
        run_pipeline(config, ["ingest"])


def test_run_stage_reports_built_then_reused(tmp_path):
    from rge_core.pipeline import run_stage

    config = small_config(str(tmp_path))
    store = ArtifactStore(str(tmp_path))
    first = run_stage("model", config, store, {})
    again = run_stage("model", config, store, {})
    assert (first.reused, again.reused) == (False, True) and first.version == again.version
    assert run_stage("model", config, ArtifactStore(str(tmp_path)), {}).reused  # a fresh store object too
