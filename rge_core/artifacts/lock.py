"""One builder per artifact version: an exclusive lock file under the artifact root.

    lock = VersionLock.acquire(f"{root}/.locks", version_id)   # waits while another process builds it
    ...                                                       # build, then finish() writes the manifest
    lock.release()

The lock is `fcntl.flock` on `<root>/.locks/<version_id>.lock`: the kernel releases it when its holder
exits, however it exits, so a killed build never leaves a stale lock. The file is removed on release (a
waiter that then locks a removed file notices by its inode and tries again). Local roots only: fsspec
object stores (s3://, gs://) have no such lock, and there two builds of one version must not run at once.
`RGE_LOCK_TIMEOUT` (seconds, default 86400) bounds the wait. Within one process the lock is shared, not
exclusive (a retry may open a version whose failed writer is still referenced); it is freed when the last
holder releases it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time

TIMEOUT_ENV = "RGE_LOCK_TIMEOUT"
_POLL_SECONDS = 1.0


class LockTimeout(TimeoutError):
    pass


# lock file path -> [fd, holders] for the locks this process holds
_HELD: dict[str, list[int]] = {}


def _same_file(fd: int, path: str) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


class VersionLock:
    def __init__(self, path: str):
        self.path, self._held = path, True

    @classmethod
    def acquire(cls, folder: str, version_id: str) -> VersionLock:
        """Lock `version_id` (its lock file lives in `folder`), waiting while another process holds it."""
        path = os.path.join(folder, f"{version_id}.lock")
        if path in _HELD:
            _HELD[path][1] += 1
            return cls(path)
        os.makedirs(folder, exist_ok=True)
        timeout = float(os.environ.get(TIMEOUT_ENV, "86400"))
        deadline, said = time.monotonic() + timeout, False
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _same_file(fd, path):
                    _HELD[path] = [fd, 1]
                    return cls(path)
                os.close(fd)  # locked a file its holder removed on release: take the current one
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() > deadline:
                    raise LockTimeout(
                        f"{version_id}: another process has been building it for over {timeout:.0f} s "
                        f"(lock {path}; {TIMEOUT_ENV} sets the wait)"
                    ) from None
                if not said:
                    print(
                        f"waiting: {version_id} is being built by another process (lock {path})",
                        file=sys.stderr,
                        flush=True,
                    )
                    said = True
                time.sleep(_POLL_SECONDS)

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        held = _HELD[self.path]
        held[1] -= 1
        if held[1] == 0:
            del _HELD[self.path]
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)  # before unlocking, so no one locks a file about to vanish unawares
            fcntl.flock(held[0], fcntl.LOCK_UN)
            os.close(held[0])

    def __del__(self) -> None:  # a writer dropped after a failed build lets the next one in
        self.release()
