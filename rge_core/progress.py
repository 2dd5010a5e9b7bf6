"""Progress of long stages, for whoever listens: the Prefect flow turns reports into progress artifacts, the
CLI into progress bars; without a listener (a launcher, a test) a report costs nothing. Kept free of any
orchestrator.

    progress.report("curate", shards_done, shards, rows=rows, rejects=rejects)   # details: optional numbers
    with progress.listening(bar, details=True): ...     # bar(stage, done, total, **details)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

Listener = Callable[..., None]  # (stage, done, total), plus the keyword details if it listens for them
_listeners: list[tuple[Listener, bool]] = []


def report(stage: str, done: int, total: int, **details: float | str) -> None:
    for listener, wants_details in list(_listeners):
        if wants_details:
            listener(stage, done, total, **details)
        else:
            listener(stage, done, total)


@contextmanager
def listening(listener: Listener, details: bool = False) -> Iterator[None]:
    """Call `listener` on every report meanwhile; with details=True also with the report's keyword details."""
    entry = (listener, details)
    _listeners.append(entry)
    try:
        yield
    finally:
        _listeners.remove(entry)
