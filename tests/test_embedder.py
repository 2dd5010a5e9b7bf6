"""The embedding API (`from rge_core import Embedder`): plain items in, L2-normalised float32 vectors out, the same
as the model core computes them item by item; batching by length changes nothing but rounding; rewrite files,
bad items and bad settings; the runnable example of docs/inference.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rge_core.config.errors import ConfigError
from rge_core.config.schema import greedy_decoding
from rge_core.embedder import Embedder, EmbedSettings, Rationale
from rge_core.embedding.locate import ModelNotFound
from rge_core.model.inputs import Query, Target
from rge_core.model.placement import PlacementError
from rge_core.model.rge_model import RGEModel
from rge_core.pipeline import run_pipeline
from tests.helpers import rge_command, small_config

DOC = Path("docs/inference.md")


@pytest.fixture(scope="module")
def lively(lively_model_dir) -> RGEModel:
    return RGEModel.load(str(lively_model_dir))


def mixed_items(tmp_path: Path) -> list[dict]:
    """Queries of different lengths, with and without an image (a PIL image or a file), placeholder or not."""
    path = tmp_path / "blue.png"
    Image.new("RGB", (84, 56), "blue").save(path)
    red = Image.new("RGB", (64, 64), "red")
    return [
        {"text": "<|image_1|>\nWhat colour is the square?", "image": red},
        {"text": "Find a photo of a blue square on a white table, taken from above in daylight."},
        {"text": "Which shape is shown here?", "image": str(path)},
        {"text": "Count the shapes.", "image": path, "id": "ignored", "label": 3},
        {"image": red},
        {"text": "blue"},
    ]


def test_importing_rge_core_and_the_embedder_pulls_no_torch():
    code = "import sys, rge_core; from rge_core import Embedder; assert 'torch' not in sys.modules; print(Embedder)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "rge_core.embedder.Embedder" in done.stdout, done.stderr


def test_vectors_are_unit_float32_and_equal_the_model_core_item_by_item(lively, tmp_path):
    items = mixed_items(tmp_path)
    embedder = Embedder(lively, EmbedSettings(greedy_decoding(6), batch_size=4))
    vectors, rationales = embedder.encode_queries(items, return_rationales=True)
    assert vectors.dtype == np.float32 and vectors.shape == (len(items), embedder.dim) == (6, 128)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert all(isinstance(r, Rationale) for r in rationales)
    assert len({r.text for r in rationales}) > 1  # the lively model writes different rationales
    # Independently, one item at a time through the model core: generate, then embed at <emb> after it.
    for k, item in enumerate(items):
        query = Query(item.get("text", ""), item.get("image"))
        generated = lively.generate_rationales([query], max_new_tokens=6)
        assert (rationales[k].text, rationales[k].num_tokens) == (generated.texts[0], generated.num_tokens[0])
        assert rationales[k].budget_hit == generated.budget_hit[0] == (generated.num_tokens[0] == 6)
        expected = lively.embed_queries([query], generated.texts).detach().numpy()[0]
        np.testing.assert_allclose(vectors[k], expected, atol=1e-5)
    candidates = embedder.encode_candidates(items)
    for k, item in enumerate(items):
        expected = lively.embed_targets([Target(item.get("text", ""), item.get("image"))]).detach().numpy()[0]
        np.testing.assert_allclose(candidates[k], expected, atol=1e-5)


def test_reasoning_off_embeds_the_query_at_once(lively, tmp_path):
    items = mixed_items(tmp_path)[:3]
    embedder = Embedder(lively, EmbedSettings(greedy_decoding(6)))
    vectors, rationales = embedder.encode_queries(items, reasoning=False, return_rationales=True)
    assert rationales == [Rationale("", False, 0)] * 3
    plain = lively.embed_queries([Query(i["text"], i.get("image")) for i in items]).detach().numpy()
    np.testing.assert_allclose(vectors, plain, atol=1e-5)
    assert not np.allclose(vectors, embedder.encode_queries(items), atol=1e-3)  # reasoning changes the vector


def test_batches_by_length_give_the_vectors_and_rationales_of_one_at_a_time(lively, tmp_path):
    items = mixed_items(tmp_path)
    batched = Embedder(lively, EmbedSettings(greedy_decoding(6), batch_size=3))
    single = Embedder(lively, EmbedSettings(greedy_decoding(6), batch_size=1))
    q_batched, r_batched = batched.encode_queries(items, return_rationales=True)
    q_single, r_single = single.encode_queries(items, return_rationales=True)
    assert r_batched == r_single
    np.testing.assert_allclose(q_batched, q_single, atol=1e-5)
    np.testing.assert_allclose(batched.encode_candidates(items), single.encode_candidates(items), atol=1e-5)
    empty = batched.encode_candidates([])
    assert empty.shape == (0, 128) and empty.dtype == np.float32


def test_the_repetition_penalty_setting_changes_the_rationales(lively, tmp_path):
    items = mixed_items(tmp_path)
    plain = Embedder(lively, EmbedSettings(greedy_decoding(8))).encode_queries(items, return_rationales=True)[1]
    penalised = Embedder(lively, EmbedSettings(greedy_decoding(8, 3.0))).encode_queries(items, return_rationales=True)[
        1
    ]
    assert [r.text for r in plain] != [r.text for r in penalised]


def test_rewrite_files_apply_by_dataset_as_in_eval(tiny_rge, tmp_path):
    rules = tmp_path / "rewrites.yaml"
    rules.write_text("PetShots:\n  original: pet\n  replacement: animal\n")
    from rge_core.data.rewrites import load_rewrites

    rewrites = load_rewrites(str(rules), "eval.candidate_rewrites")
    embedder = Embedder(tiny_rge, candidate_rewrites=rewrites)
    items = [{"text": "a red pet", "dataset": "PetShots"}, {"text": "a red pet", "dataset": "Other"}]
    got = embedder.encode_candidates(items)
    # The rules of the item's dataset, then the newline every text of a rewritten side ends with.
    expected = Embedder(tiny_rge).encode_candidates([{"text": "a red animal\n"}, {"text": "a red pet\n"}])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert not np.allclose(got[0], got[1], atol=1e-4)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"text": ""}, r"query item 1: field 'text': the item has neither text nor an image"),
        ({"text": "see <emb> here"}, r"query item 1: field 'text': contains the model's special tokens <emb>"),
        ({"text": "x", "image": 3}, r"query item 1: field 'image': expected a path, a PIL image or None, got int"),
        ({"text": 5}, r"query item 1: field 'text': expected a string or None, got int"),
        ("just a string", r"query item 1: expected a mapping with 'text' and/or 'image', got str"),
        (Target("a target"), r"query item 1: expected a mapping"),
    ],
)
def test_a_bad_item_is_named_by_its_index_and_field(tiny_rge, item, message):
    with pytest.raises(ValueError, match=message):
        Embedder(tiny_rge).encode_queries([{"text": "fine"}, item])


def test_load_takes_an_artifact_id_its_folder_or_a_checkpoint_folder_alike(tmp_path, tiny_model_dir):
    root = tmp_path / "artifacts"
    model = run_pipeline(small_config(str(root)), ["model"])["model"]
    items = [{"text": "What is shown?", "image": Image.new("RGB", (56, 56), "green")}]
    vectors = [
        Embedder.load(source, root=str(root), max_new_tokens=3).encode_queries(items)
        for source in (model, root / "model" / model, tiny_model_dir)
    ]
    np.testing.assert_array_equal(vectors[0], vectors[1])
    np.testing.assert_array_equal(vectors[0], vectors[2])  # the artifact holds the same seed-0 tiny model


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"device": "cuda:7"}, PlacementError, "model.device: cuda:7"),
        ({"max_new_tokens": 0}, ConfigError, "Embedder.load: eval.decoding.max_new_tokens"),
        ({"engine": "sglang"}, ConfigError, "Embedder.load: eval.engine"),
        ({"min_pixels": 5000, "max_pixels": 100}, ValueError, r"model.min_pixels \(5000\) exceeds"),
        ({"query_rewrites": "/no/such/file.yaml"}, ValueError, "eval.query_rewrites: /no/such/file.yaml"),
    ],
)
def test_a_bad_setting_fails_in_one_line_before_the_model_loads(tmp_path, kwargs, error, message, monkeypatch):
    monkeypatch.setattr(RGEModel, "load", lambda *a, **k: pytest.fail("the model loaded"))
    with pytest.raises(error, match=message):
        Embedder.load(tmp_path, **kwargs)


def test_an_unknown_model_is_named(tmp_path):
    with pytest.raises(ModelNotFound, match="model: no complete artifact model-0123456789ab under"):
        Embedder.load("model-0123456789ab", root=str(tmp_path))
    with pytest.raises(ModelNotFound, match=f"model: {tmp_path} is neither a model artifact"):
        Embedder.load(tmp_path)


@pytest.mark.slow
def test_the_documented_example_runs(tmp_path):
    """docs/inference.md's bash block (a tiny checkpoint) then its Python block, as written."""
    doc = DOC.read_text()
    command = re.search(r"```bash\n(rge tiny-model [^\n#]+)", doc).group(1).split()  # type: ignore[union-attr]
    module = rge_command(command[1])[:3]  # this interpreter, -m rge_core.cli.main
    subprocess.run([*module, command[1], *command[2:]], cwd=tmp_path, check=True, capture_output=True, timeout=120)
    example = re.findall(r"```python\n(.*?)```", doc, re.S)[0]
    done = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(2, 128) float32" in done.stdout
