"""`rge data fetch DATASET DEST --from SNAPSHOT`: a folder laid out as the Hub repo (what `huggingface-cli download
--local-dir` leaves on a node without internet) becomes a data folder the readers take, with no network: parquet
files copied, archives read where they are and never copied or deleted; the commit that huggingface_hub recorded
is the folder's; an archive that wraps the rows' paths in a folder of its own still lands where the rows point."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import huggingface_hub
import pytest
from typer.testing import CliRunner

from rge_core.cli.data_cmd import app
from rge_core.data import DataError, read_mmeb_eval, read_mmeb_train
from rge_core.data.fetch import STATE, fetch
from rge_core.data.hub import LocalSnapshot
from tests.conftest import zip_folder

runner = CliRunner()
COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("--from must not reach the Hub")

    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", refuse)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)


def archives(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*.zip")}


def record_commit(snapshot: Path, commit: str) -> None:
    """What huggingface_hub writes beside each file it downloads into a local dir (commit, etag, time)."""
    for path in [p for p in snapshot.rglob("*") if p.is_file() and ".cache" not in p.parts]:
        meta = snapshot / ".cache/huggingface/download" / f"{path.relative_to(snapshot).as_posix()}.metadata"
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(f"{commit}\nabc123\n1712656091.123\n")


def test_train_from_a_snapshot_reads_archives_in_place_and_records_its_commit(tmp_path, hub_snapshots):
    snapshot, dest = hub_snapshots["TIGER-Lab/MMEB-train"], tmp_path / "mmeb-train"
    record_commit(snapshot, COMMIT)
    before = archives(snapshot)
    result = runner.invoke(app, ["fetch", "mmeb-train", str(dest), "--from", str(snapshot)])
    assert result.exit_code == 0, result.output
    assert archives(snapshot) == before and archives(dest) == {}  # read in place: neither copied nor deleted
    pairs, rejects = read_mmeb_train(dest)
    assert pairs.num_rows == 5 and not rejects and (dest / "images/CIRR/q2.jpg").is_file()
    state = json.loads((dest / STATE / "state.json").read_text())
    assert state["commit"] == COMMIT and state["subsets"] == ["CIRR", "ImageNet_1K"]
    again = runner.invoke(app, ["fetch", "mmeb-train", str(dest), "--from", str(snapshot)])
    assert again.exit_code == 0 and "nothing to do" in again.output


def test_the_snapshot_may_be_the_destination_itself(tmp_path, hub_snapshots):
    snapshot = hub_snapshots["TIGER-Lab/MMEB-eval"]
    before = archives(snapshot)
    result = fetch("mmeb-eval", snapshot, hub=LocalSnapshot(snapshot))
    assert result.report is not None and result.report.ok, result.report.errors
    assert archives(snapshot) == before and read_mmeb_eval(snapshot).num_rows == 7
    assert result.commit.startswith("snapshot-")  # no huggingface_hub metadata: an id of its files
    assert fetch("mmeb-eval", snapshot, hub=LocalSnapshot(snapshot)).downloaded == 0


def test_an_archive_wrapping_the_rows_paths_in_a_folder_is_unwrapped(tmp_path, hub_snapshots):
    snapshot = hub_snapshots["TIGER-Lab/MMEB-eval"]
    staged = tmp_path / "wrapped"
    with zipfile.ZipFile(snapshot / "images.zip") as zipped:
        zipped.extractall(staged / "image-tasks")
    zip_folder(snapshot / "images.zip", staged)  # members image-tasks/VOC2007/q0.jpg, rows VOC2007/q0.jpg
    dest = tmp_path / "mmeb-eval"
    result = fetch("mmeb-eval", dest, hub=LocalSnapshot(snapshot))
    assert result.report is not None and result.report.ok, result.report.errors
    assert (dest / "VOC2007/q0.jpg").is_file() and not (dest / "image-tasks").exists()


def test_a_snapshot_of_mixed_commits_or_another_commit_than_the_folder_is_refused(tmp_path, hub_snapshots):
    snapshot, dest = hub_snapshots["TIGER-Lab/MMEB-eval"], tmp_path / "e"
    fetch("mmeb-eval", dest, ["VOC2007"], hub=LocalSnapshot(snapshot))
    record_commit(snapshot, COMMIT)
    with pytest.raises(DataError, match=rf"holds commit snapshot-\w+, the source has {COMMIT}; use another folder"):
        fetch("mmeb-eval", dest, ["MSCOCO_t2i"], hub=LocalSnapshot(snapshot))
    (snapshot / ".cache/huggingface/download/README.md.metadata").write_text("0" * 40 + "\n")
    with pytest.raises(DataError, match="mixes files of 2 commits"):
        fetch("mmeb-eval", tmp_path / "other", hub=LocalSnapshot(snapshot))
    shutil.rmtree(snapshot / ".cache")
    with pytest.raises(DataError, match="--from: .* is not a folder"):
        LocalSnapshot(tmp_path / "nowhere")
