"""`rge export`: a model artifact as a folder plain transformers loads and generates with (the training dtype, the
eval's decoding in generation_config.json, `<emb>`), its model card (metadata, lineage, usage that runs and gives
the Embedder's vectors) and `--push` through a stand-in for the Hub client and the real client's calls."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from rge_core.artifacts.store import ArtifactStore
from rge_core.cli.main import app
from rge_core.config.loader import load_config
from rge_core.embedder import Embedder
from rge_core.embedding.locate import ModelNotFound
from rge_core.export.export import export_model
from rge_core.export.hub import HubError, HuggingFaceModelHub
from rge_core.model.inputs import Query
from rge_core.pipeline import run_pipeline
from rge_core.strict_yaml import load_strict
from tests.helpers import small_config

DECODING = ["eval.decoding.max_new_tokens=6", "eval.decoding.repetition_penalty=1.3"]


def card_parts(folder: Path) -> tuple[dict, str, list[str]]:
    """(YAML metadata, body, python code blocks) of an export's README.md."""
    text = (folder / "README.md").read_text()
    _, metadata, body = text.split("---\n", 2)
    return load_strict(metadata), body, re.findall(r"```python\n(.*?)```", body, re.S)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, lively_model_dir) -> tuple[Path, str, str]:
    """(root, the tiny base model artifact, an artifact holding the lively checkpoint trained at precision bf16)."""
    root = tmp_path_factory.mktemp("export-root")
    tiny = run_pipeline(small_config(str(root)), ["model"])["model"]
    store = ArtifactStore(str(root))
    writer = store.open("model", {"precision": "bf16", "lively": True}, {}, code="test")
    for path in sorted(p for p in Path(lively_model_dir).iterdir() if p.is_file()):
        writer.write_bytes(path.name, path.read_bytes())
    writer.finish({"checkpoint": "", "method": "rge"})
    return root, tiny, writer.version_id


