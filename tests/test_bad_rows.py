"""Bad rows are rows, not crashes. Ingest opens every image's header (cheap: no pixels decoded unless the file
looks cut short) and rejects truncated, undecodable and over-large images (above a pixel cap derived from
model.max_pixels) and texts over data.max_text_chars, each into rejects.jsonl with file, row and field;
curation turns a row whose image or generation fails into a reject with its reason. The images are real
files: a JPEG cut short, PNG headers of 30000 x 30000 and 12000 x 12000 pixels, bytes that are no image.
(Eval: tests/test_eval_rejects.py.)"""

from __future__ import annotations

import io
import json
import struct
import time
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rge_core.artifacts.store import ArtifactStore
from rge_core.data.image_header import header_problem, pixel_cap
from rge_core.pipeline import run_pipeline
from tests.helpers import rationales, rge_command, small_config


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height (its one IDAT holds a single row: decoding would fail,
    but nothing decodes an image that large)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def jpeg(size: int = 96) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((size, size), 40).convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def png(size: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


BROKEN = {
    "images/CIRR/q0.jpg": (jpeg()[:1500], "truncated"),
    "images/CIRR/q2.jpg": (png_header(30000, 30000), "(900000000 pixels)"),
    "images/CIRR/q3.jpg": (png_header(12000, 12000), "12000 x 12000"),
    "images/CIRR/q4.jpg": (b"this is not an image at all" * 10, "not an image"),
}


def test_header_checks_are_cheap_and_say_why(tmp_path):
    cap = pixel_cap(0)
    for name, (data, reason) in BROKEN.items():
        path = tmp_path / Path(name).name
        path.write_bytes(data)
        assert reason in (header_problem(path, name, cap) or ""), name
    good = tmp_path / "good.jpg"
    good.write_bytes(jpeg(512))
    (tmp_path / "good.png").write_bytes(png(512))
    started = time.perf_counter()
    for _ in range(200):
        assert header_problem(good, "good.jpg", cap) is None
        assert header_problem(tmp_path / "good.png", "good.png", cap) is None
    assert time.perf_counter() - started < 1.0  # headers and tails only, no decoding


def test_the_pixel_cap_follows_model_max_pixels_with_headroom():
    assert pixel_cap(802_816) == 64 * 802_816  # the 3B preset's bound: up to 8x each side
    assert pixel_cap(0) == Image.MAX_IMAGE_PIXELS  # the processor's own bound: Pillow's bomb threshold
    assert pixel_cap(10**9) == Image.MAX_IMAGE_PIXELS


def _long_query(folder: Path, chars: int) -> None:
    """WebQA's row 0 asks a query of `chars` characters."""
    [shard] = sorted((folder / "WebQA/original").glob("*.parquet"))[:1]
    table = pq.read_table(shard)
    texts = table.column("qry").to_pylist()
    texts[0] = "x" * chars
    pq.write_table(table.set_column(table.schema.get_field_index("qry"), "qry", pa.array(texts)), shard)


def test_ingest_rejects_bad_images_and_long_texts_naming_file_row_and_field(tmp_path, data_train_folder):
    for name, (data, _) in BROKEN.items():
        (data_train_folder / name).write_bytes(data)
    (data_train_folder / "images/CIRR/q1.jpg").write_bytes(jpeg())  # a good JPEG
    _long_query(data_train_folder, 5_000_000)  # 5 MB of query text
    config = small_config(str(tmp_path / "artifacts"), f"data.source={data_train_folder}")
    pairs_id = run_pipeline(config, ["ingest"])["ingest"]
    artifact = ArtifactStore(config.run.artifacts_root).get(pairs_id)
    rejects = [json.loads(line) for line in artifact.read_bytes("rejects.jsonl").decode().splitlines()]
    by_id = {r["item_id"]: r for r in rejects}
    for row, (name, (_, reason)) in zip((0, 2, 3, 4), BROKEN.items(), strict=True):
        reject = by_id[f"CIRR/original/{row}"]
        assert reject["field"] == "qry_image_path" and "/CIRR/original-0000" in reject["file"]
        assert reason in reject["message"] and name in reject["message"]
    webqa = by_id["WebQA/original/0"]
    assert (webqa["field"], webqa["row"]) == ("qry", 0) and webqa["file"].endswith("/WebQA/original/part-0.parquet")
    assert webqa["message"] == "text of 5000000 characters, above data.max_text_chars (20000)"
    assert artifact.manifest.stats["rejects"] == len(rejects) == 5
    assert artifact.manifest.stats["rows"] == 4 + 5 + 3 - 5


def test_the_text_cap_is_a_setting_and_part_of_the_version(tmp_path, data_train_folder):
    _long_query(data_train_folder, 100)
    root = str(tmp_path / "artifacts")
    loose = run_pipeline(small_config(root, f"data.source={data_train_folder}"), ["ingest"])["ingest"]
    strict = run_pipeline(small_config(root, f"data.source={data_train_folder}", "data.max_text_chars=50"), ["ingest"])
    assert strict["ingest"] != loose
    assert ArtifactStore(root).get(strict["ingest"]).manifest.stats["rejects"] == 1
    assert ArtifactStore(root).get(loose).manifest.stats["rejects"] == 0


def test_curation_turns_a_pair_whose_image_broke_after_ingest_into_a_reject(tmp_path, data_train_folder):
    """An image that was fine at ingest is cut short before curation reads it (the pairs artifact names it,
    training would read it too): that pair is a reject with its reason and is never sent to the generator;
    the others are curated."""
    from rge_core.config.schema import DecodingConfig
    from rge_core.curation.shards import ShardContext, curate_pairs
    from rge_core.curation.validate import RationaleRules
    from rge_core.data.mmeb_train import read_mmeb_train
    from rge_core.generation.reference import ReferenceGenerator
    from rge_core.prompts.prompt_set import load_prompt_set

    pairs, _ = read_mmeb_train(data_train_folder)
    text = "The query shows one object on a plain background, which the answer names."
    reference = tmp_path / "reference.jsonl"
    reference.write_text(
        "".join(json.dumps({"pair_id": i, "rationale": text}) + "\n" for i in pairs["pair_id"].to_pylist())
    )
    (data_train_folder / "images/CIRR/q1.jpg").write_bytes(jpeg()[:1500])
    prompt_set = load_prompt_set("prompts/rge-v1")
    generator = ReferenceGenerator(str(reference))
    context = ShardContext(
        prompt_set,
        generator,
        DecodingConfig(),
        RationaleRules(16, 2000, prompt_set.output_regex),
        2,
        data_train_folder,
        None,
    )
    rows = {r["pair_id"]: r for r in curate_pairs(pairs.to_pylist(), context).to_pylist()}
    broken = rows["CIRR/original/1"]
    assert not broken["valid"] and broken["finish_reason"] == "error" and broken["rationale"] == ""
    assert broken["reject_reason"].startswith("image: truncated image 'images/CIRR/q1.jpg'")
    assert [pair_id for pair_id, r in rows.items() if not r["valid"]] == ["CIRR/original/1"]


@pytest.mark.slow
def test_a_query_longer_than_the_engines_context_is_a_reject_not_a_crash(tmp_path, data_train_folder):
    """vLLM refuses a 30000-character query (curation.max_model_len 1024 tokens) for the whole batch: the
    batch is retried one request at a time, that pair is a reject naming vLLM's reason, the stage passes."""
    import subprocess

    _long_query(data_train_folder, 30_000)
    root = tmp_path / "artifacts"
    command = rge_command(
        "curate",
        f"run.artifacts_root={root}",
        f"data.source={data_train_folder}",
        "data.max_text_chars=100000",  # let the query through ingest: this is curation's own check
        "curation.max_reject_rate=0.5",
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    store = ArtifactStore(str(root))
    [manifest] = store.list("rationales")
    rows = {r["pair_id"]: r for r in rationales(store, manifest.id)}
    long = rows["WebQA/original/0"]
    assert not long["valid"] and long["reject_reason"].startswith("error: VLLMValidationError: ")
    assert "maximum context length is 1024 tokens" in long["reject_reason"] and len(long["reject_reason"]) < 300
    assert len(rows) == 12 and sum(r["valid"] for r in rows.values()) >= 1
