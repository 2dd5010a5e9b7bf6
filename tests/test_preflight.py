"""`rge run --check`: every setting, path and image root of what would run is checked in seconds without building,
fetching or loading anything, and each stage's planned artifact id is the one the run then builds."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rge_core.artifacts.store import ArtifactStore
from rge_core.cli.main import app
from rge_core.pipeline import run_pipeline
from rge_core.preflight import REUSED, TO_BUILD, check_run
from tests.helpers import small_config

runner = CliRunner()
REFERENCE = ["curation.generator=reference", "curation.reference=synthetic-facts", "curation.prompt_set=prompts/rge-v1"]
UP_TO = ["assemble"]


def test_planned_ids_are_the_ones_the_run_builds_and_then_reuses(tmp_path):
    config = small_config(str(tmp_path / "a"), *REFERENCE)
    plan = check_run(config, UP_TO)
    assert [a.stage for a in plan.artifacts] == ["ingest: benchmark", "ingest", "model", "curate", "assemble"]
    assert {a.state for a in plan.artifacts} == {TO_BUILD} and not (tmp_path / "a").exists()  # nothing built
    built = run_pipeline(config, UP_TO)
    assert [a.version for a in plan.artifacts if ":" not in a.stage] == [built[s] for s in built]
    benchmark = ArtifactStore(str(tmp_path / "a")).get(built["ingest"]).manifest.inputs["benchmark"]
    assert plan.artifacts[0].version == benchmark
    again = check_run(config, UP_TO)
    assert [a.version for a in again.artifacts] == [a.version for a in plan.artifacts]
    assert {a.state for a in again.artifacts} == {REUSED}
    changed = check_run(small_config(str(tmp_path / "a"), *REFERENCE, "assemble.seed=1"), UP_TO)
    assert [a.state for a in changed.artifacts] == [REUSED] * 4 + [TO_BUILD]


@pytest.fixture
def train_folder(tmp_path, data_write_split, data_train_columns, data_touch_images) -> Path:
    """MMEB-train as `rge data fetch` leaves it: rows name images/<subset>/..., unpacked under the folder."""
    folder = tmp_path / "mmeb-train"
    for subset in ("CIRR", "ImageNet_1K"):
        columns = data_train_columns(subset, 20, True)
        data_write_split(folder, subset, "original", columns, "shards", shards=1)
        data_touch_images(folder, columns)
    return folder


def check(*overrides: str):
    return runner.invoke(app, ["run", "--config", "configs/tiny.yaml", "--check", *overrides])


def test_an_image_root_that_doubles_images_fails_in_one_line_naming_it(tmp_path, train_folder):
    root = f"run.artifacts_root={tmp_path / 'art'}"
    started = time.monotonic()
    result = check(
        "--set", root, "--set", f"data.source={train_folder}", "--set", f"data.image_root={train_folder}/images"
    )
    assert result.exit_code == 1 and time.monotonic() - started < 30
    line = result.output.strip()
    assert len(line.splitlines()) == 1 and line.startswith("error: data.image_root: none of the ")
    assert f"(looked for {train_folder}/images/images/CIRR/q0.jpg)" in line
    assert f"they are under {train_folder}: leave data.image_root empty" in line
    assert not (tmp_path / "art").exists()
    ok = check("--set", root, "--set", f"data.source={train_folder}", "--set", "curation.prompt_set=prompts/rge-v1")
    assert ok.exit_code == 0, ok.output
    assert f"data.source: {train_folder}: 2 subsets (CIRR, ImageNet_1K)" in ok.output and "nothing built" in ok.output
    assert not (tmp_path / "art").exists()


def test_the_same_fails_the_run_itself_before_any_scan(tmp_path, train_folder):
    config = small_config(str(tmp_path / "art"), f"data.source={train_folder}", f"data.image_root={tmp_path}")
    with pytest.raises(
        ValueError, match=r"^data.image_root: none of the \d+ images named by the first 16 rows of CIRR"
    ):
        run_pipeline(config, ["ingest"])


def test_images_never_unpacked_and_a_wrong_eval_root_are_named(tmp_path, train_folder, data_eval_folder):
    for image in (train_folder / "images" / "ImageNet_1K").iterdir():
        image.unlink()
    result = check("--set", f"data.source={train_folder}", "--set", f"run.artifacts_root={tmp_path / 'a'}")
    assert "error: data.image_root: none of the" in result.output and "of ImageNet_1K is under" in result.output
    assert "unpack the images there (rge data fetch) or set data.image_root" in result.output
    stray = tmp_path / "stray"
    stray.mkdir()
    result = check("--set", f"eval.data={data_eval_folder}", "--set", f"eval.image_root={stray}")
    assert result.exit_code == 1 and result.output.startswith("error: eval.image_root: none of the")


def test_some_missing_images_are_a_note_not_an_error(tmp_path, train_folder):
    (train_folder / "images/CIRR/q1.jpg").unlink()
    result = check("--set", f"data.source={train_folder}", "--set", f"run.artifacts_root={tmp_path / 'a'}")
    assert result.exit_code == 0, result.output
    assert "note: data.source: CIRR: 1 of the " in result.output


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["curation.max_model_len=8192"], "curation.max_model_len: 8192 is above 4096, the max_position_embeddings"),
        (["model.path=/nowhere"], "model.path: /nowhere is not a checkpoint folder"),
        (["curation.prompt_set=prompts/nope"], "prompts/nope"),
        (["train.launch.hostfile=/no/hostfile"], "train.launch.hostfile: /no/hostfile is not a file"),
        (["data.source=/no/data"], "data.source: /no/data is not a folder"),
        (["eval.compare_to=eval-0123456789ab"], "eval.compare_to: eval-0123456789ab is not"),
        (["run.artifacts_root=TMP/file/rge"], "run.artifacts_root: TMP/file/rge cannot be written"),
    ],
)
def test_bad_settings_of_any_stage_fail_the_check(tmp_path, overrides, message):
    (tmp_path / "file").write_text("not a folder")
    overrides = [o.replace("TMP", str(tmp_path)) for o in overrides]
    message = message.replace("TMP", str(tmp_path))
    result = check("--set", f"run.artifacts_root={tmp_path / 'a'}", *[f"--set={o}" for o in overrides])
    assert result.exit_code == 1 and message in result.output, result.output


def test_an_hf_source_not_fetched_yet_is_planned_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("RGE_CACHE", str(tmp_path / "cache"))
    result = check("--set", "data.source=hf://TIGER-Lab/MMEB-train", "--set", f"run.artifacts_root={tmp_path / 'a'}")
    assert result.exit_code == 0, result.output
    assert "known once data.source is fetched" in result.output and "not fetched into" in result.output
    assert not (tmp_path / "cache").exists()
