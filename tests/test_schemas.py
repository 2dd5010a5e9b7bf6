"""data_schemas: validation errors name source/row/field; validated, atomic parquet IO."""

from __future__ import annotations

import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_schemas import SCHEMAS, SchemaError, read_table, validate, write_table

ROWS = {
    "pairs": {
        "pair_id": ["VOC/original/0", "VOC/original/1"],
        "subset": ["VOC", "VOC"],
        "split": ["original"] * 2,
        "qry_text": ["<|image_1|> what?", "text only"],
        "qry_image": ["VOC/a.jpg", ""],
        "pos_text": ["dog", ""],
        "pos_image": ["", "VOC/b.jpg"],
        "neg_text": ["", "cat"],
        "neg_image": ["", ""],
    },
    "rationales": {
        "pair_id": ["VOC/original/0"],
        "subset": ["VOC"],
        "rationale": ["The image shows a dog."],
        "prompt_set": ["default"],
        "prompt_set_hash": ["ab12"],
        "template": ["cls_image"],
        "template_hash": ["cd34"],
        "generator": ["vllm:Qwen2.5-VL-72B"],
        "sampling": ['{"temperature": 0.7}'],
        "seed": [0],
        "num_tokens": [7],
        "finish_reason": ["stop"],
        "valid": [True],
        "reject_reason": [""],
    },
    "training_examples": {
        "pair_id": ["VOC/original/0"],
        "subset": ["VOC"],
        "split": ["train"],
        "qry_text": ["q"],
        "qry_image": [""],
        "rationale": ["r"],
        "pos_text": ["p"],
        "pos_image": [""],
        "neg_text": [""],
        "neg_image": [""],
    },
    "eval_items": {
        "item_id": ["VOC2007/test/0", "VOC2007/test/1"],
        "dataset": ["VOC2007"] * 2,
        "qry_text": ["q0", "q1"],
        "qry_image": ["a.jpg", ""],
        "tgt_text": [["dog", "cat"], ["x", "y"]],
        "tgt_image": [["", ""], ["b.jpg", ""]],
    },
    "scores": {
        "dataset": ["VOC2007"],
        "category": ["Classification"],
        "split": ["IND"],
        "metric": ["precision@1"],
        "value": [0.5],
        "num_queries": [1000],
    },
    "predictions": {
        "item_id": ["VOC2007/test/0", "VOC2007/test/1"],
        "dataset": ["VOC2007"] * 2,
        "gt_rank": [1, 3],
        "gt_score": [0.9, 0.1],
        "top_index": [0, 2],
        "top_score": [0.9, 0.4],
        "rationale": ["A dog; answer: dog.", ""],
        "budget_hit": [False, True],
        "rationale_check": ["right", ""],
    },
}


def table(name: str, **changes) -> pa.Table:
    return pa.table({**ROWS[name], **changes})


def test_every_schema_has_sample_rows_and_non_nullable_fields():
    assert set(SCHEMAS) == set(ROWS)
    for schema in SCHEMAS.values():
        assert not any(field.nullable for field in schema)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_write_read_roundtrip(tmp_path, name):
    path = tmp_path / "out" / f"{name}.parquet"
    written = write_table(str(path), table(name), name)
    back = read_table(str(path), name)
    assert back.schema.equals(SCHEMAS[name])
    assert back.to_pylist() == written.to_pylist() == table(name).to_pylist()


def test_write_leaves_no_temp_files_and_bad_table_writes_nothing(tmp_path):
    write_table(str(tmp_path / "pairs.parquet"), table("pairs"), "pairs")
    write_table(str(tmp_path / "pairs.parquet"), table("pairs"), "pairs")  # overwrite
    with pytest.raises(SchemaError):
        write_table(str(tmp_path / "bad.parquet"), table("pairs", pair_id=["a", "a"]), "pairs")
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.parquet"]


def test_fsspec_url_roundtrip():
    url = "memory://rge-test-schemas/eval.parquet"
    write_table(url, table("eval_items"), "eval_items")
    assert read_table(url, "eval_items").num_rows == 2


