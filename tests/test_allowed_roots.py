"""Where a run's parameters may reach: a flow run's config file, overrides and prompt set resolve under the
project, the artifacts root or the roots declared in RGE_ALLOWED_ROOTS, else one line and nothing read or
written; the CLI is checked the same way where RGE_ALLOWED_ROOTS is set and not otherwise. Prompt sets hold
no symbolic link anywhere, and an artifact copies exactly the files of the set's hash."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.rge_flow import rge
from rge_core.allowed_roots import ROOTS_ENV, OutsideAllowedRoots, allowed_roots, check_config_paths
from rge_core.artifacts.store import ArtifactStore
from rge_core.cli.main import app
from rge_core.config.loader import load_config
from rge_core.pipeline import run_pipeline
from rge_core.prompts.prompt_set import PromptSetError, load_prompt_set, set_hash
from tests.helpers import FACTS, small_config

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture
def outside(tmp_path, monkeypatch) -> Path:
    """A folder outside the project and the artifacts root, which the environment names ./rge-artifacts."""
    monkeypatch.delenv(ROOTS_ENV, raising=False)
    monkeypatch.delenv("RGE_ARTIFACTS", raising=False)
    monkeypatch.chdir(ROOT)
    assert not str(tmp_path).startswith(str(ROOT))
    return tmp_path


def test_a_flow_run_with_a_config_file_outside_the_roots_reads_nothing(outside):
    secret = outside / "shadow"
    secret.write_text("alice: $6$SECRETHASH:19000:0:99999:7:::\n")
    with pytest.raises(OutsideAllowedRoots) as raised:
        rge.fn(config=str(secret))
    message = str(raised.value)
    assert message.startswith(f"config: {secret} is outside the allowed roots (") and "SECRETHASH" not in message
    assert "\n" not in message and ROOTS_ENV in message


@pytest.mark.parametrize(
    "override",
    [
        "run.artifacts_root={outside}/anywhere",
        "data.source={outside}/data",
        "eval.data={outside}/eval",
        "model.path={outside}/checkpoint",
        "data.query_rewrites={outside}/rewrites.yaml",
        "curation.reference={outside}/facts.parquet",
    ],
)
def test_a_flow_runs_overrides_may_not_reach_outside_and_nothing_is_written(outside, override):
    with pytest.raises(OutsideAllowedRoots, match=rf"^{override.split('=')[0]}: {outside}/\w+"):
        rge.fn(config="configs/tiny.yaml", overrides=[override.format(outside=outside)])
    assert list(outside.iterdir()) == []


def test_a_flow_runs_prompt_set_and_a_link_inside_the_project_are_followed_to_where_they_point(outside):
    shutil.copytree(ROOT / "prompts/rge-terse", outside / "my-set")
    with pytest.raises(OutsideAllowedRoots, match=r"^curation.prompt_set: "):
        rge.fn(config="configs/tiny.yaml", prompt_set=str(outside / "my-set"))
    link = ROOT / "prompts" / f"link-{os.getpid()}"
    link.symlink_to(outside / "my-set")
    try:
        with pytest.raises(OutsideAllowedRoots, match=rf"^curation.prompt_set: {outside}/my-set is outside"):
            rge.fn(config="configs/tiny.yaml", prompt_set=f"prompts/{link.name}")
    finally:
        link.unlink()


def test_declared_roots_and_the_config_files_own_artifacts_root_are_allowed(outside, monkeypatch):
    config = load_config(ROOT / "configs/tiny.yaml", [f"data.source={outside}/data", "eval.model=model-0123456789ab"])
    with pytest.raises(OutsideAllowedRoots):
        check_config_paths(config, allowed_roots())
    monkeypatch.setenv(ROOTS_ENV, f"/nonexistent{os.pathsep}{outside}")
    check_config_paths(config, allowed_roots())  # the operator declared it
    preset = outside / "preset.yaml"
    preset.write_text(f"run:\n  artifacts_root: {outside}/artifacts\n")
    monkeypatch.delenv(ROOTS_ENV)
    check_config_paths(load_config(preset), allowed_roots(f"{outside}/artifacts"))
    s3 = load_config(preset, ["run.artifacts_root=s3://bucket/rge/sub"])
    check_config_paths(s3, allowed_roots("s3://bucket/rge"))
    with pytest.raises(OutsideAllowedRoots, match="s3://bucket/rgex"):
        check_config_paths(
            load_config(preset, ["run.artifacts_root=s3://bucket/rgex"]), allowed_roots("s3://bucket/rge")
        )


def test_the_cli_is_checked_only_where_roots_are_declared(outside, monkeypatch):
    data = outside / "data"
    result = runner.invoke(app, ["ingest", "--set", f"data.source={data}"])
    assert result.exit_code == 1 and f"data.source: {data} is not a folder" in result.output
    monkeypatch.setenv(ROOTS_ENV, str(ROOT / "rge-artifacts"))
    result = runner.invoke(app, ["ingest", "--set", f"data.source={data}"])
    assert result.exit_code == 1 and f"data.source: {data} is outside the allowed roots" in result.output
    result = runner.invoke(app, ["synth", str(outside / "synth")])
    assert result.exit_code != 0 and "outside the allowed roots" in result.output
    assert list(outside.iterdir()) == []
    result = runner.invoke(app, ["data", "fetch", "mmeb-eval", str(outside / "mmeb")])
    assert result.exit_code == 2 and "DEST: " in result.output and list(outside.iterdir()) == []


def test_a_symbolic_link_anywhere_in_a_prompt_set_is_refused(tmp_path):
    folder = tmp_path / "set"
    shutil.copytree(ROOT / "prompts/rge-terse", folder)
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRETHASH\n")
    (folder / "NOTES.md").symlink_to(secret)
    with pytest.raises(PromptSetError, match=r"set/NOTES\.md: a symbolic link"):
        load_prompt_set(folder)
    (folder / "NOTES.md").unlink()
    (folder / "docs").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(PromptSetError, match=r"set/docs: a symbolic link"):
        load_prompt_set(folder)


def test_the_artifact_copies_exactly_the_files_of_the_sets_hash(tmp_path):
    folder = tmp_path / "set"
    shutil.copytree(ROOT / "prompts/rge-v1", folder)
    (folder / "NOTES.md").write_text("drafts, not part of the set\n")
    prompt_set = load_prompt_set(folder)
    root = str(tmp_path / "artifacts")
    version = run_pipeline(small_config(root, *FACTS, f"curation.prompt_set={folder}"), ["curate"])["curate"]
    artifact = ArtifactStore(root).get(version)
    copied = {
        rel.removeprefix("prompt_set/"): artifact.read_bytes(rel)
        for rel in artifact.manifest.files
        if rel.startswith("prompt_set/")
    }
    assert set_hash(copied) == prompt_set.hash == artifact.manifest.stats["prompt_set_hash"]
    assert "NOTES.md" not in copied and copied == prompt_set.files
