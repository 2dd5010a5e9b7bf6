"""docker/ is checked statically here (no Docker engine on CI machines): every file the Dockerfiles copy
exists, both images install the project the documented way, and the compose file wires a PostgreSQL-backed
Prefect server, a worker serving the deployments, and the gpu pool's worker and image."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

DOCKER = Path("docker")


def _copied_paths(dockerfile: Path) -> list[str]:
    sources = []
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            sources += line.split()[1:-1]
    return sources


def test_every_copied_path_exists_and_the_install_matches_the_flavour():
    for name, extra in (("Dockerfile.cpu", '".[cpu]"'), ("Dockerfile.gpu", '".[gpu]"')):
        dockerfile = DOCKER / name
        copied = _copied_paths(dockerfile)
        assert {"pyproject.toml", "rge_core", "flows", "configs", "prompts", "prefect.yaml"} <= set(copied), name
        assert all(Path(source).exists() for source in copied), name
        assert "pip install" in dockerfile.read_text() and extra in dockerfile.read_text(), name
    cpu = (DOCKER / "Dockerfile.cpu").read_text()
    assert "rge_core.compat.torchvision_cpu" in cpu and "uninstall -y torchaudio torchcodec triton" in cpu


def test_the_build_context_leaves_out_venvs_caches_and_artifacts():
    ignored = set(Path(".dockerignore").read_text().split())
    assert {".venv", ".cache", "rge-artifacts"} <= ignored


def test_compose_wires_postgres_prefect_server_and_workers():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    database_url = services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    user, password, host, database = re.match(
        r"postgresql\+asyncpg://(\w+):(\w+)@(\w+):5432/(\w+)", database_url
    ).groups()
    postgres = services["postgres"]["environment"]
    assert (user, password, database) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )
    assert host == "postgres" and services["prefect-server"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    api = "http://prefect-server:4200/api"
    assert (
        services["worker"]["command"] == ["rge", "serve"]
        and services["worker"]["environment"]["PREFECT_API_URL"] == api
    )
    assert services["gpu-worker"]["environment"]["PREFECT_API_URL"] == api
    for service in ("worker", "gpu-image"):
        build = services[service]["build"]
        assert (DOCKER / build["context"] / build["dockerfile"]).is_file()
    gpu_pool = yaml.safe_load(Path("prefect.yaml").read_text())["definitions"]["work_pools"]["gpu"]
    assert services["gpu-image"]["image"] == gpu_pool["job_variables"]["image"]
    assert "--pool gpu" in services["gpu-worker"]["command"][-1]