def test_validate_casts_compatible_types_and_drops_extra_columns():
    raw = pa.table(
        {
            **{
                k: pa.array(v, pa.large_string())
                for k, v in ROWS["scores"].items()
                if k in ("dataset", "category", "split", "metric")
            },
            "value": pa.array([1], pa.int32()),
            "num_queries": pa.array([3], pa.int32()),
            "extra": [1],
        }
    )
    out = validate(raw, "scores", "s.parquet")
    assert out.schema.equals(SCHEMAS["scores"]) and out.column("value").to_pylist() == [1.0]


def test_read_table_validates_foreign_files(tmp_path):
    path = tmp_path / "eval.parquet"
    pq.write_table(table("eval_items", tgt_image=[["", ""], ["b.jpg"]]), path)
    with pytest.raises(SchemaError, match=r"eval\.parquet: row 1: field 'tgt_image': 1 candidates but tgt_text has 2"):
        read_table(str(path), "eval_items")


@pytest.mark.parametrize(
    ("name", "changes", "pattern"),
    [
        ("pairs", {"pos_image": None}, r"field 'pos_image': missing"),
        ("pairs", {"qry_text": [1, 2]}, r"field 'qry_text': type int64 is not string"),
        ("scores", {"value": ["high"]}, r"field 'value': type string is not double"),
        ("pairs", {"neg_text": ["", None]}, r"row 1: field 'neg_text': null value"),
        ("eval_items", {"tgt_text": [["a", "b"], ["x", None]]}, r"row 1: field 'tgt_text': null list item"),
        ("pairs", {"pair_id": ["p0", ""]}, r"row 1: field 'pair_id': empty string"),
        ("pairs", {"pair_id": ["p0", "p0"]}, r"row 1: field 'pair_id': duplicate 'p0' \(first at row 0\)"),
        ("eval_items", {"item_id": ["x", "x"]}, r"row 1: field 'item_id': duplicate"),
        (
            "pairs",
            {"qry_text": ["q", ""], "qry_image": ["", ""]},
            r"row 1: field 'qry_text': neither 'qry_text' nor 'qry_image'",
        ),
        ("pairs", {"pos_text": ["", "p"], "pos_image": ["", ""]}, r"row 0: field 'pos_text': neither"),
        ("eval_items", {"qry_text": ["", ""], "qry_image": ["a", ""]}, r"row 1: field 'qry_text': neither"),
        (
            "eval_items",
            {"tgt_text": [["a"], []], "tgt_image": [[""], []]},
            r"row 1: field 'tgt_text': empty candidate list",
        ),
        (
            "eval_items",
            {"tgt_image": [["", ""], ["", "", ""]]},
            r"row 1: field 'tgt_image': 3 candidates but tgt_text has 2",
        ),
        ("training_examples", {"split": ["test"]}, r"row 0: field 'split': 'test' is not one of"),
        ("scores", {"split": ["ALL"]}, r"row 0: field 'split': 'ALL' is not one of \['IND', 'OOD'\]"),
        ("rationales", {"generator": [""]}, r"row 0: field 'generator': empty string"),
        ("predictions", {"rationale_check": ["right", "maybe"]}, r"row 1: field 'rationale_check': 'maybe'"),
    ],
)
def test_validation_errors_name_source_row_and_field(name, changes, pattern):
    data = {k: v for k, v in {**ROWS[name], **changes}.items() if v is not None}  # None drops the column
    with pytest.raises(SchemaError, match=rf"^data/{name}\.parquet: .*{pattern}"):
        validate(pa.table(data), name, f"data/{name}.parquet")


def test_schema_error_is_value_error_and_unknown_schema_is_key_error():
    assert issubclass(SchemaError, ValueError)
    with pytest.raises(KeyError, match="unknown schema"):
        validate(table("pairs"), "nope", "x")


def test_validation_of_100k_rows_is_fast():
    n = 100_000
    big = pa.table(
        {
            "item_id": [f"D/test/{i}" for i in range(n)],
            "dataset": ["D"] * n,
            "qry_text": ["q"] * n,
            "qry_image": [""] * n,
            "tgt_text": [["a", "b", "c"]] * n,
            "tgt_image": [["", "", ""]] * n,
        }
    )
    start = time.perf_counter()
    validate(big, "eval_items", "big")
    assert time.perf_counter() - start < 2.0
    bad = big.set_column(5, "tgt_image", pa.array([["", "", ""]] * (n - 1) + [[""]]))
    with pytest.raises(SchemaError, match=rf"big: row {n - 1}: field 'tgt_image'"):
        validate(bad, "eval_items", "big")
