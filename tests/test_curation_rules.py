"""Every rationale validation rule (the token budget with the tiny model's tokenizer), and the request
seeds that make curation resumable."""

from __future__ import annotations

import pytest

from rge_core.curation.shards import request_seed, shard_ranges
from rge_core.curation.validate import FORBIDDEN_TOKENS, RationaleRules, reject_reason, token_counter

RULES = RationaleRules(min_chars=10, max_chars=60, output_regex=r"Reasoning: [A-Za-z ,.]+")
GOOD = "Reasoning: the red circle is the largest, so red."


def test_a_valid_rationale_passes():
    assert reject_reason(GOOD, "stop", RULES) == ""
    assert reject_reason(f"  {GOOD}\n", "stop", RULES) == ""  # surrounding whitespace is not content


@pytest.mark.parametrize(
    ("text", "finish", "reason"),
    [
        ("", "stop", "empty"),
        ("   \n", "stop", "empty"),
        ("", "missing", "missing: no reference rationale for this pair"),
        (GOOD, "length", "unfinished: finish_reason=length"),
        ("Reasoning", "stop", "too short: 9 chars < 10"),
        ("Reasoning: " + "a" * 60, "stop", "too long: 71 chars > 60"),
        ("the circle is red, so red.", "stop", "format: does not match the prompt set's output regex"),
    ],
)
def test_each_rule_names_its_reason(text, finish, reason):
    assert reject_reason(text, finish, RULES) == reason


@pytest.mark.parametrize("token", FORBIDDEN_TOKENS)
def test_special_tokens_are_rejected(token):
    assert reject_reason(f"Reasoning: red {token} circle", "stop", RULES) == f"special tokens: {token}"


def test_rules_apply_in_order_first_failure_wins():
    assert reject_reason("x", "length", RULES).startswith("unfinished")
    assert reject_reason("<emb>" * 20, "stop", RULES).startswith("too long")


def test_token_budget_counts_with_the_model_tokenizer(tiny_model_dir):
    from transformers import AutoProcessor

    count = token_counter(str(tiny_model_dir))
    rules = RationaleRules(10, 5000, r"Reasoning: [A-Za-z ,.]+", max_tokens=128, count_tokens=count)
    under = "Reasoning: the red circle is the largest shape, so the answer is red."
    over = "Reasoning: " + "the red circle is larger than the blue square, " * 20 + "so red."
    assert count(under) <= 128 < count(over) and len(over) < 5000  # over the budget, within the characters
    assert reject_reason(under, "stop", rules) == ""
    assert reject_reason(over, "stop", rules) == f"too long: {count(over)} tokens > 128 (prompt set budget)"
    # The count training sees: the checkpoint's own tokenizer, no special tokens added.
    tokenizer = AutoProcessor.from_pretrained(tiny_model_dir).tokenizer
    assert count(over) == len(tokenizer(over, add_special_tokens=False)["input_ids"])
    with pytest.raises(ValueError, match="count_tokens"):
        RationaleRules(10, 60, ".+", max_tokens=128)


def test_request_seeds_depend_on_pair_and_attempt_only():
    assert request_seed(0, "A/original/1", 0) == request_seed(0, "A/original/1", 0)
    seeds = {request_seed(0, "A/original/1", a) for a in range(3)} | {request_seed(1, "A/original/1", 0)}
    assert len(seeds) == 4 and all(0 <= s < 2**32 for s in seeds)


def test_shards_cover_every_row_once():
    ranges = shard_ranges(10, 4)
    assert [list(r) for r in ranges] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert shard_ranges(0, 4) == []
