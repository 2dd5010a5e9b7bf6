"""Arrow schemas of the pipeline's tables, their validation, and validated parquet IO."""

from __future__ import annotations

from data_schemas.io import read_table, write_table
from data_schemas.schemas import (
    EVAL_ITEMS,
    PAIRS,
    PREDICTIONS,
    RATIONALES,
    RULES,
    SCHEMAS,
    SCORES,
    TRAINING_EXAMPLES,
)
from data_schemas.validate import SchemaError, validate

__all__ = [
    "EVAL_ITEMS",
    "PAIRS",
    "PREDICTIONS",
    "RATIONALES",
    "RULES",
    "SCHEMAS",
    "SCORES",
    "TRAINING_EXAMPLES",
    "SchemaError",
    "read_table",
    "validate",
    "write_table",
]
