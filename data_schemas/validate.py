"""One validation entry point for every table: `validate(table, schema_name, source)`.

Checks run column-wise with pyarrow.compute (100k rows take milliseconds); only when a check fails do we
locate the first offending row, so the error names the file, the row and the field.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from data_schemas.schemas import RULES, SCHEMAS, Rules


class SchemaError(ValueError):
    """A table does not match its schema; the message names source, row and field."""


def validate(table: pa.Table, schema_name: str, source: str) -> pa.Table:
    """Check `table` against schema `schema_name` and return it cast to that schema (extra columns
    dropped). `source` (usually the file path) starts every error message."""
    if schema_name not in SCHEMAS:
        raise KeyError(f"unknown schema {schema_name!r}; known: {sorted(SCHEMAS)}")
    schema, rules = SCHEMAS[schema_name], RULES[schema_name]
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise SchemaError(f"{source}: field {missing[0]!r}: missing (schema {schema_name!r} needs {missing})")
    columns = [_typed_column(table.column(f.name), f, source) for f in schema]
    table = pa.Table.from_arrays(columns, schema=schema)
    _check_rules(table, rules, source)
    return table


def _fail(source: str, row: int, field: str, message: str) -> SchemaError:
    return SchemaError(f"{source}: row {row}: field {field!r}: {message}")


def _first(mask: pa.ChunkedArray | pa.Array) -> int:
    """Index of the first true value of a boolean mask, -1 if none."""
    return pc.index(pc.fill_null(mask, False), True).as_py()


def _compatible(actual: pa.DataType, expected: pa.DataType) -> bool:
    # Only casts that keep the meaning: string flavours, wider ints, ints into floats, list flavours.
    if pa.types.is_null(actual):
        return True
    if pa.types.is_string(expected):
        return pa.types.is_string(actual) or pa.types.is_large_string(actual) or pa.types.is_string_view(actual)
    if pa.types.is_integer(expected):
        return pa.types.is_integer(actual)
    if pa.types.is_floating(expected):
        return pa.types.is_floating(actual) or pa.types.is_integer(actual)
    if pa.types.is_boolean(expected):
        return pa.types.is_boolean(actual)
    if pa.types.is_list(expected):
        is_list = pa.types.is_list(actual) or pa.types.is_large_list(actual) or pa.types.is_fixed_size_list(actual)
        return is_list and _compatible(actual.value_type, expected.value_type)
    return actual == expected


def _typed_column(column: pa.ChunkedArray, field: pa.Field, source: str) -> pa.ChunkedArray:
    if not _compatible(column.type, field.type):
        raise SchemaError(f"{source}: field {field.name!r}: type {column.type} is not {field.type}")
    if column.null_count:
        raise _fail(source, _first(pc.is_null(column)), field.name, "null value")
    if pa.types.is_list(field.type):
        items = pc.list_flatten(column)
        if items.null_count:
            position = _first(pc.is_null(items))
            row = pc.list_parent_indices(column)[position].as_py()
            raise _fail(source, row, field.name, "null list item")
    try:
        return column.cast(field.type, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaError(f"{source}: field {field.name!r}: cannot cast {column.type} to {field.type}: {exc}") from exc


def _empty(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.equal(pc.utf8_length(column), 0)


def _check_rules(table: pa.Table, rules: Rules, source: str) -> None:
    for name in (*rules.unique, *rules.non_empty):
        row = _first(_empty(table[name]))
        if row >= 0:
            raise _fail(source, row, name, "empty string")
    for name in rules.unique:
        if pc.count_distinct(table[name]).as_py() != table.num_rows:
            raise _duplicate(table[name], name, source)
    for text, image in rules.text_or_image:
        row = _first(pc.and_(_empty(table[text]), _empty(table[image])))
        if row >= 0:
            raise _fail(source, row, text, f"neither {text!r} nor {image!r} is set")
    for reference, other in rules.parallel_lists:
        ref_len, other_len = pc.list_value_length(table[reference]), pc.list_value_length(table[other])
        row = _first(pc.equal(ref_len, 0))
        if row >= 0:
            raise _fail(source, row, reference, "empty candidate list")
        row = _first(pc.not_equal(ref_len, other_len))
        if row >= 0:
            message = f"{other_len[row].as_py()} candidates but {reference} has {ref_len[row].as_py()}"
            raise _fail(source, row, other, message)
    for name, allowed in rules.allowed.items():
        row = _first(pc.invert(pc.is_in(table[name], pa.array(sorted(allowed)))))
        if row >= 0:
            raise _fail(source, row, name, f"{table[name][row].as_py()!r} is not one of {sorted(allowed)}")


def _duplicate(column: pa.ChunkedArray, name: str, source: str) -> SchemaError:
    # Error path only: a plain scan is fine here and gives both row numbers.
    seen: dict[str, int] = {}
    for row, value in enumerate(column.to_pylist()):
        if value in seen:
            return _fail(source, row, name, f"duplicate {value!r} (first at row {seen[value]})")
        seen[value] = row
    raise AssertionError("count_distinct disagreed with a scan")
