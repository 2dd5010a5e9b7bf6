"""The synthetic benchmark's ranking suite: answers read back from the pixels, facts that rank what the image
shows and end with the answer, eight one-token colour candidates with a flat prior, and a query text that
names only the question.

.venv/bin/python -m pytest tests/test_synth_ranking.py -q
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rge_core.model.tokenizer_build import train_tokenizer
from rge_core.synth.facts import conclusion
from rge_core.synth.ranking import PALETTE, SUBSETS
from rge_core.synth.tasks import NUMBER_WORDS
from rge_core.synth.writer import write_benchmark
from tests.helpers import scene_cells

RANK = {"SynthRankMost": 0, "SynthRankMiddle": 1, "SynthRankFewest": 2}


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ranking")
    write_benchmark(root, train_per_subset=8, eval_per_subset=60, candidates=8, image_size=84, suite="ranking")
    return root


def test_the_answer_is_the_colour_of_its_rank_by_cells_and_the_facts_rank_the_pixels(benchmark: Path) -> None:
    facts = {r["item_id"]: r["facts"] for r in pq.read_table(benchmark / "facts.parquet").to_pylist()}
    for name, rank in RANK.items():
        rows = pq.read_table(benchmark / "eval" / name / "test.parquet").to_pylist()
        assert len({r["qry_text"] for r in rows}) == 1  # one question per subset, whatever the answer
        for index, row in enumerate(rows):
            counts = Counter(scene_cells(benchmark / "eval" / row["qry_img_path"]).values())
            assert len(counts) == 3 and len(set(counts.values())) == 3 and max(counts.values()) <= 4
            ranked = [color for color, _ in counts.most_common()]
            answer = row["tgt_text"][0]
            assert answer == ranked[rank]
            assert sorted(row["tgt_text"]) == sorted(PALETTE)  # all eight colours, each once
            assert set(row["tgt_text"][1:3]) == set(ranked) - {answer}  # the scene's others come first
            listing = ", ".join(f"{c} {NUMBER_WORDS[counts[c] - 1]}" for c in ranked)
            assert facts[f"{name}/test/{index}"] == f"{listing}; answer: {answer}."
            assert conclusion(facts[f"{name}/test/{index}"]) == f"answer: {answer}"


def test_answers_are_uniform_over_the_palette_and_each_colour_is_one_token() -> None:
    answers = Counter(
        subset.make(random.Random(f"prior/{subset.name}/{row}"), 84, 8).targets[0].text
        for subset in SUBSETS
        for row in range(1600)
    )
    assert set(answers) == set(PALETTE)
    assert max(answers.values()) < 1.15 * 4800 / len(PALETTE) and min(answers.values()) > 0.85 * 4800 / len(PALETTE)
    tokenizer = train_tokenizer()
    assert all(len(tokenizer(f" {color}")["input_ids"]) == 1 for color in PALETTE)


def test_more_candidates_than_colours_is_refused() -> None:
    with pytest.raises(ValueError, match=r"only 8 distinct labels for '\w+', 9 candidates requested"):
        SUBSETS[0].make(random.Random(0), 84, 9)
