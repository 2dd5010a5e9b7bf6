"""Orchestration against a real Prefect server: the suite starts `prefect server start` on loopback and
`rge serve` (every deployment of prefect.yaml), runs deployments through `prefect deployment run`, and
stops both by PID. The pipeline runs on the small synthetic benchmark with the scene facts as rationales
(the reference generator), so the test is about orchestration, not engine speed."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prefect.exceptions import ObjectNotFound

from rge_core.artifacts.store import ArtifactStore
from rge_core.launch import free_port
from tests.helpers import SMALL_SYNTH

BIN = Path(sys.executable).parent
FAST = [
    *SMALL_SYNTH,
    "curation.generator=reference",
    "curation.reference=synthetic-facts",
    "curation.prompt_set=prompts/rge-v1",
    "train.steps=2",
    "train.checkpoint_every=1",
    "eval.decoding.max_new_tokens=8",
]
PIPELINE_STAGES = {"model", "ingest", "curate", "assemble", "train", "evaluate"}


def _start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    # Own process group: stopping it also stops the flow-run subprocesses it started.
    return subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)  # Prefect's runner and server shut down cleanly on SIGINT
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_until(check, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"{what} not ready after {timeout:.0f} s; log:\n{log.read_text()[-3000:]}")


def _healthy(api: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A Prefect server and `rge serve` against it; yields (env for CLI calls, artifact root)."""
    root = tmp_path_factory.mktemp("flows")
    api = f"http://127.0.0.1:{free_port()}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(root / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",  # schedules turn into runs within seconds
        "RGE_ARTIFACTS": str(root / "artifacts"),
        # Flow runs' paths must lie under allowed roots: the tests' own folders are declared, as an operator
        # declares /data (docs/orchestration.md).
        "RGE_ALLOWED_ROOTS": str(tmp_path_factory.getbasetemp()),
    }
    port = api.rsplit(":", 1)[1].split("/")[0]
    server = _start(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", port], env, root / "server.log"
    )
    runner = None
    try:
        _wait_until(lambda: _healthy(api), 120, "prefect server", root / "server.log")
        runner = _start([str(BIN / "rge"), "serve"], env, root / "serve.log")
        _wait_until(lambda: "being served" in (root / "serve.log").read_text(), 120, "rge serve", root / "serve.log")
        yield env, root / "artifacts"
    finally:
        for process in (runner, server):
            if process is not None:
                _stop(process)


def _run_deployment(env: dict, name: str, **params) -> dict:
    """`prefect deployment run NAME --params JSON --watch`; returns the finished flow run's state and the
    markdown summaries it published (stage -> text)."""
    done = subprocess.run(
        [str(BIN / "prefect"), "deployment", "run", name, "--params", json.dumps(params), "--watch"],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    found = re.search(r"UUID: ([0-9a-f-]{36})", done.stdout)
    assert found, f"no flow run started:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return asyncio.run(_flow_run_report(env["PREFECT_API_URL"], found.group(1)))


async def _flow_run_report(api: str, run_id: str) -> dict:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with PrefectClient(api) as client:
        run = await client.read_flow_run(run_id)
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
        )
    by_key = {a.key: a for a in artifacts if a.key}
    return {
        "state": run.state.type.value,
        "message": run.state.message or "",
        "summaries": {k.removesuffix("-summary"): a.data for k, a in by_key.items() if k.endswith("-summary")},
        "keys": set(by_key),
        "tables": {k: a.data for k, a in by_key.items() if a.type == "table"},
    }


def _origins(report: dict) -> dict[str, str]:
    return {stage: "reused" if "reused:" in text else "built" for stage, text in report["summaries"].items()}


def _manifests(root: Path) -> dict[str, str]:
    return {m.id: m.created for m in ArtifactStore(str(root)).list()}


