"""The CLI's quiet terminal: progress details reach the listeners that ask for them, the display prints a
line per stage and throttled plain progress lines off a TTY, and inside `stage_logs.quiet()` a stage's
library output (Python, raw fds, loggers, child processes) lands in its log file, not on the terminal."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from rge_core import progress, stage_logs
from rge_core.artifacts.store import ArtifactStore
from rge_core.builds import StageSpec
from rge_core.cli import progress_display
from rge_core.cli.main import app
from rge_core.cli.progress_display import StageDisplay, describe
from rge_core.stages.declaration import StageDecl
from rge_core.stages.registry import register, unregister
from tests.helpers import rge_command


def test_details_reach_only_the_listeners_that_ask_for_them() -> None:
    plain: list[tuple] = []
    detailed: list[tuple] = []
    with (
        progress.listening(lambda *args: plain.append(args)),
        progress.listening(lambda *args, **details: detailed.append((*args, details)), details=True),
    ):
        progress.report("curate", 1, 4, rows=32, rejects=1)
    progress.report("curate", 2, 4, rows=64)  # nobody listens any more
    assert plain == [("curate", 1, 4)]  # a (stage, done, total) listener, e.g. the Prefect flow's, still works
    assert detailed == [("curate", 1, 4, {"rows": 32, "rejects": 1})]


def test_details_are_described_with_rates():
    assert describe({"rows": 96, "rejects": 2}, elapsed=32.0) == "rows 96 (3.0 rows/s), rejects 2"
    assert describe({"loss": 0.41234, "samples_per_s": 5.25}, elapsed=10.0) == "loss 0.412, samples/s 5.25"
    assert describe({"dataset": "SynthVQA", "queries": 0}, elapsed=1.0) == "dataset SynthVQA, queries 0"


def test_off_a_tty_progress_is_a_plain_line_now_and_then_and_each_stage_one_line(tmp_path):
    out = io.StringIO()
    display = StageDisplay(Console(file=out, width=200), plain_every=3600)
    log = tmp_path / "rationales-abc.log"
    log.write_text("vllm says hello\n")
    with display:
        for step in range(100):
            display("train", step, 100, loss=1.0 / (step + 1))
        display.stage_done("train", "model-abc", reused=False, seconds=12.34, log=log)
        display.stage_done("ingest", "pairs-abc", reused=True, seconds=0.01, log=None)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("  train: 0/100")  # the first report, then nothing for plain_every seconds
    assert lines[1:] == [f"train     built  model-abc  12.3 s  log {log}", "ingest    reused pairs-abc  0.0 s"]


def test_the_first_report_prints_at_once_whatever_the_clock_reads(monkeypatch):
    """time.monotonic() counts from boot on Linux: on a machine up for less than plain_every seconds the first
    report must still print, and the next one plain_every seconds later."""
    clock = [5.0]  # five seconds after boot
    monkeypatch.setattr(progress_display.time, "monotonic", lambda: clock[0])
    out = io.StringIO()
    display = StageDisplay(Console(file=out, width=200), plain_every=15)
    display("eval", 0, 10)
    clock[0] += 14
    display("eval", 1, 10)
    clock[0] += 1
    display("eval", 2, 10)
    assert [line.split(",")[0] for line in out.getvalue().splitlines()] == ["  eval: 0/10", "  eval: 2/10"]


def test_a_stage_line_shows_where_its_log_is_only_when_there_is_one(tmp_path):
    out = io.StringIO()
    with StageDisplay(Console(file=out, width=200)) as display:
        display.stage_done("model", "model-abc", reused=False, seconds=1.0, log=tmp_path / "missing.log")
    assert out.getvalue() == "model     built  model-abc  1.0 s\n"


def test_the_log_file_sits_beside_the_artifact_folder(tmp_path):
    store = ArtifactStore(str(tmp_path))
    assert stage_logs.log_file(store, "pairs-0123456789ab") == tmp_path / ".logs" / "pairs-0123456789ab.log"


def test_outside_quiet_capture_changes_nothing(tmp_path, capfd):
    with stage_logs.capture(tmp_path / "stage.log"):
        print("to the terminal", flush=True)
    assert "to the terminal" in capfd.readouterr().out
    assert not (tmp_path / "stage.log").exists()


def test_a_repeated_message_is_logged_once(caplog):
    stage_logs.once_per_message("rge-test.repeats")
    stage_logs.once_per_message("rge-test.repeats")  # a second engine in the process adds no second filter
    logger = logging.getLogger("rge-test.repeats")
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            logger.warning("CPU backend doesn't allow to use torch.set_num_threads")
        logger.warning("another message")
    assert [r.getMessage() for r in caplog.records] == [
        "CPU backend doesn't allow to use torch.set_num_threads",
        "another message",
    ]


# Run in a fresh interpreter: quiet() and capture() rewire fds 1 and 2, which pytest itself captures.
_SCRIPT = textwrap.dedent(
    """
    import logging, os, subprocess, sys
    from pathlib import Path
    from rge_core import stage_logs

    logging.basicConfig(stream=sys.stderr)  # a library's handler made before the stage starts
    log = Path(sys.argv[1])
    with stage_logs.quiet() as terminal:
        terminal.write("stage line before\\n")
        with stage_logs.capture(log):
            print("python print")
            logging.getLogger("vllm").warning("a library warning")
            os.write(2, b"raw fd 2 (C++)\\n")
            subprocess.run([sys.executable, "-c", "print('child process')"], check=True)
            terminal.write("progress line\\n")
        terminal.write("stage line after\\n")
        with stage_logs.capture(log.with_name("silent.log")):
            pass
        try:
            with stage_logs.capture(log.with_name("failed.log")):
                print("the last words")
                raise ValueError("boom")
        except ValueError as error:
            terminal.write("".join(error.__notes__) + "\\n")
    print("after quiet")
    """
)


def test_inside_quiet_a_stage_writes_its_library_output_to_its_log(tmp_path):
    log = tmp_path / "rationales-abc.log"
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(log)], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.splitlines() == [
        "stage line before",
        "progress line",
        "stage line after",
        f"stage log {tmp_path / 'failed.log'}, last lines:",
        "the last words",
        "after quiet",
    ]
    assert done.stderr == ""
    assert not (tmp_path / "silent.log").exists()  # a stage that printed nothing leaves no log
    written = sorted(log.read_text().splitlines())  # stdout's buffer is flushed last
    assert written == ["WARNING:vllm:a library warning", "child process", "python print", "raw fd 2 (C++)"]


def _failing_spec(config, store, inputs):
    def build(writer):
        os.write(2, b"the engine's last words\n")  # raw fd output, as C++ code writes it
        raise ValueError("boom")

    return StageSpec("failing", {"fails": True}, {}, [], build)


@pytest.fixture
def failing_stage():
    register(StageDecl("failing", provides="nothing", spec=_failing_spec, command=""))
    yield
    unregister("failing")


def test_a_failed_stage_prints_its_log_and_last_lines(tmp_path, failing_stage):
    done = CliRunner().invoke(
        app, ["run", "--config", "configs/tiny.yaml", "--stages", "failing", "--set", f"run.artifacts_root={tmp_path}"]
    )
    assert done.exit_code == 1
    [log] = (tmp_path / ".logs").glob("failing-*.log")
    assert "error: boom" in done.output
    assert f"stage log {log}, last lines:\nthe engine's last words" in done.output


def _run_cli(root: Path, *args: str) -> list[str]:
    command = rge_command("eval", f"run.artifacts_root={root}", extra=args)
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return (done.stdout + done.stderr).splitlines()


@pytest.mark.slow
def test_the_tiny_demo_is_quiet_and_logs_the_libraries(tmp_path):
    """`make demo`'s command in a fresh root: a few dozen lines (it was 870, 781 of them one vLLM warning)."""
    lines = _run_cli(tmp_path)
    assert len(lines) <= 150, "\n".join(lines)
    line, repeats = Counter(line for line in lines if line.strip()).most_common(1)[0]  # blank lines part sections
    assert repeats <= 5, line
    built = {line.split()[0] for line in lines if re.match(r"^\w+ +built +\S+ +[\d.]+ s", line)}
    assert built == {"model", "ingest", "curate", "assemble", "train", "evaluate"}
    [rationales_log] = (tmp_path / ".logs").glob("rationales-*.log")
    engine_lines = rationales_log.read_text().splitlines()
    assert any("Resolved architecture: Qwen2VLForConditionalGeneration" in line for line in engine_lines)
    assert sum("torch.set_num_threads" in line for line in engine_lines) <= 1  # said once, not twice a request
    assert not any("Loading weights" in line for line in lines)  # transformers' bar: in the eval stage's log
    [eval_log] = (tmp_path / ".logs").glob("eval-*.log")
    assert "Loading weights" in eval_log.read_text()

    verbose = _run_cli(tmp_path, "--reasoning", "off", "-v")  # one new eval, the rest reused
    assert any("Loading weights" in line for line in verbose)
    assert len(list((tmp_path / ".logs").glob("eval-*.log"))) == 1  # -v writes no log: all went to the terminal
