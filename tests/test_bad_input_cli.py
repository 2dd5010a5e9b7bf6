"""Bad input on the command line: one line naming the setting or path, no traceback, nothing built."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers import rge_command


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--set", "train.steps=-5"], "train.steps: -5 is below the minimum 1"),
        (
            ["eval", "--model", "/nonexistent/model"],
            "eval.model: /nonexistent/model is neither a complete model artifact",
        ),
        (["eval", "--model", "model-0123456789ab"], "eval.model: no complete artifact model-0123456789ab"),
    ],
)
@pytest.mark.slow
def test_one_line_and_nothing_built(tmp_path, args, message):
    command = rge_command(args[0], f"run.artifacts_root={tmp_path}", extra=tuple(args[1:]))
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and message in output and "Traceback" not in output, output[-2000:]
    assert not any(p for p in tmp_path.rglob("*") if p.is_file() and ".locks" not in p.parts)
