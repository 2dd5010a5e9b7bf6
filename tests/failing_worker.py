"""A worker process that fails the ways a trainer, an eval shard or a curation engine does, after the kind of
chatter DeepSpeed and vLLM print first: `python -m tests.failing_worker HOW` where HOW is disk, error, memory
or kill. Under torchrun only the process of rank FAILING_RANK (default 0) fails; the others wait to be
stopped."""

from __future__ import annotations

import os
import signal
import sys
import time


def _load_row(row: int) -> None:
    raise ValueError(f"row {row} of shard 3 has no image")


def fail(how: str) -> None:
    for step in range(40):
        print(f"[INFO] engine.py:{100 + step}: step {step} memory 1.2 GB, throughput 3.4 samples/s", flush=True)
    if how == "disk":
        with open("/dev/full", "wb") as checkpoint:  # writes fail as on a full filesystem: ENOSPC
            checkpoint.write(b"weights" * 1000)
    elif how == "error":
        _load_row(7)
    elif how == "memory":
        bytearray(1 << 60)
    elif how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    if int(os.environ.get("RANK", "0")) == int(os.environ.get("FAILING_RANK", "0")):
        fail(sys.argv[1])
    else:
        time.sleep(120)
