"""The tiny demo's trained model used through the public surface: P@1 recomputed from `Embedder` vectors equals
`rge eval`'s on an MMEB-format folder, with reasoning on and off; `rge export` of it loads in plain transformers,
generates, and its card holds the eval table and the lineage."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from rge_core.artifacts.store import ArtifactStore
from rge_core.config.loader import load_config
from rge_core.embedder import Embedder
from rge_core.export.export import export_model
from rge_core.pipeline import run_pipeline
from tests.helpers import TWO_PROCESS_TRAIN, small_config, write_eval_folder

pytestmark = pytest.mark.slow

EVAL = [
    "eval.decoding.max_new_tokens=8",
    "eval.batch_size=1",
]  # batch 1: vectors independent of batch company, bit for bit
COLOURS = ["red", "green", "blue", "yellow", "cyan", "magenta", "white", "black"]


def write_folder(folder: Path) -> Path:
    """Petshots: image query -> text labels, every other row listing its ground truth again as a distractor (it
    counts as the ground truth). ShopQA: text query -> image candidates, some shared between rows."""
    images = [Image.new("RGB", (56 + 14 * (index % 3), 56), colour) for index, colour in enumerate(COLOURS)]
    labels = [f"a {colour} pet" for colour in COLOURS]
    pets = {
        "qry_text": ["<|image_1|>\nRepresent the given image for classification"] * 8,
        "qry_img_path": [f"img/{i}.png" for i in range(8)],
        "tgt_text": [
            [labels[i], labels[(i + 1) % 8], labels[(i + 3) % 8]] + ([labels[i]] if i % 2 else []) for i in range(8)
        ],
        "tgt_img_path": [[""] * (4 if i % 2 else 3) for i in range(8)],
    }
    shop = {
        "qry_text": [f"Find the product photo number {i}, the {COLOURS[i]} one" for i in range(8)],
        "qry_img_path": [""] * 8,
        "tgt_text": [["<|image_1|>\nRepresent the given image."] * 3 for _ in range(8)],
        "tgt_img_path": [[f"img/{i}.png", f"img/{(i + 1) % 8}.png", f"img/{(i + 5) % 8}.png"] for i in range(8)],
    }
    return write_eval_folder(folder, images, {"PetShots": pets, "ShopQA": shop})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(root, the trained model artifact, the MMEB folder, {reasoning on / off, "by folder": eval artifact})."""
    root = tmp_path_factory.mktemp("demo")
    folder = write_folder(root / "my-eval")
    model = run_pipeline(small_config(str(root), *TWO_PROCESS_TRAIN), ["train"])["train"]
    evals = {}
    for reasoning in (True, False):
        config = small_config(
            str(root), f"eval.model={model}", f"eval.data={folder}", f"eval.reasoning={reasoning}", *EVAL
        )
        evals[reasoning] = run_pipeline(config, ["evaluate"])["evaluate"]
    # The same model named by its checkpoint folder: an eval of it too, for the card.
    checkpoint = f"eval.model={root / 'model' / model / 'model'}"
    config = small_config(str(root), checkpoint, f"eval.data={folder}", "eval.reasoning=false", *EVAL)
    by_folder = run_pipeline(config, ["evaluate"])["evaluate"]
    assert ArtifactStore(str(root)).get(by_folder).manifest.inputs.get("model") is None
    return root, model, folder, {**evals, "by folder": by_folder}


