"""`rge data fetch` and hf:// sources against local folders laid out as the Hub snapshots of TIGER-Lab/MMEB-train
and MMEB-eval (real parquet, real PNGs in real zip archives). Only the two network calls of huggingface_hub are
replaced (`HfApi.dataset_info`, `snapshot_download`); the file selection uses huggingface_hub's own pattern
matching, so the allow_patterns that `rge_core.data.hub` sends are the ones tested."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
from huggingface_hub.utils import filter_repo_objects
from typer.testing import CliRunner

from rge_core.artifacts.store import ArtifactStore
from rge_core.cli.data_cmd import app
from rge_core.data import DataError, check_folder, read_mmeb_eval, read_mmeb_train
from rge_core.data.fetch import STATE, fetch
from rge_core.data.hf_source import hub_folder
from rge_core.pipeline import run_pipeline
from tests.helpers import small_config

COMMIT = "0123456789abcdef0123456789abcdef01234567"
runner = CliRunner()


@pytest.fixture
def hub(monkeypatch, hub_snapshots):
    """The Hub's two network calls served from hub_snapshots; `downloads` lists the files each call copied."""
    downloads: list[list[str]] = []

    def files(repo_id: str) -> list[str]:
        root = hub_snapshots[repo_id]
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    def dataset_info(self, repo_id, revision=None, **_):
        siblings = [SimpleNamespace(rfilename=name) for name in files(repo_id)]
        return SimpleNamespace(sha=COMMIT, siblings=siblings)

    def snapshot_download(repo_id, *, repo_type, revision, local_dir, allow_patterns):
        assert (repo_type, revision) == ("dataset", COMMIT)
        copied = []
        for name in filter_repo_objects(files(repo_id), allow_patterns=allow_patterns):
            target = Path(local_dir) / name
            if not target.exists():  # like huggingface_hub's local_dir: a complete file is not fetched again
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(hub_snapshots[repo_id] / name, target)
                copied.append(name)
        downloads.append(copied)
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", dataset_info)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return downloads


def test_train_fetch_gives_a_folder_the_readers_take_and_a_rerun_does_nothing(tmp_path, hub):
    dest = tmp_path / "mmeb-train"
    result = fetch("mmeb-train", dest)
    assert result.report is not None and result.report.ok, result.report.errors
    assert result.report.kind == "train" and result.report.images_checked and result.report.images_referenced == 5
    assert result.subsets == ["CIRR", "ImageNet_1K"] and result.commit == COMMIT
    assert sorted(hub[0]) == [
        "CIRR/diverse_instruction-00000-of-00001.parquet",
        "CIRR/original-00000-of-00001.parquet",
        "ImageNet_1K/diverse_instruction-00000-of-00001.parquet",
        "ImageNet_1K/original-00000-of-00001.parquet",
        "images_zip/CIRR.zip",
        "images_zip/ImageNet_1K.zip",
    ]
    assert (dest / "images/CIRR/q2.jpg").is_file() and not (dest / "images_zip/CIRR.zip").exists()
    pairs, rejects = read_mmeb_train(dest)  # the data folder is its own image root
    assert pairs.num_rows == 5 and not rejects

    again = fetch("mmeb-train", dest)
    assert (again.downloaded, again.report, len(hub)) == (0, None, 1)
    result = runner.invoke(app, ["fetch", "mmeb-train", str(dest)])
    assert result.exit_code == 0 and "nothing to do" in result.output and len(hub) == 1


def test_eval_fetch_through_the_cli_then_more_datasets_fetch_only_their_parquet(tmp_path, hub):
    dest = tmp_path / "mmeb-eval"
    result = runner.invoke(app, ["fetch", "mmeb-eval", str(dest), "--subsets", "VOC2007"])
    assert result.exit_code == 0, result.output
    assert "(eval)" in result.output and "OK" in result.output
    assert hub[0] == ["VOC2007/test-00000-of-00001.parquet", "images.zip"]
    assert (dest / "VOC2007/q0.jpg").is_file() and (dest / "MSCOCO_t2i/t3.jpg").is_file()  # one archive for all
    assert read_mmeb_eval(dest).num_rows == 3

    more = fetch("mmeb-eval", dest, ["MSCOCO_t2i"])
    assert hub[1] == ["MSCOCO_t2i/test-00000-of-00001.parquet"]  # images.zip is unpacked already
    assert more.subsets == ["MSCOCO_t2i", "VOC2007"] and more.report is not None and more.report.ok
    assert json.loads((dest / STATE / "state.json").read_text())["all"] is False
    assert fetch("mmeb-eval", dest, ["VOC2007", "MSCOCO_t2i"]).downloaded == 0 and len(hub) == 2


