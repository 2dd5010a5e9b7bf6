"""`rge embed`: collections from JSON lines, parquet and MMEB-eval folders; bad rows named before any model
work; the output's columns and vectors against the Embedder; resumption by chunk after a crash or a kill;
a plain --out file versus a versioned artifact."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from rge_core import progress
from rge_core.artifacts.store import ArtifactStore
from rge_core.cli.main import app
from rge_core.config.loader import load_config
from rge_core.config.schema import greedy_decoding
from rge_core.data.issues import DataError
from rge_core.data.mmeb_eval import read_mmeb_eval
from rge_core.embed_io.chunks import EmbedJob, embed_chunks
from rge_core.embed_io.collection import read_collection
from rge_core.embedder import Embedder, EmbedSettings
from rge_core.evaluation.work import dataset_work
from rge_core.model.rge_model import RGEModel
from rge_core.pipeline import run_pipeline
from rge_core.stages.embed import EmbedRequest, embed
from tests.helpers import rge_command, small_config

SETTINGS = ["eval.decoding.max_new_tokens=4", "eval.chunk_size=3", "eval.batch_size=2"]


def write_items(folder: Path, rows: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, colour in (("red", "red"), ("blue", "blue")):
        Image.new("RGB", (64, 56), colour).save(folder / f"{name}.png")
    items = []
    for k in range(rows):
        item: dict = {"id": f"item-{k}", "text": f"<|image_1|>\nWhat colour is thing {k}?"}
        if k % 3:
            item["image"] = "red.png" if k % 2 else "blue.png"
        else:
            item["text"] = f"Find a picture of thing number {k}" + " please" * k
        items.append(item)
    path = folder / "items.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> tuple[Path, str]:
    """(artifact root, the tiny model artifact)."""
    root = tmp_path_factory.mktemp("embed-root")
    return root, run_pipeline(small_config(str(root)), ["model"])["model"]


def config_for(root: Path, *extra: str):
    return load_config(None, [f"run.artifacts_root={root}", *SETTINGS, *extra])


def embedder_for(root: Path, model_id: str) -> Embedder:
    return Embedder.load(model_id, root=str(root), max_new_tokens=4, batch_size=2)


def test_query_file_gives_ids_vectors_rationales_and_an_up_to_date_rerun(model, tmp_path):
    root, model_id = model
    items = write_items(tmp_path / "in", rows=5)
    out = tmp_path / "out" / "queries.parquet"
    request = EmbedRequest(model_id, str(items), "query", True, out=str(out))
    reports: list[tuple] = []
    with progress.listening(lambda *report, **details: reports.append((*report, details["rows"])), details=True):
        first = embed(config_for(root), request)
    assert reports == [("embed", 0, 2, 0), ("embed", 1, 2, 3), ("embed", 2, 2, 5)]  # chunks done, rows encoded
    assert first.embedded is not None and first.embedded.chunks == 2 and first.embedded.chunks_encoded == 2
    table = pq.read_table(out)
    assert table.schema.names == ["id", "vector", "rationale", "budget_hit"]
    assert table.schema.field("vector").type == pa.list_(pa.float32(), 128)
    assert table.column("id").to_pylist() == [f"item-{k}" for k in range(5)]
    rows = [json.loads(line) for line in items.read_text().splitlines()]
    plain = [{"text": r["text"], "image": items.parent / r["image"] if "image" in r else None} for r in rows]
    vectors, rationales = embedder_for(root, model_id).encode_queries(plain, return_rationales=True)
    np.testing.assert_allclose(np.stack(table.column("vector").to_numpy(zero_copy_only=False)), vectors, atol=1e-5)
    assert table.column("rationale").to_pylist() == [r.text for r in rationales]
    assert table.column("budget_hit").to_pylist() == [r.budget_hit for r in rationales]
    assert not list(out.parent.glob(".*"))  # the chunks are gone once the file is whole
    assert embed(config_for(root), request).embedded is None  # same model, input and settings: nothing to do
    other = embed(config_for(root), EmbedRequest(model_id, str(items), "query", False, out=str(out)))
    assert other.embedded is not None and "rationale" in pq.read_table(out).column_names


def test_candidates_from_parquet_have_no_rationale_columns(model, tmp_path):
    root, model_id = model
    items = write_items(tmp_path / "in", rows=4)
    rows = [json.loads(line) for line in items.read_text().splitlines()]
    source = items.parent / "c.parquet"  # beside its images
    pq.write_table(pa.Table.from_pylist([{"text": r["text"], "image": r.get("image")} for r in rows]), source)
    out = tmp_path / "c-out.parquet"
    embed(config_for(root), EmbedRequest(model_id, str(source), "candidate", out=str(out)))
    table = pq.read_table(out)
    assert table.column_names == ["id", "vector"] and table.column("id").to_pylist() == ["0", "1", "2", "3"]
    plain = [{"text": r["text"], "image": items.parent / r["image"] if "image" in r else None} for r in rows]
    expected = embedder_for(root, model_id).encode_candidates(plain)
    np.testing.assert_allclose(np.stack(table.column("vector").to_numpy(zero_copy_only=False)), expected, atol=1e-5)


def test_an_mmeb_eval_folder_gives_the_evals_queries_and_unique_candidates(model, data_eval_folder, tmp_path):
    root, model_id = model
    config = config_for(root)
    queries = embed(config, EmbedRequest(model_id, str(data_eval_folder), "query", False, out=str(tmp_path / "q.pq")))
    candidates = embed(config, EmbedRequest(model_id, str(data_eval_folder), "candidate", out=str(tmp_path / "c.pq")))
    assert queries.embedded and candidates.embedded
    table = read_mmeb_eval(data_eval_folder)
    works = [dataset_work(table, name, data_eval_folder, None, None) for name in ("MSCOCO_t2i", "VOC2007")]
    assert pq.read_table(tmp_path / "q.pq").column("id").to_pylist() == [r["item_id"] for w in works for r in w.rows]
    got = pq.read_table(tmp_path / "c.pq")
    assert got.column("id").to_pylist() == [f"{w.dataset}/candidate/{k}" for w in works for k in range(len(w.targets))]
    assert got.num_rows < sum(w.references for w in works)  # deduplicated by content, as the eval does
    expected = embedder_for(root, model_id).encode_candidates([t for w in works for t in w.targets])
    np.testing.assert_allclose(np.stack(got.column("vector").to_numpy(zero_copy_only=False)), expected, atol=1e-5)


def test_without_out_it_is_a_versioned_artifact_of_the_model(model, tmp_path):
    root, model_id = model
    items = write_items(tmp_path / "in", rows=4)
    first = embed(config_for(root), EmbedRequest(model_id, str(items), "candidate"))
    store = ArtifactStore(str(root))
    artifact = store.get(first.version or "")
    assert artifact.manifest.kind == "embeddings" and artifact.manifest.inputs == {"model": model_id}
    assert artifact.read_table("embeddings.parquet").num_rows == 4 and artifact.manifest.stats["dim"] == 128
    again = embed(config_for(root), EmbedRequest(model_id, str(items), "candidate"))
    assert again.version == first.version and again.embedded is None  # reused
    items.write_text(items.read_text().replace("thing 1?", "thing one?"))  # new input content: a new version
    assert embed(config_for(root), EmbedRequest(model_id, str(items), "candidate")).version != first.version


def test_a_crash_mid_run_resumes_at_the_missing_chunks_and_gives_the_uninterrupted_result(model, tmp_path):
    root, model_id = model
    items = write_items(tmp_path / "in", rows=7)
    collection = read_collection(items, "query")
    job = EmbedJob("query", True, chunk_size=3)
    rge = RGEModel.load(str(root / "model" / model_id))
    calls = []

    class Crashing(Embedder):
        def encode_queries(self, items, reasoning=True, return_rationales=False):  # type: ignore[override]
            calls.append(len(items))
            if len(calls) == 3:
                raise KeyboardInterrupt  # killed while encoding the third chunk
            return super().encode_queries(items, reasoning, return_rationales)

    settings = EmbedSettings(greedy_decoding(4), batch_size=2)
    with pytest.raises(KeyboardInterrupt):
        embed_chunks(lambda: Crashing(rge, settings), collection, job, tmp_path / "scratch")
    assert sorted(p.name for p in (tmp_path / "scratch").iterdir()) == ["chunk-00000.parquet", "chunk-00001.parquet"]
    calls.clear()
    resumed = embed_chunks(lambda: Crashing(rge, settings), collection, job, tmp_path / "scratch")
    assert calls == [1] and resumed.chunks_encoded == 1 and resumed.chunks == 3
    whole = embed_chunks(lambda: Embedder(rge, settings), collection, job, tmp_path / "fresh")
    assert resumed.table.equals(whole.table)
    (tmp_path / "scratch" / "chunk-00001.parquet").write_bytes(b"torn")  # damaged on disk: encoded again
    assert embed_chunks(lambda: Embedder(rge, settings), collection, job, tmp_path / "scratch").chunks_encoded == 1


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"text": "a"}, {"text": "b", "imgae": "x.png"}], r"items.jsonl: row 1: field 'imgae': unknown"),
        (
            [{"text": "a"}, {"text": "b", "image": "nope.png"}],
            r"items.jsonl: row 1: field 'image': missing image 'nope",
        ),
        ([{"id": "a", "text": "a"}, {"id": "a", "text": "b"}], r"items.jsonl: row 1: field 'id': 'a' repeats row 0"),
        ([{"id": 1, "text": "a"}, {"text": "b"}], r"items.jsonl: row 1: field 'id': missing \(other rows have one\)"),
        ([{"text": "a"}, {"text": ""}], r"items.jsonl: row 1: field 'text': the row has neither text nor an image"),
        ([{"text": "a"}, {"text": "x <|im_end|>"}], r"items.jsonl: row 1: field 'text': contains the model's special"),
        ([{"text": "a"}, {"text": 3}], r"items.jsonl: row 1: field 'text': expected a string, got int"),
        ([{"text": "a"}, ["b"]], r"items.jsonl: row 1: expected an object"),
    ],
)
def test_a_bad_row_is_named_by_file_row_and_field(tmp_path, rows, message):
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(DataError, match=message):
        read_collection(path, "query")


def test_bad_input_on_the_command_line_is_one_line_before_any_model_work(model, tmp_path, monkeypatch):
    root, model_id = model
    monkeypatch.setattr(RGEModel, "load", lambda *a, **k: pytest.fail("the model loaded"))
    path = tmp_path / "items.jsonl"
    path.write_text('{"text": "fine"}\nnot json\n')
    base = ["embed", "--model", model_id, "--set", f"run.artifacts_root={root}"]
    cases = [
        (["--input", str(path), "--side", "query"], f"error: {path}: row 1 (line 2): not valid JSON"),
        (["--input", str(tmp_path / "x.csv"), "--side", "query"], "is not a .jsonl or .parquet file nor an MMEB"),
        (["--input", str(path), "--side", "target"], "error: --side: 'target' is not query or candidate"),
        (["--input", str(path), "--side", "candidate", "--reasoning", "on"], "--reasoning: candidates never reason"),
    ]
    for args, message in cases:
        done = CliRunner().invoke(app, [*base, *args])
        assert done.exit_code == 1 and message in done.output and "Traceback" not in done.output, done.output
    path.write_text('{"text": "fine"}\n')
    done = CliRunner().invoke(app, ["embed", "--model", "model-0123456789ab", "--input", str(path), "--side", "query"])
    assert done.exit_code == 1 and "--model: no complete artifact model-0123456789ab" in done.output
    assert not list(tmp_path.glob("*.parquet")) and not list(tmp_path.glob(".*"))


@pytest.mark.slow
def test_killed_mid_run_the_rerun_continues_and_equals_an_uninterrupted_run(model, tmp_path):
    root, model_id = model
    items = write_items(tmp_path / "in", rows=24)
    sets = [f"run.artifacts_root={root}", "eval.decoding.max_new_tokens=16", "eval.chunk_size=2", "eval.batch_size=2"]

    def command(out: Path) -> list[str]:
        return rge_command(
            "embed", *sets, extra=("--model", model_id, "--input", str(items), "--side", "query", "--out", str(out))
        )

    out = tmp_path / "killed.parquet"
    running = subprocess.Popen(command(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chunks = tmp_path / ".killed.parquet.chunks"
    deadline = time.monotonic() + 240
    while not len(list(chunks.glob("*/chunk-*.parquet"))) >= 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    running.send_signal(signal.SIGKILL)
    running.wait(timeout=30)
    done_before = len(list(chunks.glob("*/chunk-*.parquet")))
    assert 2 <= done_before < 12 and not out.exists(), done_before  # killed mid-run
    rerun = subprocess.run(command(out), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"{12 - done_before} of 12 chunks encoded now" in rerun.stdout, rerun.stdout
    whole = subprocess.run(command(tmp_path / "whole.parquet"), capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0 and "12 of 12 chunks encoded now" in whole.stdout, whole.stderr[-3000:]
    assert pq.read_table(out).equals(pq.read_table(tmp_path / "whole.parquet"))
