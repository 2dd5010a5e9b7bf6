"""Atomic writes for local paths and fsspec URLs.

Local files go to a temporary sibling, are fsync'ed and renamed over the target, so a reader (or a
resumed stage) sees either the old file or the complete new one, never a torn write. Object stores
(s3://, gs://, memory://) publish an object only when its upload completes, so one put is atomic there.
A write that fails on a full disk names the file it could not write (Python's own error names none).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq


def is_local(url: str) -> bool:
    return "://" not in str(url) or str(url).startswith("file://")


def local_path(url: str) -> Path:
    return Path(str(url).removeprefix("file://"))


_FULL = (errno.ENOSPC, errno.EDQUOT)
# How libraries word a full disk (Python, Rust's std::io as in safetensors, C).
DISK_FULL = re.compile(r"No space left on device|\[Errno 28\]|os error 28|\bENOSPC\b|Disk quota exceeded|\[Errno 122\]")


def _free_bytes(path: Path) -> int:
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    return shutil.disk_usage(existing).free


@contextlib.contextmanager
def naming_a_full_disk(path: str | Path) -> Iterator[None]:
    """An error writing under `path` on a full disk becomes OSError(ENOSPC, path). Python's errors name no
    path for a failed write, and the libraries that write checkpoints report a full disk in their own words
    (torch.save: RuntimeError "file write failed"; safetensors: SafetensorError "... os error 28")."""
    try:
        yield
    except OSError as error:
        if error.errno in _FULL and error.filename is None:  # the same error, with the path
            raise OSError(error.errno, os.strerror(error.errno), str(path)) from None
        raise
    except Exception as error:
        if DISK_FULL.search(str(error)) or _free_bytes(Path(path)) < 1 << 20:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from error
        raise


def atomic_write_bytes(url: str, data: bytes) -> None:
    if not is_local(url):
        fs, path = fsspec.core.url_to_fs(url)
        fs.makedirs(fs._parent(path), exist_ok=True)
        fs.pipe_file(path, data)
        return
    target = local_path(url)
    with naming_a_full_disk(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def atomic_write_text(url: str, text: str) -> None:
    atomic_write_bytes(url, text.encode("utf-8"))


def atomic_write_parquet(url: str, table: pa.Table) -> None:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    atomic_write_bytes(url, buffer.getvalue())


def read_bytes(url: str) -> bytes:
    with fsspec.open(url, "rb") as handle:
        return handle.read()