def independent_p1(embedder: Embedder, folder: Path, dataset: str, reasoning: bool) -> tuple[float, int, list[str]]:
    """(P@1, rows whose distractors repeat the ground truth, rationales): every row's query against its own
    candidates, read straight from the parquet file. A hit needs the ground truth (candidate 0) to score strictly
    above every distractor that is not the same item (text and image) as it."""
    rows = pq.read_table(folder / dataset / "test.parquet").to_pylist()

    def image(path: str) -> Path | None:
        return folder / path if path else None

    queries = [{"text": r["qry_text"], "image": image(r["qry_img_path"])} for r in rows]
    vectors, rationales = embedder.encode_queries(queries, reasoning=reasoning, return_rationales=True)
    hits, copies = 0, 0
    for row, query in zip(rows, vectors, strict=True):
        candidates = list(zip(row["tgt_text"], row["tgt_img_path"], strict=True))
        scores = embedder.encode_candidates([{"text": t, "image": image(i)} for t, i in candidates]) @ query
        rivals = [scores[k] for k in range(1, len(candidates)) if candidates[k] != candidates[0]]
        copies += len(rivals) < len(candidates) - 1
        hits += bool(scores[0] > max(rivals))
    return hits / len(rows), copies, [r.text for r in rationales]


@pytest.mark.parametrize("reasoning", [True, False])
def test_p1_from_embedder_vectors_equals_the_evals(trained, reasoning):
    root, model, folder, evals = trained
    artifact = ArtifactStore(str(root)).get(evals[reasoning])
    results = json.loads(artifact.read_bytes("results.json"))["datasets"]
    stored = artifact.read_table("rationales.parquet").to_pylist()
    embedder = Embedder.load(model, root=str(root), max_new_tokens=8, batch_size=1)
    for dataset in ("PetShots", "ShopQA"):
        p1, copies, rationales = independent_p1(embedder, folder, dataset, reasoning)
        assert p1 == results[dataset]["metrics"]["precision@1"], dataset
        assert copies == results[dataset]["gt_copy_rows"] == (4 if dataset == "PetShots" else 0)
        assert rationales == [r["rationale"] for r in stored if r["dataset"] == dataset]
    assert any(r["rationale"] for r in stored) == reasoning


def test_export_of_the_trained_model_loads_generates_and_its_card_holds_the_eval_table(trained, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    root, model, folder, evals = trained
    config = load_config(Path("configs/tiny.yaml"), [f"run.artifacts_root={root}", *EVAL])
    result = export_model(config, model, tmp_path / "rge-tiny")
    processor = AutoProcessor.from_pretrained(result.folder)
    loaded = AutoModelForImageTextToText.from_pretrained(result.folder).eval()
    image = Image.new("RGB", (56, 56), "red")
    text = "<|vision_start|><|image_pad|><|vision_end|>What colour is it?"
    prompt = processor.tokenizer.apply_chat_template(
        [{"role": "user", "content": text}],
        chat_template=processor.chat_template,
        add_generation_prompt=True,
        tokenize=False,
    )
    inputs = processor(text=[prompt], images=[image], return_tensors="pt")
    generated = loaded.generate(**inputs)[0, inputs["input_ids"].shape[1] :]
    assert 0 < len(generated) <= 8  # the eval's budget from generation_config.json
    store = ArtifactStore(str(root))
    card = (result.folder / "README.md").read_text()
    assert evals[False] != evals["by folder"]
    for reasoning, eval_id in evals.items():
        overall = json.loads(store.get(eval_id).read_bytes("results.json"))["aggregates"]["overall"]
        row = next(line for line in card.splitlines() if line.startswith(f"| `{eval_id}`"))
        assert f"| {100 * overall['metrics']['precision@1']:.1f} |" in row
        assert ("| on (8 tokens) |" if reasoning is True else "| off |") in row and row.endswith("| no |")
        assert "`my-eval` (folder) | 2 |" in row
    lineage = store.lineage(model)
    dataset = lineage.inputs["dataset"]
    for node in (dataset, dataset.inputs["rationales"], dataset.inputs["pairs"]):
        assert f"`{node.id}`" in card
    prompt_set = dataset.inputs["rationales"].manifest.config["prompt_set"]  # type: ignore[union-attr]
    assert f"| prompt set | `{prompt_set['name']}` | sha256 `{prompt_set['hash']}` |" in card
    assert "| method | `rge` |" in card and "| precision | `fp32` |" in card
