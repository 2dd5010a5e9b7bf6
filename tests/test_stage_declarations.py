"""A stage is one declaration: adding one (here in a few lines, as an extension would) is enough for the pipeline,
`rge <stage>`, `rge run --stages` and the Prefect flow to run it; a stage that reads and provides the same role
(a filter) slots in before the stages that read it."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from rge_core.artifacts.store import ArtifactStore
from rge_core.builds import StageSpec
from rge_core.cli.main import build_app
from rge_core.curation.rationales_artifact import read_rationales
from rge_core.pipeline import plan, run_pipeline, stage_names
from rge_core.stages.declaration import StageDecl
from rge_core.stages.registry import register, unregister
from tests.helpers import small_config

REFERENCE = ["curation.generator=reference", "curation.reference=synthetic-facts", "curation.prompt_set=prompts/rge-v1"]


def stats_spec(config, store, inputs):
    def build(writer):
        rows = len(store.get(inputs["dataset"]).read_bytes("train.parquet"))
        writer.write_text("stats.json", json.dumps({"train_bytes": rows}))
        return {"train_bytes": rows}

    return StageSpec("stats", {"what": "train bytes"}, {"dataset": inputs["dataset"]}, [], build)


def documented_filter() -> dict:
    """The filter stage of docs/stages.md, run as the docs show it."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "stages.md").read_text()
    [code] = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    namespace: dict = {}
    exec(compile(code, "docs/stages.md", "exec"), namespace)
    return namespace


@pytest.fixture
def stats_stage():
    register(StageDecl("stats", provides="dataset-stats", needs=("dataset",), spec=stats_spec, help="Count bytes."))
    yield
    unregister("stats")


def test_a_declared_stage_is_in_the_pipeline_the_cli_and_run_stages(tmp_path, stats_stage):
    assert stage_names().index("stats") > stage_names().index("assemble")
    config = small_config(str(tmp_path), *REFERENCE)
    assert plan(config, ["stats"]) == ["ingest", "model", "curate", "assemble", "stats"]
    app, runner = build_app(), CliRunner()
    common = ["--config", "configs/tiny.yaml", *[f"--set={o}" for o in [f"run.artifacts_root={tmp_path}", *REFERENCE]]]
    assert "Count bytes." in runner.invoke(app, ["--help"]).output
    own = runner.invoke(app, ["stats", *common, "--set", "data.synth.train_per_subset=4"])
    assert own.exit_code == 0, own.output
    via_run = runner.invoke(app, ["run", "--stages", "stats", *common, "--set", "data.synth.train_per_subset=4"])
    assert via_run.exit_code == 0 and "reused" in via_run.output
    [stats] = ArtifactStore(str(tmp_path)).list("stats")
    assert json.loads(ArtifactStore(str(tmp_path)).get(stats.id).read_bytes("stats.json"))["train_bytes"] > 0


def test_a_filter_slots_in_before_the_stages_that_read_its_role(tmp_path):
    documented = documented_filter()
    register(documented["STAGE"])  # its section is not in the schema yet: the registry says so
    try:
        with pytest.raises(ValueError, match="stage shorten: section 'shorten' is not a section"):
            stage_names()
    finally:
        unregister("shorten")
    settings = SimpleNamespace(shorten=SimpleNamespace(max_chars=200))  # what its schema section would give

    def spec(config, store, inputs):  # versioned by this test's code: the documented module is not written here
        return dataclasses.replace(documented["shorten_spec"](settings, store, inputs), code=["tests"])

    register(dataclasses.replace(documented["STAGE"], section=None, spec=spec))
    try:
        names = stage_names()
        assert names.index("curate") < names.index("shorten") < names.index("assemble")
        results = run_pipeline(small_config(str(tmp_path), *REFERENCE), ["assemble"])
        dataset = ArtifactStore(str(tmp_path)).get(results["assemble"])
        assert dataset.manifest.inputs["rationales"] == results["shorten"] != results["curate"]
        kept = read_rationales(ArtifactStore(str(tmp_path)).get(results["shorten"])).column("rationale").to_pylist()
        every = read_rationales(ArtifactStore(str(tmp_path)).get(results["curate"])).column("rationale").to_pylist()
        assert kept == [text for text in every if len(text) <= 200] and len(kept) < len(every)
    finally:
        unregister("shorten")
    assert "shorten" not in stage_names()


@pytest.mark.slow
def test_the_flow_runs_a_declared_stage(tmp_path, stats_stage, monkeypatch):
    from prefect.testing.utilities import prefect_test_harness

    from flows.rge_flow import rge

    monkeypatch.setenv("RGE_ALLOWED_ROOTS", str(tmp_path))
    overrides = [f"run.artifacts_root={tmp_path}", *REFERENCE, "data.synth.train_per_subset=4"]
    with prefect_test_harness(server_startup_timeout=120):
        done = rge(config="configs/tiny.yaml", stages=["stats"], overrides=overrides)
    assert list(done) == ["ingest", "model", "curate", "assemble", "stats"] and done["stats"].startswith("stats-")