def test_the_export_loads_in_plain_transformers_in_the_training_dtype_and_decodes_as_the_eval(artifacts, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    root, _, lively = artifacts
    dest = tmp_path / "export"
    result = export_model(load_config(None, [f"run.artifacts_root={root}", *DECODING]), lively, dest)
    assert result.dtype == "bfloat16" and result.url is None
    processor = AutoProcessor.from_pretrained(dest)
    model = AutoModelForImageTextToText.from_pretrained(dest).eval()
    emb_id = processor.tokenizer.convert_tokens_to_ids("<emb>")
    config = model.generation_config
    assert model.dtype == torch.bfloat16 and emb_id != processor.tokenizer.unk_token_id
    assert (config.do_sample, config.max_new_tokens, config.repetition_penalty, config.eos_token_id) == (
        False,
        6,
        1.3,
        emb_id,
    )
    # Plain generate (no arguments: generation_config.json) writes the Embedder's rationale, and the penalty in
    # it matters: without it the lively model writes something else.
    image = Image.new("RGB", (64, 64), "red")
    embedder = Embedder.load(dest, dtype="bfloat16", max_new_tokens=6, repetition_penalty=1.3)
    user = embedder.rge.generation_prompt(Query("<|image_1|>\nWhat colour is it?", image))
    inputs = processor(text=[user], images=[image], return_tensors="pt")
    new = model.generate(**inputs)[0, inputs["input_ids"].shape[1] :].tolist()
    rationale = embedder.encode_queries(
        [{"text": "<|image_1|>\nWhat colour is it?", "image": image}], return_rationales=True
    )[1][0]
    assert processor.tokenizer.decode(new, skip_special_tokens=True) == rationale.text and len(new) == 6
    unpenalised = model.generate(**inputs, repetition_penalty=1.0)[0, inputs["input_ids"].shape[1] :].tolist()
    assert unpenalised != new


@pytest.mark.parametrize("on_budget_hit", ["append-emb", "last-token"])
def test_the_cards_usage_runs_and_plain_transformers_gives_the_embedders_vectors(artifacts, tmp_path, on_budget_hit):
    root, _, lively = artifacts
    dest = tmp_path / "export"
    overrides = [f"run.artifacts_root={root}", *DECODING, f"eval.on_budget_hit={on_budget_hit}"]
    export_model(load_config(None, overrides), lively, dest)
    metadata, body, (with_embedder, plain) = card_parts(dest)
    assert (
        f'Embedder.load("{dest}", max_new_tokens=6, repetition_penalty=1.3, on_budget_hit="{on_budget_hit}")'
        in with_embedder
    )
    exec(with_embedder, {})  # noqa: S102  (the card's own example)
    namespace: dict = {}
    exec(plain, namespace)  # noqa: S102
    embedder = Embedder.load(
        dest, dtype="bfloat16", max_new_tokens=6, repetition_penalty=1.3, on_budget_hit=on_budget_hit
    )
    image, thin = Image.new("RGB", (56, 84), "blue"), Image.new("RGB", (12, 60), "green")  # thin: stretched
    cases = (("<|image_1|>\nWhich colour?", image), ("Find the blue one.\n", None), ("a cat", image), ("x", thin))
    for text, picture in cases:
        vector, rationale = namespace["embed"](text, picture)
        ours, (theirs,) = embedder.encode_queries([{"text": text, "image": picture}], return_rationales=True)
        assert rationale == theirs.text
        np.testing.assert_allclose(vector.numpy(), ours[0], atol=1e-3)
        candidate, _ = namespace["embed"](text, picture, reasoning=False)
        np.testing.assert_allclose(
            candidate.numpy(), embedder.encode_candidates([{"text": text, "image": picture}])[0], atol=1e-3
        )
    assert metadata["library_name"] == "transformers" and metadata["pipeline_tag"] == "image-text-to-text"
    assert "rge" in metadata["tags"] and "base_model" not in metadata
    assert "weights in bfloat16" in body and lively in body


def test_the_card_of_an_untrained_base_model(artifacts, tmp_path):
    root, tiny, _ = artifacts
    config = load_config(None, [f"run.artifacts_root={root}"])
    result = export_model(config, tiny, tmp_path / "base", base_model="Qwen/Qwen2-VL-2B-Instruct")
    metadata, body, _ = card_parts(result.folder)
    assert result.dtype == "float32" and metadata["base_model"] == "Qwen/Qwen2-VL-2B-Instruct"
    assert metadata["datasets"] == [] and "it is the base model itself" in body
    assert "No eval artifact of this model" in body and "## Training settings" not in body
    assert "max_new_tokens=128" in body  # the schema's eval default, as in generation_config.json


def test_push_uploads_the_finished_folder_through_the_hub_client(artifacts, tmp_path):
    root, tiny, _ = artifacts

    class FolderHub:
        """A stand-in for the Hub: a repo is a folder."""

        def __init__(self) -> None:
            self.calls: list[tuple[str, str]] = []

        def upload(self, repo_id: str, folder: Path, commit_message: str) -> str:
            self.calls.append((repo_id, commit_message))
            shutil.copytree(folder, tmp_path / "hub" / repo_id)
            return f"https://hub.example/{repo_id}/commit/1"

    hub = FolderHub()
    config = load_config(None, [f"run.artifacts_root={root}"])
    result = export_model(config, tiny, tmp_path / "out", push="me/rge-tiny", hub=hub)
    assert result.url == "https://hub.example/me/rge-tiny/commit/1"
    assert hub.calls == [("me/rge-tiny", f"rge export of {tiny}")]
    uploaded = tmp_path / "hub" / "me" / "rge-tiny"
    assert sorted(p.name for p in uploaded.iterdir()) == sorted(p.name for p in result.folder.iterdir())
    _, body, (with_embedder, plain) = card_parts(uploaded)
    assert 'Embedder.load(snapshot_download("me/rge-tiny")' in with_embedder and 'path = "me/rge-tiny"' in plain
    assert body.startswith("\n# rge-tiny")


def test_the_real_hub_client_creates_the_repo_and_uploads_the_folder(monkeypatch, tmp_path):
    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        calls.append(("upload", kwargs["repo_id"], kwargs))
        return SimpleNamespace(commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/abc")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    url = HuggingFaceModelHub().upload("me/model", tmp_path, "a message")
    assert url == "https://huggingface.co/me/model/commit/abc"
    assert calls[0] == ("create", "me/model", {"repo_type": "model", "exist_ok": True})
    assert calls[1][2] == {
        "repo_id": "me/model",
        "folder_path": tmp_path,
        "repo_type": "model",
        "commit_message": "a message",
    }


def test_offline_the_real_hub_client_fails_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError, match=r"^cannot upload to me/model on the Hugging Face Hub: .*"):
        HuggingFaceModelHub().upload("me/model", tmp_path, "a message")


def test_bad_model_or_dest_fail_before_anything_is_written(artifacts, tmp_path, tiny_model_dir):
    root, tiny, _ = artifacts
    config = load_config(None, [f"run.artifacts_root={root}"])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="DEST: .*full exists and is not an empty folder"):
        export_model(config, tiny, tmp_path / "full")
    with pytest.raises(ModelNotFound, match="MODEL: .* is a checkpoint folder; export takes a model artifact"):
        export_model(config, str(tiny_model_dir), tmp_path / "new")
    benchmark = run_pipeline(small_config(str(root)), ["ingest"])["ingest"]
    with pytest.raises(ModelNotFound, match=f"MODEL: {benchmark} is not a model artifact \\(its kind is pairs\\)"):
        export_model(config, benchmark, tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


def test_the_command_exports_and_keeps_no_log(artifacts, tmp_path):
    root, tiny, _ = artifacts
    dest = tmp_path / "cli-export"
    done = CliRunner().invoke(app, ["export", tiny, str(dest), "--set", f"run.artifacts_root={root}"])
    assert done.exit_code == 0, done.output
    assert f"exported {tiny} to {dest} (float32)" in done.output
    assert (dest / "README.md").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["cli-export"]
    again = CliRunner().invoke(app, ["export", tiny, str(dest), "--set", f"run.artifacts_root={root}"])
    assert again.exit_code == 1 and "exists and is not an empty folder" in again.output


@pytest.mark.slow
@pytest.mark.parametrize(("precision", "dtype"), [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_the_trainer_merges_the_adapters_into_weights_of_the_training_dtype(tiny_model_dir, tmp_path, precision, dtype):
    """What an export starts from: the trained checkpoint, merged into the base loaded in train.precision."""
    from transformers import AutoModelForImageTextToText

    from rge_core.config.schema import TrainConfig
    from rge_core.model.processor import load_processor
    from rge_core.training.checkpoints import export_hf
    from rge_core.training.setup import apply_peft

    train = TrainConfig(precision=precision)
    trained = apply_peft(AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=dtype), train)
    with torch.no_grad():  # a trained adapter: B is no longer zero, so merging changes the weights
        for name, param in trained.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(0))
    export_hf(trained.state_dict(), str(tiny_model_dir), train, load_processor(str(tiny_model_dir)), tmp_path / "hf")
    saved = AutoModelForImageTextToText.from_pretrained(tmp_path / "hf")
    merged = trained.merge_and_unload()
    assert saved.dtype == dtype
    name = next(n for n, _ in merged.named_parameters() if n.endswith("layers.0.self_attn.q_proj.weight"))
    assert torch.equal(saved.state_dict()[name], merged.state_dict()[name])
