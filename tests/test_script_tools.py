"""The scripts that need system tools never stop silently: `make docker-test` on a machine without Docker's
tools installs them as root (as `make slurm-test` does) or names each missing one in one line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bare_path(tmp_path: Path, *tools: str) -> str:
    """A PATH with only `tools` (and what bash needs to run the scripts): every other command is missing."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("bash", "dirname", "basename", "id", *tools):
        (folder / tool).symlink_to(subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip())
    return str(folder)


def test_docker_test_without_docker_names_it_in_one_line(tmp_path):
    env = {**os.environ, "PATH": bare_path(tmp_path), "RGE_NO_INSTALL": "1"}
    result = subprocess.run(["bash", "docker/test.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout == ""
    needs = "needs docker (Debian package docker.io) to build and run the images; install it, or run as root"
    assert result.stderr == f"docker-test: {needs}\n"


def test_require_names_each_missing_tool_and_passes_present_ones(tmp_path):
    script = (
        'source scripts/require.sh; require bash bash "run"; echo ok; require debootstrap debootstrap "make a base"'
    )
    env = {**os.environ, "PATH": bare_path(tmp_path), "RGE_NO_INSTALL": "1"}
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout == "ok\n"
    assert "needs debootstrap (Debian package debootstrap) to make a base; install it, or run as root" in result.stderr
