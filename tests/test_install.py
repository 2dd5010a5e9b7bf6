"""The CPU flavour's environment: no CUDA-only audio/video packages that would crash transformers/vLLM."""

from __future__ import annotations

import importlib.util

import pytest
import torch


@pytest.mark.skipif("+cpu" not in torch.__version__, reason="only the CPU flavour drops these packages")
@pytest.mark.parametrize("package", ["torchaudio", "torchcodec", "triton"])
def test_cpu_flavour_has_no_cuda_only_companions(package):
    assert importlib.util.find_spec(package) is None, f"{package} is installed; `make setup` removes it"


def test_the_cli_and_its_commands_are_installed():
    from typer.testing import CliRunner

    from rge_core.cli.main import app

    output = CliRunner().invoke(app, ["--help"]).output
    for command in ("run", "ingest", "tiny-model", "synth", "data", "artifacts", "config"):
        assert command in output
