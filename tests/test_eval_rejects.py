"""Eval turns per-row failures into rejects: a query whose text is too long or whose image (or one of whose
candidates' images) is truncated or too large is not encoded, is listed in rejects.jsonl and counts as a miss;
every other query scores exactly as in a clean evaluation; past eval.max_reject_rate the stage fails in one
line. The evaluation cache holds chunks named by their items' content and checked against the sha256 recorded
when they were written: a forged chunk, even a valid .npz, is encoded again."""

from __future__ import annotations

import io
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rge_core.artifacts.store import ArtifactStore
from rge_core.pipeline import run_pipeline
from rge_core.stages.evaluate import EvalRejectsError
from tests.helpers import small_config, write_eval_folder

COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200), (200, 30, 200)]


def write_folder(folder: Path) -> Path:
    """Pets: image query -> 4 text candidates; Shop: text query -> 3 image candidates (images shared)."""
    images = [Image.new("RGB", (48, 48), colour) for colour in COLOURS]
    labels = [f"a pet of colour {i}" for i in range(6)]
    pets = {
        "qry_text": ["<|image_1|>\nRepresent the given image for classification"] * 6,
        "qry_img_path": [f"img/{i}.png" for i in range(6)],
        "tgt_text": [[labels[i], labels[(i + 1) % 6], labels[(i + 2) % 6], labels[(i + 4) % 6]] for i in range(6)],
        "tgt_img_path": [[""] * 4 for _ in range(6)],
    }
    shop = {
        "qry_text": [f"Find the product photo number {i}" for i in range(6)],
        "qry_img_path": [""] * 6,
        "tgt_text": [["<|image_1|>\nRepresent the given image."] * 3 for _ in range(6)],
        "tgt_img_path": [[f"img/{i}.png", f"img/{(i + 1) % 6}.png", f"img/{(i + 3) % 6}.png"] for i in range(6)],
    }
    return write_eval_folder(folder, images, {"Pets": pets, "Shop": shop})


def png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval-rejects")
    model = run_pipeline(small_config(str(root)), ["model"])["model"]
    return root, model


def evaluate(setup, folder: Path, *extra: str) -> str:
    root, model = setup
    config = small_config(str(root), f"eval.data={folder}", f"eval.model={model}", "eval.reasoning=false", *extra)
    return run_pipeline(config, ["evaluate"])["evaluate"]


def predictions(setup, version: str) -> dict[str, dict]:
    artifact = ArtifactStore(str(setup[0])).get(version)
    return {r["item_id"]: r for r in pq.read_table(artifact.file_url("predictions.parquet")).to_pylist()}


def broken_folder(tmp_path: Path) -> Path:
    """Pets row 2's query image cut short, Shop's img/5.png a 12000 x 12000 header (rows 2, 4 and 5 list it),
    and Pets row 4's query 30000 characters long."""
    folder = write_folder(tmp_path / "broken")
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buffer, format="PNG")
    (folder / "img/2.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (folder / "img/5.png").write_bytes(png_header(12000, 12000))
    table = pq.read_table(folder / "Pets/test.parquet")
    texts = table.column("qry_text").to_pylist()
    texts[4] = "<|image_1|>\n" + "x" * 30000
    pq.write_table(table.set_column(0, "qry_text", pa.array(texts)), folder / "Pets/test.parquet")
    return folder


def test_failed_rows_are_rejects_counted_as_misses_and_the_rest_score_as_in_a_clean_run(setup, tmp_path):
    clean = predictions(setup, evaluate(setup, write_folder(tmp_path / "clean")))
    version = evaluate(setup, broken_folder(tmp_path), "eval.max_reject_rate=0.6")
    artifact = ArtifactStore(str(setup[0])).get(version)
    rejects = [json.loads(line) for line in artifact.read_bytes("rejects.jsonl").decode().splitlines()]
    by_id = {r["item_id"]: r for r in rejects}
    # Pets rows 2 (image 2 is its query) and 5 (label-only candidates; its query image 5 is too large), row 4
    # (text); Shop rows whose candidates include img/2.png or img/5.png.
    assert by_id["Pets/test/2"]["field"] == "qry" and "truncated image" in by_id["Pets/test/2"]["reason"]
    assert "12000 x 12000" in by_id["Pets/test/5"]["reason"]
    assert by_id["Pets/test/4"]["reason"] == "text of 30012 characters, above eval.max_text_chars (20000)"
    shop = {i for i in range(6) if {2, 5} & {i, (i + 1) % 6, (i + 3) % 6}}
    assert {k for k in by_id if k.startswith("Shop")} == {f"Shop/test/{i}" for i in shop}
    assert all(by_id[f"Shop/test/{i}"]["field"] == "tgt" for i in shop)
    assert artifact.manifest.stats["rejects"] == len(rejects) == 3 + len(shop)
    broken = predictions(setup, version)
    for item_id, row in broken.items():
        if item_id in by_id:  # a miss: the ground truth ranked last
            assert row["gt_rank"] == (4 if item_id.startswith("Pets") else 3) and row["gt_score"] == 0.0
        else:
            assert row["gt_rank"] == clean[item_id]["gt_rank"]
            assert row["gt_score"] == pytest.approx(clean[item_id]["gt_score"], abs=1e-5)


def test_past_the_gate_the_stage_fails_in_one_line_after_writing_its_rejects(setup, tmp_path):
    folder = broken_folder(tmp_path)
    with pytest.raises(EvalRejectsError) as raised:
        evaluate(setup, folder)
    message = str(raised.value)
    assert message.startswith("eval-") and ": 7 of 12 queries rejected (58.3% > eval.max_reject_rate=1.0%)" in message
    assert "('truncated image', 3), ('image too large', 3), ('text too long', 1)" in message
    assert message.endswith("rejects.jsonl") and "\n" not in message


def _chunks(cache_root: Path) -> list[Path]:
    return sorted(cache_root.rglob("Pets-queries-*.npz"))


def test_a_forged_cache_chunk_is_detected_and_encoded_again(setup, tmp_path, monkeypatch):
    monkeypatch.setenv("RGE_CACHE", str(tmp_path / "cache"))
    root = setup[0]
    folder = write_folder(tmp_path / "data")
    version = evaluate(setup, folder)
    store = ArtifactStore(str(root))
    before = store.get(version).read_bytes("results.json")
    [chunk] = _chunks(tmp_path / "cache")
    with np.load(chunk) as data:
        forged = {name: data[name] for name in data.files}
    forged["embeddings"] = np.roll(forged["embeddings"], 1, axis=0)  # other queries' embeddings: still valid
    buffer = io.BytesIO()
    np.savez(buffer, **forged)
    chunk.write_bytes(buffer.getvalue())
    shutil.rmtree(store.path(version))  # the eval again, as after a crash before its manifest
    assert evaluate(setup, folder) == version
    stats = store.get(version).manifest.stats
    assert stats["chunks_encoded"] == 1 and store.get(version).read_bytes("results.json") == before


def test_a_repainted_image_gets_a_new_chunk_not_the_old_embedding(setup, tmp_path, monkeypatch):
    monkeypatch.setenv("RGE_CACHE", str(tmp_path / "cache"))
    folder = write_folder(tmp_path / "data")
    evaluate(setup, folder)
    [first] = _chunks(tmp_path / "cache")
    Image.new("RGB", (48, 48), (1, 2, 3)).save(folder / "img/0.png")  # same path, new pixels
    evaluate(setup, folder)
    assert len(_chunks(tmp_path / "cache")) == 2 and first.exists()
