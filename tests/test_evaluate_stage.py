"""The evaluate stage on the synthetic eval split: scores checked against an independent encoding,
candidate deduplication, the embedding cache, per-query predictions, diffs with the McNemar test, the summary
chart and bad input (tests/test_evaluate_folders.py: other
folders, rewrite files, ground-truth copies and settings checked before encoding)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from data_schemas import read_table
from rge_core.artifacts.local import local_folder
from rge_core.artifacts.store import ArtifactStore
from rge_core.cli.main import app
from rge_core.data.issues import DataError
from rge_core.evaluation.significance import mcnemar_exact
from rge_core.model.inputs import Query, Target
from rge_core.pipeline import run_pipeline
from tests.helpers import small_config

EVAL = ["eval.decoding.max_new_tokens=4", "eval.batch_size=8"]


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


def predictions(store: ArtifactStore, version: str) -> list[dict]:
    artifact = store.get(version)
    return read_table(artifact.file_url("predictions.parquet"), "predictions").to_pylist()


def test_predictions_give_the_precision_at_1_of_results_and_the_chart_is_a_png(no_reasoning):
    _, store, version = no_reasoning
    results = json.loads(store.get(version).read_bytes("results.json"))["datasets"]
    rows = predictions(store, version)
    assert len(rows) == 6 * 3 and len({r["item_id"] for r in rows}) == len(rows)
    for name, result in results.items():
        ranks = [r["gt_rank"] for r in rows if r["dataset"] == name]
        assert len(ranks) == result["num_queries"]
        assert sum(rank == 1 for rank in ranks) / len(ranks) == result["metrics"]["precision@1"]  # exactly
    assert all((r["top_index"] == 0) == (r["gt_rank"] == 1) and r["top_score"] >= r["gt_score"] for r in rows)
    with Image.open(io.BytesIO(store.get(version).read_bytes("summary.png"))) as image:
        assert image.format == "PNG" and image.size[0] > 0


def _with_tied_distractor(store: ArtifactStore, folder: Path) -> Path:
    """The benchmark's eval split, but SynthT2I row 0 has two candidates: its ground truth and a copy of that image
    under another path (a different candidate that encodes identically, so it ties)."""
    shutil.copytree(benchmark_folder(store) / "eval", folder)
    path = folder / "SynthT2I" / "test.parquet"
    rows = pq.read_table(path).to_pylist()
    shutil.copy(folder / rows[0]["tgt_img_path"][0], folder / "images" / "SynthT2I" / "twin.png")
    rows[0]["tgt_text"] = [rows[0]["tgt_text"][0]] * 2
    rows[0]["tgt_img_path"] = [rows[0]["tgt_img_path"][0], "images/SynthT2I/twin.png"]
    pq.write_table(pa.Table.from_pylist(rows), path)
    return folder


def test_a_tie_counts_against_the_ground_truth_and_the_diff_pairs_queries(no_reasoning, tmp_path):
    config, store, version = no_reasoning
    data = _with_tied_distractor(store, tmp_path / "eval")
    overrides = [f"eval.model={config.eval.model}", "eval.reasoning=false", f"eval.data={data}"]
    tied = run_pipeline(small_config(store.root, *EVAL, *overrides, f"eval.compare_to={version}"), ["evaluate"])
    ours = {r["item_id"]: r for r in predictions(store, tied["evaluate"])}
    row = ours["SynthT2I/test/0"]
    assert (row["gt_rank"], row["top_index"], row["top_score"]) == (2, 1, row["gt_score"])
    # b (right before only) and c (right now only) from both runs' predictions, joined here by item id
    theirs = {r["item_id"]: r for r in predictions(store, version)}
    right = {i: (theirs[i]["gt_rank"] == 1, ours[i]["gt_rank"] == 1) for i in ours}
    diff = store.get(tied["evaluate"]).read_bytes("diff.md").decode()
    assert "exact McNemar test" in diff and "not paired" not in diff
    lines = {line.split(" | ")[0][2:]: line for line in diff.splitlines() if line.startswith("| ")}
    for dataset in [*{r["dataset"] for r in ours.values()}, ""]:  # "" pools every query: the Overall row
        pairs = [pair for item, pair in right.items() if item.startswith(dataset)]
        b, c = sum(a and not o for a, o in pairs), sum(o and not a for a, o in pairs)
        line = lines[dataset or "Overall"]
        assert line.endswith(f"| {len(pairs)} | {b} | {c} | {mcnemar_exact(b, c):.3g} |"), line


def test_a_diff_against_an_eval_without_predictions_says_so(no_reasoning):
    config, store, version = no_reasoning
    older = store.open("eval", {"made": "before predictions.parquet"}, inputs={}, code="old")
    older.write_bytes("results.json", store.get(version).read_bytes("results.json"))
    older.finish({})
    compared = small_config(
        store.root,
        *EVAL,
        f"eval.model={config.eval.model}",
        "eval.reasoning=false",
        f"eval.compare_to={older.version_id}",
    )
    diff = store.get(run_pipeline(compared, ["evaluate"])["evaluate"]).read_bytes("diff.md").decode()
    assert f"No per-query comparison: {older.version_id} has no predictions.parquet" in diff
    assert "| SynthColor |" in diff and "McNemar" not in diff