@pytest.mark.slow
def test_full_pipeline_then_a_rerun_skips_every_stage(served):
    env, artifacts = served
    first = _run_deployment(env, "rge/full-pipeline", overrides=FAST)
    assert first["state"] == "COMPLETED", first["message"]
    assert _origins(first) == {stage: "built" for stage in PIPELINE_STAGES}
    assert {"evaluate-artifact", "eval-scores", "train-progress", "curate-progress", "evaluate-progress"} <= first[
        "keys"
    ]
    assert all(key.replace("-", "").isalnum() and key == key.lower() for key in first["keys"])
    scores = json.loads(first["tables"]["eval-scores"])
    assert {row["dataset"] for row in scores} == {
        "SynthColor",
        "SynthCount",
        "SynthGround",
        "SynthI2T",
        "SynthT2I",
        "SynthVQA",
    }
    assert "Training curve" in first["summaries"]["train"]
    built = _manifests(artifacts)
    assert {m.kind for m in ArtifactStore(str(artifacts)).list()} >= {"pairs", "rationales", "dataset", "model", "eval"}

    second = _run_deployment(env, "rge/full-pipeline", overrides=FAST)
    assert second["state"] == "COMPLETED", second["message"]
    assert _origins(second) == {stage: "reused" for stage in PIPELINE_STAGES}
    assert _manifests(artifacts) == built  # nothing written, nothing rewritten
    assert not {k for k in second["keys"] if k.endswith("-progress")}  # no stage did any work


@pytest.mark.slow
def test_curation_with_a_new_prompt_set_reruns_only_curate_and_assemble(served, tmp_path):
    env, artifacts = served
    base = _run_deployment(env, "rge/curation", overrides=FAST)
    assert base["state"] == "COMPLETED", base["message"]
    before = _manifests(artifacts)
    new_set = tmp_path / "rge-v1-edited"
    shutil.copytree("prompts/rge-v1", new_set)
    manifest = new_set / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("name: rge-v1", "name: rge-v1-edited"))

    rerun = _run_deployment(env, "rge/curation", overrides=FAST, prompt_set=str(new_set))
    assert rerun["state"] == "COMPLETED", rerun["message"]
    assert _origins(rerun) == {"model": "reused", "ingest": "reused", "curate": "built", "assemble": "built"}
    after = _manifests(artifacts)
    assert {k: v for k, v in after.items() if k in before} == before
    assert sorted(k.split("-")[0] for k in set(after) - set(before)) == ["dataset", "rationales"]


@pytest.mark.slow
def test_a_failing_stage_fails_the_run_with_its_message_and_the_rerun_resumes(served):
    env, artifacts = served
    # About half the scene facts are shorter than 230 characters: curation writes every shard, then its
    # reject-rate gate fails the stage (the gate is not part of the version, so a rerun may relax it).
    strict = [*FAST, "curation.min_chars=230", "curation.max_retries=0"]
    failed = _run_deployment(env, "rge/curation", overrides=strict)
    assert failed["state"] == "FAILED"
    assert "CurationError" in failed["message"] and "curation.max_reject_rate" in failed["message"]
    assert "curate" not in failed["summaries"] and "assemble" not in failed["summaries"]
    unfinished = [d for d in artifacts.glob("rationales/*") if not (d / "manifest.json").exists()]
    shards = sorted(p for d in unfinished for p in d.rglob("*.parquet"))
    assert len(unfinished) == 1 and shards, "the failed stage lost the shards it wrote"
    written = {p: p.stat().st_mtime_ns for p in shards}

    resumed = _run_deployment(env, "rge/curation", overrides=[*strict, "curation.max_reject_rate=0.9"])
    assert resumed["state"] == "COMPLETED", resumed["message"]
    assert _origins(resumed)["curate"] == "built" and _origins(resumed)["ingest"] == "reused"
    assert {p: p.stat().st_mtime_ns for p in shards} == written  # the shards were reused, not redone
    assert "curate-progress" not in resumed["keys"]  # no shard was left to curate


def test_nightly_is_scheduled_but_shipped_paused(served):
    env, _ = served
    deployment = asyncio.run(_read_deployment(env["PREFECT_API_URL"], "rge/nightly"))
    assert [(s.schedule.cron, s.active) for s in deployment.schedules] == [("0 2 * * *", False)]
    with pytest.raises(ObjectNotFound):  # rge serve serves the `local` pool; nightly-slurm needs its worker
        asyncio.run(_read_deployment(env["PREFECT_API_URL"], "rge/nightly-slurm"))


