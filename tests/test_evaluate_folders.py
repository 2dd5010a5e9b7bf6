"""The evaluate stage on any MMEB-format folder: datasets outside the 36 MMEB-V1 sets, release-format rewrite
files, distractors identical to the ground truth, and settings that are checked before any encoding."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from rge_core.artifacts.store import ArtifactStore
from rge_core.config.errors import ConfigError
from rge_core.data.rewrites import RewriteError
from rge_core.evaluation.plan import EvalSettingError
from rge_core.model.inputs import Query, Target
from rge_core.model.rge_model import RGEModel
from rge_core.pipeline import run_pipeline
from tests.helpers import small_config, write_eval_folder

NO_REASONING = ["eval.reasoning=false", "eval.batch_size=8"]
COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200), (200, 30, 200)]


def write_folder(folder: Path) -> Path:
    """Two datasets with names MMEB does not have. PetShots: image query -> text candidates, and every
    row lists its ground truth again as the last distractor. ShopQA: text query -> image candidates."""
    images = [Image.new("RGB", (64, 64), colour) for colour in COLOURS]
    labels = ["a red pet", "a green pet", "a blue pet", "a yellow pet", "a cyan pet", "a pink pet"]
    pets = {
        "qry_text": ["<|image_1|>\nRepresent the given image for classification"] * 6,
        "qry_img_path": [f"img/{i}.png" for i in range(6)],
        "tgt_text": [[labels[i], labels[(i + 1) % 6], labels[(i + 2) % 6], labels[i]] for i in range(6)],
        "tgt_img_path": [[""] * 4 for _ in range(6)],
    }
    shop = {
        "qry_text": [f"Find the product photo number {i}" for i in range(6)],
        "qry_img_path": [""] * 6,
        "tgt_text": [["<|image_1|>\nRepresent the given image."] * 3 for _ in range(6)],
        "tgt_img_path": [[f"img/{i}.png", f"img/{(i + 1) % 6}.png", f"img/{(i + 3) % 6}.png"] for i in range(6)],
    }
    return write_eval_folder(folder, images, {"PetShots": pets, "ShopQA": shop})


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval-folders")
    folder = write_folder(root / "my-eval")
    model = run_pipeline(small_config(str(root)), ["model"])["model"]
    return root, folder, model


def evaluate(setup, *extra: str) -> str:
    root, folder, model = setup
    config = small_config(str(root), f"eval.data={folder}", f"eval.model={model}", *NO_REASONING, *extra)
    return run_pipeline(config, ["evaluate"])["evaluate"]


@pytest.fixture(scope="module")
def plain(setup):
    return evaluate(setup, "eval.categories={ShopQA: retrieval}")


def results(setup, version: str) -> dict:
    return json.loads(ArtifactStore(str(setup[0])).get(version).read_bytes("results.json"))


def test_datasets_outside_mmeb_count_in_overall_and_their_category(setup, plain):
    data = results(setup, plain)
    assert {name: d["category"] for name, d in data["datasets"].items()} == {"PetShots": "other", "ShopQA": "retrieval"}
    groups = {group: g["num_datasets"] for group, g in data["aggregates"].items()}
    assert groups["overall"] == 2 and groups["other"] == 1 and groups["retrieval"] == 1
    assert groups["IND"] == groups["OOD"] == 0


def test_a_distractor_identical_to_the_ground_truth_is_the_ground_truth(setup, plain, tiny_model_dir):
    """Checked against an independent encoding: the copy is left out, the other distractors must score lower."""
    _, folder, _ = setup
    data = results(setup, plain)["datasets"]["PetShots"]
    assert data["gt_copy_rows"] == 6
    rge = RGEModel.load(str(tiny_model_dir))
    rows = pq.read_table(folder / "PetShots" / "test.parquet").to_pylist()
    hits = 0
    with torch.no_grad():
        for row in rows:
            query = rge.embed_queries([Query(row["qry_text"], folder / row["qry_img_path"])])[0]
            scores = rge.embed_targets([Target(text) for text in row["tgt_text"]]) @ query
            assert scores[3] == scores[0]  # the copy encodes identically: a tie that used to count as a miss
            hits += bool((scores[0] > scores[1:3]).all())
    assert data["metrics"]["precision@1"] == pytest.approx(hits / len(rows)) and hits > 0
    stats = ArtifactStore(str(setup[0])).get(plain).manifest.stats
    assert stats["gt_copy_rows"] == {"PetShots": 6}


def test_release_format_rewrites_give_a_new_version_other_scores_and_a_record(setup, plain, tmp_path):
    queries = tmp_path / "queries.yaml"
    queries.write_text(
        'PetShots:\n  original: "for classification"\n  replacement: "by the colour of the pet"\n'
        'ShopQA:\n  prefix_add: "Shopping: "\n',
        encoding="utf-8",
    )
    candidates = tmp_path / "candidates.yaml"
    candidates.write_text('PetShots:\n  prefix_add: "Summarise in one word: "\n', encoding="utf-8")
    rewritten = evaluate(
        setup,
        "eval.categories={ShopQA: retrieval}",
        f"eval.query_rewrites={queries}",
        f"eval.candidate_rewrites={candidates}",
        f"eval.compare_to={plain}",
    )
    assert rewritten != plain
    before, after = (results(setup, v)["datasets"] for v in (plain, rewritten))
    assert [before[name]["metrics"] for name in sorted(before)] != [after[name]["metrics"] for name in sorted(after)]
    artifact = ArtifactStore(str(setup[0])).get(rewritten)
    recorded = artifact.manifest.stats["rewrites"]
    assert recorded["query"] == {
        "path": str(queries.resolve()),
        "sha256": hashlib.sha256(queries.read_bytes()).hexdigest(),
    }
    assert recorded["candidate"]["sha256"] == hashlib.sha256(candidates.read_bytes()).hexdigest()
    assert artifact.manifest.config["rewrites"] == recorded  # in the version, too
    assert artifact.manifest.stats["rewritten_texts"] == {
        "query": {"PetShots": 6, "ShopQA": 6},
        "candidate": {"PetShots": 24},
    }
    assert "not the release's instruction_replacements-eval.yaml" in artifact.read_bytes("published.md").decode()
    assert "PetShots" in artifact.read_bytes("diff.md").decode()


@pytest.mark.parametrize(
    ("extra", "error", "message"),
    [
        (["eval.datasets=[PetShots, Nope]"], EvalSettingError, r"eval.datasets: Nope not in"),
        (["eval.categories={Nope: vqa}"], EvalSettingError, r"eval.categories: Nope is not a dataset"),
        (["eval.categories={VOC2007: vqa}"], EvalSettingError, r"eval.categories: VOC2007 is an MMEB-V1 dataset"),
        (["eval.compare_to=eval-0123456789abcdef"], EvalSettingError, r"eval.compare_to: eval-0123456789abcdef is not"),
        (["eval.model=/nonexistent/checkpoint"], EvalSettingError, r"eval.model: /nonexistent/checkpoint is neither"),
        (
            ["eval.model=model-0123456789ab"],
            EvalSettingError,
            r"eval.model: no complete artifact model-0123456789ab under",
        ),
        (["eval.launch.nproc=0"], ConfigError, r"eval.launch.nproc: 0 is below the minimum 1"),
        (["eval.chunk_size=0"], ConfigError, r"eval.chunk_size: 0 is below the minimum 1"),
        (["eval.engine=tgi"], ConfigError, r"eval.engine: 'tgi' is not one of hf, vllm"),
        (["eval.launch.launcher=mpirun"], ConfigError, r"eval.launch.launcher: 'mpirun' is not one of torchrun"),
        (["eval.launch.launcher=deepspeed"], EvalSettingError, r"eval.launch.launcher: deepspeed starts trainers only"),
        (["eval.launch.hostfile=/h"], EvalSettingError, r"eval.launch.hostfile: only training's launch uses it"),
        (["eval.launch.nnodes=2"], EvalSettingError, r"eval.launch.nnodes: 2 nodes need eval.launch.launcher slurm"),
        (["eval.launch.nnodes=2", "eval.launch.launcher=slurm"], EvalSettingError, r"eval.launch.master_port: set it"),
        (["eval.vllm.gpu_memory_utilization=1.5"], ConfigError, r"eval.vllm.gpu_memory_utilization: 1.5 is above"),
        (["model.attn_implementation=flash"], ConfigError, r"model.attn_implementation: 'flash' is not one of"),
    ],
)
def test_bad_settings_fail_before_any_model_is_loaded(setup, monkeypatch, extra, error, message):
    monkeypatch.setattr(RGEModel, "load", lambda *a, **k: pytest.fail("loaded a model before checking the settings"))
    with pytest.raises(error, match=message):
        evaluate(setup, *extra)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('PetShots:\n  prefix: "x"\n', r"PetShots.*prefix"),  # unknown key
        ("PetShots:\n  prefix_add: 3\n", r"PetShots.*prefix_add"),  # not a string
        ('NoSuchSet:\n  prefix_add: "x"\n', r"NoSuchSet"),  # a dataset neither present nor in MMEB
    ],
)
def test_bad_rewrite_files_fail_naming_file_dataset_and_key(setup, monkeypatch, tmp_path, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    monkeypatch.setattr(RGEModel, "load", lambda *a, **k: pytest.fail("loaded a model before checking the settings"))
    with pytest.raises(RewriteError, match=rf"eval.query_rewrites: {bad}.*{message}"):
        evaluate(setup, f"eval.query_rewrites={bad}")


def test_a_missing_base_model_folder_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"model.path: /nonexistent/base is not a checkpoint folder"):
        run_pipeline(small_config(str(tmp_path), "model.path=/nonexistent/base"), ["model"])


def test_new_weights_in_the_same_folder_and_a_replaced_image_make_new_versions(setup, tiny_model_dir, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    root, folder, _ = setup
    model = tmp_path / "checkpoint"
    shutil.copytree(tiny_model_dir, model)
    first = evaluate((root, folder, model))
    assert evaluate((root, folder, model)) == first  # same content: reused
    weights = load_file(str(model / "model.safetensors"))
    name = next(iter(weights))
    weights[name] = weights[name] + 0.01
    save_file(weights, str(model / "model.safetensors"), metadata={"format": "pt"})
    retrained = evaluate((root, folder, model))
    assert retrained != first
    image = next(p for p in sorted(folder.rglob("*.png")))
    Image.new("RGB", (40, 40), (1, 2, 3)).save(image)
    assert evaluate((root, folder, model)) not in (first, retrained)


def test_a_symlinked_prompt_template_is_refused(tmp_path):
    import shutil

    from rge_core.prompts.prompt_set import PromptSetError, load_prompt_set

    copied = tmp_path / "set"
    shutil.copytree("prompts/rge-terse", copied)
    template = next(copied.rglob("*.jinja"))
    outside = tmp_path / "outside.jinja"
    outside.write_text(template.read_text())
    template.unlink()
    template.symlink_to(outside)
    with pytest.raises(PromptSetError, match="a symbolic link"):
        load_prompt_set(str(copied))


def test_data_text_with_the_models_special_tokens_is_refused_with_a_count(setup, tmp_path):
    import shutil

    from rge_core.data.issues import DataError

    root, folder, model = setup
    copied = tmp_path / "eval"
    shutil.copytree(folder, copied)
    [path] = sorted(copied.glob("PetShots/*.parquet"))
    table = pq.read_table(path)
    texts = table.column("qry_text").to_pylist()
    texts[1] = texts[1] + " <emb>"
    texts[2] = "<|im_end|>" + texts[2]
    pq.write_table(table.set_column(table.schema.get_field_index("qry_text"), "qry_text", pa.array(texts)), path)
    with pytest.raises(DataError, match=r"PetShots: 2 texts \(first: row 1 qry_text has <emb>\)"):
        evaluate((root, copied, model))
