"""Arrow schemas of every table the pipeline writes, plus the row rules `validate` enforces on them.

All fields are non-nullable: "no image" / "no hard negative" / "no reject reason" are the empty string,
so downstream code never has to tell None from "".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

_STR_LIST = pa.list_(pa.field("item", pa.string(), nullable=False))


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, dtype, nullable=False) for name, dtype in fields])


PAIRS = _schema(
    ("pair_id", pa.string()),  # f"{subset}/{split}/{row_index}", row index within the subset's split
    ("subset", pa.string()),
    ("split", pa.string()),
    ("qry_text", pa.string()),
    ("qry_image", pa.string()),  # relative to the image root, "" = no image
    ("pos_text", pa.string()),
    ("pos_image", pa.string()),
    ("neg_text", pa.string()),  # neg_* both "" = no hard negative
    ("neg_image", pa.string()),
)

RATIONALES = _schema(
    ("pair_id", pa.string()),
    ("subset", pa.string()),
    ("rationale", pa.string()),
    ("prompt_set", pa.string()),
    ("prompt_set_hash", pa.string()),
    ("template", pa.string()),
    ("template_hash", pa.string()),
    ("generator", pa.string()),
    ("sampling", pa.string()),  # JSON of the sampling parameters
    ("seed", pa.int64()),
    ("num_tokens", pa.int64()),
    ("finish_reason", pa.string()),
    ("valid", pa.bool_()),
    ("reject_reason", pa.string()),
)

TRAINING_EXAMPLES = _schema(
    ("pair_id", pa.string()),
    ("subset", pa.string()),
    ("split", pa.string()),
    ("qry_text", pa.string()),
    ("qry_image", pa.string()),
    ("rationale", pa.string()),
    ("pos_text", pa.string()),
    ("pos_image", pa.string()),
    ("neg_text", pa.string()),
    ("neg_image", pa.string()),
)

EVAL_ITEMS = _schema(
    ("item_id", pa.string()),  # f"{dataset}/test/{row}"
    ("dataset", pa.string()),
    ("qry_text", pa.string()),
    ("qry_image", pa.string()),
    ("tgt_text", _STR_LIST),  # candidate 0 is the ground truth
    ("tgt_image", _STR_LIST),
)

SCORES = _schema(
    ("dataset", pa.string()),
    ("category", pa.string()),
    ("split", pa.string()),
    ("metric", pa.string()),
    ("value", pa.float64()),
    ("num_queries", pa.int64()),
)

PREDICTIONS = _schema(  # one row per eval query: see rge_core/evaluation/predictions.py
    ("item_id", pa.string()),
    ("dataset", pa.string()),
    ("gt_rank", pa.int64()),  # 1 = top; ties count against the ground truth, as for Precision@1
    ("gt_score", pa.float64()),
    ("top_index", pa.int64()),  # the top candidate's position in the row's tgt_* lists
    ("top_score", pa.float64()),
    ("rationale", pa.string()),  # what the query was embedded after ("" without reasoning)
    ("budget_hit", pa.bool_()),  # the rationale reached eval.decoding.max_new_tokens before `<emb>`
    ("rationale_check", pa.string()),  # right | wrong: reaches the reference facts' conclusion; "": no reference
)

SCHEMAS: dict[str, pa.Schema] = {
    "pairs": PAIRS,
    "rationales": RATIONALES,
    "training_examples": TRAINING_EXAMPLES,
    "eval_items": EVAL_ITEMS,
    "scores": SCORES,
    "predictions": PREDICTIONS,
}


@dataclass(frozen=True)
class Rules:
    """Row rules beyond types and nulls."""

    unique: tuple[str, ...] = ()  # non-empty and unique per table
    non_empty: tuple[str, ...] = ()  # non-empty strings
    text_or_image: tuple[tuple[str, str], ...] = ()  # at least one of the two is non-empty
    parallel_lists: tuple[tuple[str, str], ...] = ()  # (reference, other): equal, non-zero lengths
    allowed: dict[str, frozenset[str]] = field(default_factory=dict)


# Rationales may hold several samples per pair (retries, n>1), so their pair_id is not unique.
RULES: dict[str, Rules] = {
    "pairs": Rules(
        unique=("pair_id",),
        non_empty=("subset", "split"),
        text_or_image=(("qry_text", "qry_image"), ("pos_text", "pos_image")),
    ),
    "rationales": Rules(non_empty=("pair_id", "subset", "prompt_set", "generator")),
    "training_examples": Rules(
        unique=("pair_id",),
        non_empty=("subset",),
        text_or_image=(("qry_text", "qry_image"), ("pos_text", "pos_image")),
        allowed={"split": frozenset({"train", "validation"})},
    ),
    "eval_items": Rules(
        unique=("item_id",),
        non_empty=("dataset",),
        text_or_image=(("qry_text", "qry_image"),),
        parallel_lists=(("tgt_text", "tgt_image"),),
    ),
    "scores": Rules(non_empty=("dataset", "metric"), allowed={"split": frozenset({"IND", "OOD"})}),
    "predictions": Rules(
        unique=("item_id",),
        non_empty=("dataset",),
        allowed={"rationale_check": frozenset({"right", "wrong", ""})},
    ),
}
