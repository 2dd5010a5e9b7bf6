"""Serve the deployments of prefect.yaml's `local` work pool from this process (no work pool, no worker):
flow runs start as subprocesses of the server-facing runner. prefect.yaml stays the one place deployments
are defined; those of other pools (`slurm`: each flow run a Slurm job) need their pool's worker.

    rge serve [--limit 1]          (or: python -m flows.serve)
"""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.rge_flow import PROJECT_ROOT, rge
from rge_core.strict_yaml import load_strict

PREFECT_YAML = PROJECT_ROOT / "prefect.yaml"
SERVED_POOL = "local"


def deployments(spec_file: Path = PREFECT_YAML) -> list[RunnerDeployment]:
    spec = load_strict(spec_file.read_text())
    built: list[RunnerDeployment] = []
    for entry in spec["deployments"]:
        if (entry.get("work_pool") or {}).get("name", SERVED_POOL) != SERVED_POOL:
            continue
        if entry["entrypoint"] != "flows/rge_flow.py:rge":
            raise ValueError(f"{spec_file}: deployment {entry['name']!r}: rge serve only serves flows/rge_flow.py:rge")
        schedules = [
            Cron(s["cron"], timezone=s.get("timezone"), active=s.get("active", True))
            for s in entry.get("schedules") or []
        ]
        built.append(
            rge.to_deployment(  # type: ignore[arg-type]  # sync_compatible: a plain value when called sync
                name=entry["name"],
                description=entry.get("description"),
                parameters=entry.get("parameters") or {},
                schedules=schedules or None,
                tags=entry.get("tags"),
            )
        )
    return built


def serve_all(limit: int | None = None) -> None:
    """Blocks until interrupted (Ctrl-C / SIGINT)."""
    serve(*deployments(), limit=limit)


if __name__ == "__main__":
    serve_all(int(sys.argv[1]) if len(sys.argv) > 1 else None)
