"""The `rge` console command: the rge_core CLI plus `rge serve`, which needs Prefect and so lives here."""

from __future__ import annotations

import typer

from rge_core.cli.main import app


@app.command("serve")
def serve(limit: int | None = typer.Option(None, "--limit", help="At most this many concurrent flow runs.")) -> None:
    """Serve all deployments of prefect.yaml (rge/full-pipeline, rge/curation, ...) against the configured
    Prefect server (PREFECT_API_URL; `make server` starts a local one). Stop with Ctrl-C."""
    from flows.serve import serve_all  # Prefect imports stay out of the other commands

    serve_all(limit)


if __name__ == "__main__":
    app()
