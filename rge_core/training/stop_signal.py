"""Stopping a trainer at a step boundary, with a checkpoint: what a preempted, cancelled or timed-out job
needs. SIGTERM is the one signal every stopper sends: Slurm (scancel, preemption, the time limit, `scontrol
requeue`: SIGTERM, then SIGKILL after KillWait / GraceTime seconds), torchrun stopping its workers, and
rge stopping its launcher. The handler only records the request; at the end of the step the ranks agree
(one all-reduce), the trainer saves that step's checkpoint and exits with STOPPED_EXIT. A save cut short by
SIGKILL leaves no checkpoint folder (they are renamed into place whole): the previous one stands. A trainer
that cannot finish (a peer died mid-collective, nobody left to send SIGKILL) ends itself after
DEADLINE_SECONDS.
"""

from __future__ import annotations

import signal

from rge_core.training.distributed import all_reduce_mean

STOPPED_EXIT = 128 + signal.SIGTERM  # what a process ended by SIGTERM reports
DEADLINE_SECONDS = 600


class StopSignal:
    def __init__(self) -> None:
        self.received = False

    def install(self) -> StopSignal:
        """Catch SIGTERM in this process (the main thread of a launched trainer)."""
        signal.signal(signal.SIGTERM, self._record)
        return self

    def _record(self, signum, frame) -> None:
        if not self.received:
            signal.alarm(DEADLINE_SECONDS)  # SIGALRM's default action ends the process
        self.received = True

    def agreed(self) -> bool:
        """True on every rank when any rank received the signal (a collective: every rank calls it)."""
        return all_reduce_mean(1.0 if self.received else 0.0) > 0
