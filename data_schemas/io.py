"""The only way the project reads and writes its parquet tables: validated on both sides, written atomically."""

from __future__ import annotations

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from data_schemas.validate import validate
from rge_core.fileio import atomic_write_parquet


def write_table(url: str, table: pa.Table, schema_name: str) -> pa.Table:
    """Validate `table`, cast it to schema `schema_name` and write it atomically to `url` (path or fsspec URL).
    Returns the table as written."""
    table = validate(table, schema_name, source=str(url))
    atomic_write_parquet(str(url), table)
    return table


def read_table(url: str, schema_name: str) -> pa.Table:
    """Read a parquet file written by `write_table` (or by anyone else) and return it validated and cast."""
    with fsspec.open(str(url), "rb") as handle:
        table = pq.read_table(handle)
    return validate(table, schema_name, source=str(url))
