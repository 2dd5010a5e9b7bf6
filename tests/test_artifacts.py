"""Versioned artifacts on a local folder and on fsspec memory://: ids, manifests, resume, lineage, CLI."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from pathlib import Path

import fsspec
import pyarrow as pa
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from typer.testing import CliRunner

from rge_core import fileio
from rge_core.artifacts import ArtifactError, ArtifactStore, code_version, versioning
from rge_core.cli import artifacts_cmd
from rge_core.config.schema import Config

CODE = "0123456789abcdef"


@pytest.fixture(autouse=True)
def clean_memory_fs():
    def clear() -> None:
        MemoryFileSystem.store.clear()
        MemoryFileSystem.pseudo_dirs[:] = [""]

    clear()
    yield
    clear()


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts") if request.param == "local" else "memory://rge-test")


def write_pairs(store: ArtifactStore, seed: int = 0):
    writer = store.open("pairs", {"seed": seed, "subsets": ["A", "B"]}, {}, CODE)
    writer.write_parquet("pairs.parquet", pa.table({"qry": ["q0", "q1"], "pos": ["p0", "p1"]}))
    writer.write_text("subsets/A.txt", "A\n")
    writer.write_bytes("blob.bin", bytes(range(256)))
    return writer, writer.finish({"rows": 2, "subsets": 2})


def test_version_id_is_content_addressed(store: ArtifactStore) -> None:
    config = {"lr": 1e-4, "nested": {"a": 1, "b": [1, 2]}}
    vid = store.version_id("train", config, {"dataset": "dataset-000000000000"}, CODE)
    assert re.fullmatch(r"train-[0-9a-f]{12}", vid)
    reordered = {"nested": {"b": [1, 2], "a": 1}, "lr": 1e-4}
    assert store.version_id("train", reordered, {"dataset": "dataset-000000000000"}, CODE) == vid
    changed = [
        store.version_id("train", {**config, "lr": 2e-4}, {"dataset": "dataset-000000000000"}, CODE),
        store.version_id(
            "train", {**config, "nested": {"a": 1, "b": [2, 1]}}, {"dataset": "dataset-000000000000"}, CODE
        ),
        store.version_id("train", config, {"dataset": "dataset-111111111111"}, CODE),
        store.version_id("train", config, {"data": "dataset-000000000000"}, CODE),
        store.version_id("train", config, {"dataset": "dataset-000000000000"}, "fedcba9876543210"),
        store.version_id("train2", config, {"dataset": "dataset-000000000000"}, CODE),
    ]
    assert vid not in changed and len(set(changed)) == len(changed)
    with pytest.raises(ValueError, match="invalid artifact kind"):
        store.version_id("Bad/Kind", config, {}, CODE)


def test_finish_writes_a_complete_verifiable_manifest(store: ArtifactStore) -> None:
    writer, manifest = write_pairs(store)
    assert store.is_complete(writer.version_id)
    assert writer.url == store.path(writer.version_id)
    assert manifest.kind == "pairs" and manifest.id == writer.version_id
    assert manifest.config == {"seed": 0, "subsets": ["A", "B"]} and manifest.inputs == {}
    assert manifest.code_version == CODE and manifest.stats == {"rows": 2, "subsets": 2}
    assert datetime.fromisoformat(manifest.created).utcoffset().total_seconds() == 0
    assert manifest.git_commit is None or re.fullmatch(r"[0-9a-f]{40}", manifest.git_commit)
    assert {"python", "pyarrow"} <= set(manifest.packages)
    assert sorted(manifest.files) == ["blob.bin", "pairs.parquet", "subsets/A.txt"]
    for rel, record in manifest.files.items():
        with fsspec.open(writer.file_url(rel), "rb") as handle:
            data = handle.read()
        assert record.sha256 == hashlib.sha256(data).hexdigest() and record.bytes == len(data)

    artifact = store.get(writer.version_id)
    assert artifact.manifest == manifest
    assert artifact.read_bytes("subsets/A.txt") == b"A\n"
    assert artifact.read_bytes("blob.bin") == bytes(range(256))
    assert artifact.read_table("pairs.parquet").column("qry").to_pylist() == ["q0", "q1"]
    on_disk = json.loads(fileio.read_bytes(f"{writer.url}/manifest.json"))
    assert on_disk["files"]["blob.bin"]["bytes"] == 256 and on_disk["id"] == writer.version_id


def test_complete_version_is_reused_and_read_only(store: ArtifactStore) -> None:
    first, manifest = write_pairs(store)
    again = store.open("pairs", {"seed": 0, "subsets": ["A", "B"]}, {}, CODE)
    assert again.exists_complete and again.version_id == first.version_id
    with pytest.raises(ArtifactError, match="read-only"):
        again.write_text("x.txt", "x")
    with pytest.raises(ArtifactError, match="read-only"):
        again.finish({})
    assert store.get(first.version_id).manifest == manifest
    other = store.open("pairs", {"seed": 1, "subsets": ["A", "B"]}, {}, CODE)
    assert not other.exists_complete and other.version_id != first.version_id


def test_manifest_is_the_last_write(store: ArtifactStore, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []
    real_write = fileio.atomic_write_bytes
    monkeypatch.setattr(fileio, "atomic_write_bytes", lambda url, data: (written.append(url), real_write(url, data)))
    write_pairs(store)
    assert len(written) == 4 and written[-1].endswith("/manifest.json")


def test_interrupted_run_is_never_trusted_then_cleaned_or_resumed(store: ArtifactStore) -> None:
    config = {"shards": 2}
    writer = store.open("rationales", config, {}, CODE)
    writer.write_text("shard-0.txt", "done")
    with pytest.raises(TypeError):  # a failure inside finish, before the manifest is published
        writer.finish({"bad": object()})
    vid = writer.version_id
    assert not store.is_complete(vid) and store.list() == []
    with pytest.raises(ArtifactError, match="incomplete"):
        store.get(vid)
    with pytest.raises(ArtifactError, match="not a complete artifact"):
        store.open("dataset", {}, {"rationales": vid}, CODE)

    resumed = store.open("rationales", config, {}, CODE, resume=True)
    assert not resumed.exists_complete and resumed.has_file("shard-0.txt") and not resumed.has_file("shard-1.txt")
    resumed.write_text("shard-1.txt", "done")
    assert sorted(resumed.finish({}).files) == ["shard-0.txt", "shard-1.txt"]

    fresh = store.open("rationales", {"shards": 3}, {}, CODE)
    fresh.write_text("shard-0.txt", "partial")
    restarted = store.open("rationales", {"shards": 3}, {}, CODE)  # resume=False: the folder is cleaned
    assert not restarted.has_file("shard-0.txt")
    restarted.write_text("shard-9.txt", "x")
    assert list(restarted.finish({}).files) == ["shard-9.txt"]


def test_invalid_file_paths_are_refused(store: ArtifactStore) -> None:
    writer = store.open("pairs", {}, {}, CODE)
    for rel in ("../escape.txt", "/abs.txt", "a//b.txt", "manifest.json"):
        with pytest.raises(ValueError, match="invalid artifact file path"):
            writer.write_text(rel, "x")
    with pytest.raises(ArtifactError, match="not an artifact version id"):
        store.get("../pairs-0123")


def build_chain(store: ArtifactStore) -> tuple[str, str, str]:
    _, pairs = write_pairs(store)
    rationales = store.open("rationales", {"prompt_set": "v1"}, {"pairs": pairs.id}, CODE)
    rationales.write_text("shard-0.jsonl", "{}\n")
    rationales.finish({"rows": 2, "valid": 2})
    dataset = store.open("dataset", {"split": 0.1}, {"pairs": pairs.id, "rationales": rationales.version_id}, CODE)
    dataset.write_text("train.jsonl", "{}\n")
    dataset.finish({"train": 1, "dev": 1})
    return pairs.id, rationales.version_id, dataset.version_id


def test_list_and_lineage_across_three_kinds(store: ArtifactStore) -> None:
    pairs, rationales, dataset = build_chain(store)
    assert [m.id for m in store.list()] == [pairs, rationales, dataset]
    assert [m.id for m in store.list("rationales")] == [rationales]
    assert store.list("checkpoint") == []

    tree = store.lineage(dataset)
    assert tree.id == dataset and set(tree.inputs) == {"pairs", "rationales"}
    assert tree.inputs["rationales"].inputs["pairs"] is tree.inputs["pairs"]  # shared ancestor, read once
    assert tree.ancestors() == [pairs, rationales]
    assert store.lineage(pairs).ancestors() == []

    # An ancestor removed from the store shows up as missing instead of breaking the lineage.
    store.fs.rm(store._dir(pairs), recursive=True)
    assert store.lineage(dataset).inputs["pairs"].manifest is None


def test_cli_list_and_show(store: ArtifactStore) -> None:
    pairs, rationales, dataset = build_chain(store)
    runner = CliRunner()
    listed = runner.invoke(artifacts_cmd.app, ["list", "--root", store.root], env={"COLUMNS": "100"})
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert max(map(len, lines)) <= 100, listed.output
    # One line per artifact: its id, and its inputs' ids cut to six hash digits.
    rows = {vid: [line for line in lines if line.lstrip().startswith(vid)] for vid in (pairs, rationales, dataset)}
    assert all(len(found) == 1 for found in rows.values()), listed.output
    assert rows[dataset][0].rstrip().endswith(f"{pairs[:-6]}, {rationales[:-6]}"), rows[dataset]
    assert "valid=2" not in listed.output  # stats only in --wide
    wide = runner.invoke(artifacts_cmd.app, ["list", "--wide", "--root", store.root], env={"COLUMNS": "200"})
    assert all(vid in wide.output for vid in (pairs, rationales, dataset)) and "valid=2" in wide.output
    assert f"pairs={pairs}" in wide.output
    only = runner.invoke(artifacts_cmd.app, ["list", "--kind", "pairs", "--root", store.root], env={"COLUMNS": "200"})
    assert pairs in only.output and dataset not in only.output

    shown = runner.invoke(artifacts_cmd.app, ["show", dataset, "--root", store.root], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    manifest_text, _, tree_text = shown.output.partition("\nlineage: ")
    assert json.loads(manifest_text)["inputs"] == {"pairs": pairs, "rationales": rationales}
    assert tree_text.startswith(dataset) and f"rationales: {rationales}" in tree_text and f"pairs: {pairs}" in tree_text

    missing = runner.invoke(artifacts_cmd.app, ["show", "pairs-ffffffffffff", "--root", store.root])
    assert missing.exit_code == 1 and "not found" in missing.output and "Traceback" not in missing.output


def test_root_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RGE_ARTIFACTS", raising=False)
    assert ArtifactStore().root == str(tmp_path / "rge-artifacts")
    monkeypatch.setenv("RGE_ARTIFACTS", str(tmp_path / "from-env"))
    assert ArtifactStore().root == str(tmp_path / "from-env")
    assert ArtifactStore.from_config(Config()).root == str(tmp_path / "from-env")
    config = Config()
    config.run.artifacts_root = "memory://from-config"
    assert ArtifactStore.from_config(config).root == "memory:///from-config"

    # The env root is where the CLI looks by default.
    write_pairs(ArtifactStore())
    listed = CliRunner().invoke(artifacts_cmd.app, ["list"], env={"COLUMNS": "200"})
    assert re.search(r"pairs-[0-9a-f]{12}", listed.output)


def test_local_writes_leave_no_temp_files(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    writer = store.open("pairs", {}, {}, CODE)
    writer.write_text("a.txt", "a")
    Path(writer.url, ".b.txt.x1y2.tmp").write_text("torn")  # what a killed write leaves behind
    resumed = store.open("pairs", {}, {}, CODE, resume=True)
    resumed.write_parquet("t.parquet", pa.table({"x": [1]}))
    assert list(resumed.finish({}).files) == ["a.txt", "t.parquet"]
    assert [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")] == []


def test_code_version_tracks_only_the_named_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = code_version(["rge_core/artifacts"])
    monkeypatch.chdir(tmp_path)  # resolved against the package, not the CWD
    assert code_version(["rge_core/artifacts"]) == real
    assert code_version(["rge_core.fileio"]) == code_version(["rge_core/fileio.py"]) != real

    monkeypatch.setattr(versioning, "PACKAGE_ROOT", tmp_path)
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("A = 1\n")
    (tmp_path / "pkg" / "sub" / "b.yaml").write_text("b: 1\n")
    (tmp_path / "other.py").write_text("X = 1\n")
    before, other = code_version(["pkg"]), code_version(["other.py"])
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "other.py").write_text("X = 2\n")
    assert code_version(["pkg"]) == before  # bytecode and unrelated code do not count
    assert code_version(["other.py"]) != other
    (tmp_path / "pkg" / "sub" / "b.yaml").write_text("b: 2\n")
    assert code_version(["pkg"]) != before
    with pytest.raises(FileNotFoundError, match="nope"):
        code_version(["nope"])


def test_a_changed_file_is_refused_on_read_naming_file_and_hashes(store: ArtifactStore) -> None:
    _, manifest = write_pairs(store)
    artifact = store.get(manifest.id)
    artifact.verify()
    assert artifact.read_bytes("blob.bin") == bytes(range(256))
    with store.fs.open(f"{store.path(manifest.id)}/blob.bin", "wb") as handle:
        handle.write(bytes(range(255)) + b"\x00")  # one byte flipped
    expected = manifest.files["blob.bin"].sha256
    with pytest.raises(ArtifactError, match=rf"{manifest.id}: blob.bin was changed .*the manifest says {expected}"):
        artifact.read_bytes("blob.bin")
    with pytest.raises(ArtifactError, match="blob.bin was changed"):
        store.open("dataset", {}, {"pairs": manifest.id}, CODE)  # a stage that would read it
    store.fs.rm(f"{store.path(manifest.id)}/subsets/A.txt")
    with pytest.raises(ArtifactError, match="subsets/A.txt is missing"):
        artifact.verify(["subsets/A.txt"])


def test_malformed_foreign_and_cyclic_manifests_are_refused(store: ArtifactStore) -> None:
    _, good = write_pairs(store)
    _, other = write_pairs(store, seed=1)
    folder = store.path(other.id)
    fileio.atomic_write_text(f"{folder}/manifest.json", "{not json")
    assert [m.id for m in store.list()] == [good.id]
    [problem] = store.problems()
    assert other.id in problem and "malformed manifest.json" in problem
    copied = json.loads(store.get(good.id).manifest.to_json())
    fileio.atomic_write_text(f"{folder}/manifest.json", json.dumps(copied))  # another artifact's manifest
    with pytest.raises(ArtifactError, match=f"{other.id}: its manifest.json names pairs {good.id}"):
        store.get(other.id)
    cyclic = {**copied, "inputs": {"self": good.id}}
    fileio.atomic_write_text(f"{store.path(good.id)}/manifest.json", json.dumps(cyclic))
    with pytest.raises(ArtifactError, match="lineage is cyclic"):
        store.lineage(good.id)
    with pytest.raises(ArtifactError, match=r"--kind '\.\.' is not an artifact kind"):
        store.list("..")


def test_cli_verify_names_the_changed_file(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    _, manifest = write_pairs(store)
    runner = CliRunner()
    ok = runner.invoke(artifacts_cmd.app, ["verify", "--root", str(tmp_path)])
    assert ok.exit_code == 0 and f"ok       {manifest.id}" in ok.output
    (Path(store.path(manifest.id)) / "subsets" / "A.txt").write_text("B\n")
    failed = runner.invoke(artifacts_cmd.app, ["verify", manifest.id, "--root", str(tmp_path)])
    assert failed.exit_code == 1 and "subsets/A.txt was changed" in failed.output


BUILD_SLOWLY = """
import sys, time
from rge_core.artifacts import ArtifactStore
writer = ArtifactStore(sys.argv[1]).open("pairs", {"seed": 0}, {}, "0123456789abcdef")
print("reused" if writer.exists_complete else "building", flush=True)
if not writer.exists_complete:
    time.sleep(float(sys.argv[2]))
    writer.write_text("by.txt", sys.argv[3])
    writer.finish({})