def test_an_interrupted_unpack_is_completed_by_the_rerun(tmp_path, hub, monkeypatch):
    dest, replace, calls = tmp_path / "mmeb-train", os.replace, []

    def dies_on_the_second_image(source, target):
        if "/images/" in str(target):
            calls.append(target)
            if len(calls) == 2:
                raise KeyboardInterrupt
        replace(source, target)

    monkeypatch.setattr(os, "replace", dies_on_the_second_image)
    with pytest.raises(KeyboardInterrupt):
        fetch("mmeb-train", dest, ["CIRR"])
    monkeypatch.setattr(os, "replace", replace)
    assert [p.name for p in (dest / "images/CIRR").iterdir()] == ["q0.jpg"]
    assert any((dest / STATE / "scratch").iterdir())  # the member being written when it stopped
    assert not (dest / STATE / "state.json").exists() and (dest / "images_zip/CIRR.zip").is_file()
    first_mtime = (dest / "images/CIRR/q0.jpg").stat().st_mtime_ns

    result = fetch("mmeb-train", dest, ["CIRR"])
    assert result.report is not None and result.report.ok, result.report.errors
    assert hub[1] == []  # the archive was downloaded completely before: not again
    assert (dest / "images/CIRR/q0.jpg").stat().st_mtime_ns == first_mtime  # in place already: skipped
    assert sorted(p.name for p in (dest / "images/CIRR").iterdir()) == ["q0.jpg", "q1.jpg", "q2.jpg"]
    assert not (dest / STATE / "scratch").exists() and not (dest / "images_zip/CIRR.zip").exists()


def test_unknown_subsets_fail_in_one_line_listing_the_valid_ones_before_any_download(tmp_path, hub):
    with pytest.raises(DataError, match=r"no subset Nope in TIGER-Lab/MMEB-eval; valid: MSCOCO_t2i, VOC2007$"):
        fetch("mmeb-eval", tmp_path / "x", ["VOC2007", "Nope"])
    result = runner.invoke(app, ["fetch", "mmeb-eval", str(tmp_path / "x"), "--subsets", "Nope"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1 and "valid:" in result.output
    assert hub == [] and not (tmp_path / "x").exists()


def test_a_folder_holds_one_revision(tmp_path, hub):
    fetch("mmeb-eval", tmp_path / "e", ["VOC2007"])
    with pytest.raises(DataError, match="holds TIGER-Lab/MMEB-eval@main; fetch TIGER-Lab/MMEB-eval@v2 into another"):
        fetch("mmeb-eval", tmp_path / "e", ["VOC2007"], revision="v2")


def test_offline_the_real_hub_client_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError, match=r"^cannot list TIGER-Lab/MMEB-eval@main on the Hugging Face Hub: .*offline"):
        fetch("mmeb-eval", tmp_path / "e")


def test_hf_sources_name_the_setting_when_they_name_another_repo(tmp_path):
    with pytest.raises(DataError, match=r"^eval.data: hf://TIGER-Lab/MMEB-train is not hf://TIGER-Lab/MMEB-eval"):
        hub_folder("hf://TIGER-Lab/MMEB-train", tmp_path, "mmeb-eval", None, "eval.data")


def test_hf_data_source_ingests_from_the_cache_and_is_versioned_by_commit_and_fingerprint(tmp_path, hub, monkeypatch):
    root = tmp_path / "artifacts"
    monkeypatch.setenv("RGE_CACHE", str(tmp_path / "cache"))
    config = small_config(str(root), "data.source=hf://TIGER-Lab/MMEB-train", "data.subsets=[CIRR]")
    pairs_id = run_pipeline(config, ["ingest"])["ingest"]
    folder = tmp_path / "cache/hub/TIGER-Lab--MMEB-train@main"
    assert check_folder(folder).ok and sorted(hub[0])[-1] == "images_zip/CIRR.zip"
    settings = ArtifactStore(str(root)).get(pairs_id).manifest.config
    assert settings["hub"] == f"TIGER-Lab/MMEB-train@{COMMIT}" and settings["source"] == str(folder)
    assert run_pipeline(config, ["ingest"])["ingest"] == pairs_id and len(hub) == 1  # no Hub call the second time
    (folder / "images/CIRR/q0.jpg").write_bytes((folder / "images/CIRR/q1.jpg").read_bytes() + b"\0")
    assert run_pipeline(config, ["ingest"])["ingest"] != pairs_id  # fingerprinted like any local folder


def test_a_zip_bomb_is_one_line_and_the_folder_is_never_reported_ok(tmp_path, hub, hub_snapshots):
    """An archive holding 64 MB of zeros (deflated ~1000:1) among the subset's images: refused before it writes
    anything, the fetch state does not count it as unpacked, and no check reports the folder OK."""
    bomb = hub_snapshots["TIGER-Lab/MMEB-train"] / "images_zip/CIRR.zip"
    with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("CIRR/zeros.png", bytes(64 << 20))
    dest = tmp_path / "mmeb-train"
    result = runner.invoke(app, ["fetch", "mmeb-train", str(dest), "--subsets", "CIRR"])
    assert result.exit_code == 2 and "OK" not in result.output
    [line] = result.output.strip().splitlines()[1:]  # after the one line saying what is fetched
    assert line.startswith(f"error: {dest / 'images_zip/CIRR.zip'}: member 'CIRR/zeros.png': ")
    assert "--max-ratio" in line
    state = dest / STATE / "state.json"
    assert not state.exists() or "images_zip/CIRR.zip" not in json.loads(state.read_text())["unpacked"]
    assert not (dest / "images").exists()

    # The limit is the user's: with a higher one the same archive unpacks and the folder checks OK.
    result = runner.invoke(app, ["fetch", "mmeb-train", str(dest), "--subsets", "CIRR", "--max-ratio", "5000"])
    assert result.exit_code == 0 and "OK" in result.output, result.output
    assert (dest / "images/CIRR/zeros.png").stat().st_size == 64 << 20