def test_an_interval_schedule_fires_a_run_that_completes_and_goes_with_the_schedule(served):
    """The scheduler, not a user, starts this run: an interval schedule added to the served rge/nightly (what
    `prefect deployment schedule create` does) makes the server schedule a flow run, `rge serve` runs it
    to Completed with the schedule's parameters, and removing the schedule removes the runs it queued."""
    env, artifacts = served
    parameters = {"overrides": FAST, "stages": ["ingest"]}
    fired, queued_after = asyncio.run(_run_of_a_new_schedule(env["PREFECT_API_URL"], "rge/nightly", parameters))
    assert fired.auto_scheduled and fired.state.type.value == "COMPLETED", fired.state
    assert fired.parameters["stages"] == ["ingest"] and fired.parameters["overrides"] == FAST
    assert queued_after == []
    assert "pairs" in {m.kind for m in ArtifactStore(str(artifacts)).list()}
    nightly = asyncio.run(_read_deployment(env["PREFECT_API_URL"], "rge/nightly"))
    assert [(s.schedule.cron, s.active) for s in nightly.schedules] == [("0 2 * * *", False)]  # still paused


async def _run_of_a_new_schedule(api: str, name: str, parameters: dict, timeout: float = 300):
    """Add a 10-second interval schedule to deployment `name`, wait for the first flow run the scheduler
    made to end, delete the schedule; returns (that run, the runs of the deployment still Scheduled)."""
    from datetime import timedelta

    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.schedules import IntervalSchedule

    async with PrefectClient(api) as client:
        deployment = await client.read_deployment_by_name(name)
        of_deployment = DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
        every_10_s = IntervalSchedule(interval=timedelta(seconds=10))
        [schedule] = await client.create_deployment_schedules(
            deployment.id, [DeploymentScheduleCreate(schedule=every_10_s, parameters=parameters, max_scheduled_runs=1)]
        )
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                runs = await client.read_flow_runs(deployment_filter=of_deployment)
                ended = [r for r in runs if r.auto_scheduled and r.state is not None and r.state.is_final()]
                if ended:
                    break
                await asyncio.sleep(2)
            else:
                raise AssertionError(f"no scheduled run of {name} ended within {timeout:.0f} s: {runs}")
        finally:
            await client.delete_deployment_schedule(deployment.id, schedule.id)
        runs = await client.read_flow_runs(deployment_filter=of_deployment)
    return ended[0], [r for r in runs if r.state is not None and r.state.is_scheduled()]


async def _read_deployment(api: str, name: str):
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(api) as client:
        return await client.read_deployment_by_name(name)


@pytest.mark.slow
def test_prefect_deploy_registers_every_deployment_for_its_pool(served):
    """The worker route of prefect.yaml. Last in this module: it re-registers the served deployments
    for the `local` pool, after which runs would wait for a worker."""
    env, _ = served
    prefect = str(BIN / "prefect")
    for pool in ("local", "slurm"):
        subprocess.run(
            [prefect, "work-pool", "create", pool, "--type", "process"], env=env, check=True, capture_output=True
        )
    done = subprocess.run(
        [prefect, "--no-prompt", "deploy", "--all"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in ("full-pipeline", "curation", "training", "evaluation", "nightly", "nightly-slurm"):
        deployment = asyncio.run(_read_deployment(env["PREFECT_API_URL"], f"rge/{name}"))
        assert deployment.work_pool_name == ("slurm" if name == "nightly-slurm" else "local")
        assert deployment.entrypoint == "flows/rge_flow.py:rge"
    curation = asyncio.run(_read_deployment(env["PREFECT_API_URL"], "rge/curation"))
    assert curation.parameters["stages"] == ["curate", "assemble"]
    assert curation.pull_steps[0]["prefect.deployments.steps.set_working_directory"]["directory"] == str(Path.cwd())
    # Each flow run of nightly-slurm is `sbatch --wait` of the checkout's job script (paths resolved here).
    on_slurm = asyncio.run(_read_deployment(env["PREFECT_API_URL"], "rge/nightly-slurm"))
    command = on_slurm.job_variables["command"].split()
    assert command[:2] == ["sbatch", "--wait"] and command[-1] == str(Path.cwd() / "slurm" / "flow-run.sbatch")
    assert {"train.launch.launcher=slurm", "eval.launch.launcher=slurm"} <= set(on_slurm.parameters["overrides"])
