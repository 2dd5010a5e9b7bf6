"""Atomic writes for local paths and fsspec URLs.

Local files go to a temporary sibling, are fsync'ed and renamed over the target, so a reader (or a
resumed stage) sees either the old file or the complete new one, never a torn write. Object stores
(s3://, gs://, memory://) publish an object only when its upload completes, so one put is atomic there.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq


def is_local(url: str) -> bool:
    return "://" not in str(url) or str(url).startswith("file://")


def local_path(url: str) -> Path:
    return Path(str(url).removeprefix("file://"))


def atomic_write_bytes(url: str, data: bytes) -> None:
    if not is_local(url):
        fs, path = fsspec.core.url_to_fs(url)
        fs.makedirs(fs._parent(path), exist_ok=True)
        fs.pipe_file(path, data)
        return
    target = local_path(url)
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