"""


def test_a_second_build_of_one_version_waits_then_reuses_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    def build(delay: str, name: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", BUILD_SLOWLY, str(tmp_path), delay, name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = build("4", "first")
    while not list(tmp_path.glob(".locks/pairs-*.lock")):  # the first holds the lock
        assert first.poll() is None, first.communicate()
    second = build("0", "second")
    out_first, _ = first.communicate(timeout=60)
    out_second, err_second = second.communicate(timeout=60)
    assert out_first.strip() == "building" and out_second.strip() == "reused"
    assert "is being built by another process" in err_second
    [manifest] = ArtifactStore(str(tmp_path)).list()
    assert ArtifactStore(str(tmp_path)).get(manifest.id).read_bytes("by.txt") == b"first"
    assert not list(tmp_path.glob(".locks/*"))  # released locks leave no file


def test_a_build_lock_held_too_long_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl
    import os

    store = ArtifactStore(str(tmp_path))
    version = store.version_id("pairs", {"seed": 0}, {}, CODE)
    (tmp_path / ".locks").mkdir()
    holder = os.open(tmp_path / ".locks" / f"{version}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another open file description: as another process would hold it
    monkeypatch.setenv("RGE_LOCK_TIMEOUT", "1")
    try:
        with pytest.raises(ArtifactError, match=f"{version}: another process has been building it"):
            store.open("pairs", {"seed": 0}, {}, CODE)
    finally:
        os.close(holder)
    assert not store.open("pairs", {"seed": 0}, {}, CODE).exists_complete  # free again: this one builds
