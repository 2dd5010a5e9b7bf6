"""The evaluate stage on the synthetic eval split: scores checked against an independent encoding,
candidate deduplication, the embedding cache, diffs and bad input (tests/test_evaluate_folders.py: other
folders, rewrite files, ground-truth copies and settings checked before encoding)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from rge_core.artifacts.local import local_folder
from rge_core.artifacts.store import ArtifactStore
from rge_core.cli.main import app
from rge_core.data.issues import DataError
from rge_core.model.inputs import Query, Target
from rge_core.pipeline import run_pipeline
from tests.helpers import small_config

EVAL = ["eval.max_new_tokens=4", "eval.batch_size=8"]


def eval_config(root: Path, *extra: str):
    base = small_config(str(root), *EVAL)
    model = run_pipeline(base, ["model"])["model"]
    return small_config(str(root), *EVAL, f"eval.model={model}", *extra)


def benchmark_folder(store: ArtifactStore) -> Path:
    [benchmark] = store.list("benchmark")
    return local_folder(store.get(benchmark.id))


@pytest.fixture(scope="module")
def no_reasoning(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    config = eval_config(root, "eval.reasoning=false")
    return config, ArtifactStore(str(root)), run_pipeline(config, ["evaluate"])["evaluate"]


def test_scores_match_an_independent_encoding(no_reasoning, tiny_rge):
    config, store, version = no_reasoning
    results = json.loads(store.get(version).read_bytes("results.json"))
    benchmark = benchmark_folder(store)
    rows = pq.read_table(benchmark / "eval" / "SynthColor" / "test.parquet").to_pylist()
    root = benchmark / "eval"

    def image(rel):
        return root / rel if rel else None

    correct = 0
    with torch.no_grad():
        for row in rows:
            q = tiny_rge.embed_queries([Query(row["qry_text"], image(row["qry_img_path"]))])[0]
            c = tiny_rge.embed_targets(
                [Target(t, image(i)) for t, i in zip(row["tgt_text"], row["tgt_img_path"], strict=True)]
            )
            scores = (c @ q).numpy()
            correct += int(all(scores[0] > scores[1:]))
    assert results["datasets"]["SynthColor"]["metrics"]["precision@1"] == pytest.approx(correct / len(rows))


def test_dedup_and_cache_are_counted(no_reasoning):
    config, store, version = no_reasoning
    stats = store.get(version).manifest.stats
    benchmark = benchmark_folder(store) / "eval"
    references, unique = 0, 0
    for path in sorted(benchmark.glob("*/test.parquet")):
        rows = pq.read_table(path).to_pylist()
        pairs = [(t, i) for r in rows for t, i in zip(r["tgt_text"], r["tgt_img_path"], strict=True)]
        references, unique = references + len(pairs), unique + len(set(pairs))
    assert stats["candidate_references"] == references
    assert stats["candidate_encodings_saved_by_dedup"] == references - unique > 0
    assert stats["chunks_encoded"] > 0
    # The same evaluation again (its artifact gone, as after a crash before the manifest): every embedding
    # comes from the cache.
    before = json.loads(store.get(version).read_bytes("results.json"))
    shutil.rmtree(store.path(version))
    assert run_pipeline(config, ["evaluate"])["evaluate"] == version
    assert store.get(version).manifest.stats["chunks_encoded"] == 0
    assert json.loads(store.get(version).read_bytes("results.json")) == before


def test_reasoning_eval_reports_budget_hits_and_rationales(no_reasoning):
    config, store, _ = no_reasoning
    reasoning = small_config(store.root, *EVAL, f"eval.model={config.eval.model}")
    version = run_pipeline(reasoning, ["evaluate"])["evaluate"]
    artifact = store.get(version)
    rationales = pq.read_table(artifact.file_url("rationales.parquet")).to_pylist()
    assert len(rationales) == 6 * 3 and all(r["num_tokens"] <= 4 for r in rationales)
    assert artifact.manifest.stats["budget_hits"] == sum(r["budget_hit"] for r in rationales)
    assert {"summary.md", "summary.csv", "published.md", "results.json"} <= set(artifact.manifest.files)


def test_bad_eval_folder_fails_naming_the_row_and_writes_no_scores(no_reasoning, tmp_path):
    config, store, _ = no_reasoning
    source = benchmark_folder(store) / "eval"
    broken = tmp_path / "eval"
    shutil.copytree(source, broken)
    table = pq.read_table(broken / "SynthVQA" / "test.parquet").to_pylist()
    table[2]["tgt_img_path"] = table[2]["tgt_img_path"] + [""]
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(table), broken / "SynthVQA" / "test.parquet")
    complete = len(store.list("eval"))
    with pytest.raises(DataError, match=r"SynthVQA.*row 2.*tgt_img"):
        run_pipeline(
            small_config(store.root, *EVAL, f"eval.model={config.eval.model}", f"eval.data={broken}"), ["evaluate"]
        )
    assert len(store.list("eval")) == complete  # no partial scores presented as an evaluation


def test_cli_prints_the_summary(no_reasoning):
    config, store, version = no_reasoning
    done = CliRunner().invoke(
        app,
        [
            "eval",
            "--config",
            "configs/tiny.yaml",
            "--set",
            f"run.artifacts_root={store.root}",
            *[
                a
                for o in [
                    "data.synth.train_per_subset=4",
                    "data.synth.eval_per_subset=3",
                    "data.synth.candidates=4",
                    *EVAL,
                ]
                for a in ("--set", o)
            ],
            "--model",
            config.eval.model,
            "--reasoning",
            "off",
        ],
    )
    assert done.exit_code == 0, done.output
    assert "| SynthColor |" in done.output and version in done.output


def test_a_checkpoint_folder_is_evaluated_like_its_artifact(no_reasoning):
    """eval.model takes a folder as well as an artifact id: same scores, the folder (path and content) recorded."""
    config, store, version = no_reasoning
    folder = local_folder(store.get(config.eval.model))
    by_folder = run_pipeline(
        small_config(store.root, *EVAL, f"eval.model={folder}", "eval.reasoning=false"), ["evaluate"]
    )["evaluate"]
    assert by_folder != version
    recorded = store.get(by_folder).manifest.config["model"]
    assert recorded["path"] == str(folder.resolve()) and len(recorded["content"]) == 16  # path and content digest
    results = [json.loads(store.get(v).read_bytes("results.json"))["datasets"] for v in (version, by_folder)]
    assert results[0] == results[1]
