"""Tests for the synthetic benchmark's reasoning suite and the blind query views: answers read back from the
pixels, repeating colours, no answer in the query text, and blinding that removes exactly one side.

.venv/bin/python -m pytest tests/test_synth_reasoning.py -q
"""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rge_core.synth.reasoning import MAX_ASKED_COUNT, SUBSETS, synth_count_color
from rge_core.synth.scenes import COLORS, GRID
from rge_core.synth.tasks import NUMBER_WORDS, RELATIONS
from rge_core.synth.writer import write_benchmark
from tests.helpers import scene_cells

COLOR_OF_RGB = {rgb: name for name, rgb in COLORS.items()}
PARAMS = {"train_per_subset": 24, "eval_per_subset": 48, "candidates": 8, "image_size": 84, "suite": "reasoning"}


def _eval_rows(root: Path, name: str) -> list[dict]:
    return pq.read_table(root / "eval" / name / "test.parquet").to_pylist()


def _pairs(root: Path, name: str) -> list[tuple[dict[tuple[int, int], str], str, str]]:
    """(query image cells, query text, ground-truth text or crop path) over the eval split."""
    return [
        (
            scene_cells(root / "eval" / row["qry_img_path"]),
            row["qry_text"],
            row["tgt_text"][0] if not row["tgt_img_path"][0] else str(root / "eval" / row["tgt_img_path"][0]),
        )
        for row in _eval_rows(root, name)
    ]


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reasoning")
    for view in ("full", "text-only", "image-only"):
        write_benchmark(root / view, seed=3, query_view=view, **PARAMS)
    return {view: root / view for view in ("full", "text-only", "image-only")}


def test_count_color_answer_is_the_number_of_cells_of_that_color(views: dict[str, Path]) -> None:
    for cells, query, answer in _pairs(views["full"], "SynthCountColor"):
        asked = re.search(r"how many (\w+) shapes", query).group(1)
        assert NUMBER_WORDS[list(cells.values()).count(asked) - 1] == answer
        assert len(set(cells.values())) < len(cells)  # colours repeat


@pytest.mark.parametrize("subset", SUBSETS[:3], ids=lambda s: s.name)
def test_label_priors_are_flat(subset) -> None:
    """Every label is as likely to be right as any other when it is a candidate, so a model that learns
    which candidates tend to be right (training on shuffled pairs does) stays at chance."""
    shown, right = Counter(), Counter()
    for row in range(3000):
        item = subset.make(random.Random(f"prior/{row}"), 32, 8)
        shown.update(t.text for t in item.targets)
        right[item.targets[0].text] += 1
    rates = {label: right[label] / shown[label] for label in shown if shown[label] >= 200}
    assert len(rates) >= 9
    assert all(0.08 < rate < 0.17 for rate in rates.values()), sorted(rates.items(), key=lambda kv: kv[1])


def test_count_color_answers_cover_one_to_nine_uniformly() -> None:
    answers = Counter(synth_count_color(random.Random(f"count/{row}"), 32, 8).targets[0].text for row in range(1800))
    assert set(answers) == set(NUMBER_WORDS[:MAX_ASKED_COUNT])
    assert max(answers.values()) < 1.3 * 1800 / MAX_ASKED_COUNT


def test_most_color_answer_has_the_most_cells(views: dict[str, Path]) -> None:
    winners = set()
    for cells, _, answer in _pairs(views["full"], "SynthMostColor"):
        (first, top), (_, second) = (Counter(cells.values()).most_common() + [("", 0)])[:2]
        assert (answer, top > second) == (first, True)
        assert len(set(cells.values())) < len(cells)
        winners.add(answer)
    assert len(winners) >= 5  # many answers behind the one fixed query text


def _nearest(cells: dict[tuple[int, int], str], cell: tuple[int, int], step: tuple[int, int]) -> str | None:
    col, row = cell[0] + step[0], cell[1] + step[1]
    while 0 <= col < GRID and 0 <= row < GRID:
        if (col, row) in cells:
            return cells[col, row]
        col, row = col + step[0], row + step[1]
    return None


def test_relation_answer_is_the_nearest_cell_in_that_direction(views: dict[str, Path]) -> None:
    for cells, query, answer in _pairs(views["full"], "SynthRelation"):
        relation, anchor_color = re.search(r"directly (.+) the (\w+) \w+\?", query).groups()
        # Some cell of the anchor's colour has the answer's colour as its nearest neighbour that way.
        anchors = [cell for cell, color in cells.items() if color == anchor_color]
        assert any(_nearest(cells, cell, RELATIONS[relation]) == answer.split()[0] for cell in anchors)
        assert len(set(cells.values())) < len(cells)


def test_ground_relation_candidates_are_all_object_crops(views: dict[str, Path]) -> None:
    """The ground truth shows a scene colour, and so does the centre of every candidate: no random region
    among them that "shows no object" would give away."""
    for row in _eval_rows(views["full"], "SynthGroundRelation"):
        colors = set(scene_cells(views["full"] / "eval" / row["qry_img_path"]).values())
        assert len(colors) == 3 and re.search(r"directly (.+) the \w+ \w+\n$", row["qry_text"])
        for path in row["tgt_img_path"]:
            pixels = np.asarray(Image.open(views["full"] / "eval" / path).convert("RGB"))
            centre = tuple(int(v) for v in pixels[pixels.shape[0] // 2, pixels.shape[1] // 2])
            assert COLOR_OF_RGB.get(centre) in colors, path


def test_no_query_text_contains_its_answer(views: dict[str, Path]) -> None:
    for subset in SUBSETS:
        for _, query, answer in _pairs(views["full"], subset.name):
            if not answer.startswith("/"):
                assert not re.search(rf"\b{re.escape(answer)}\b", query), (subset.name, query)


def test_blind_views_remove_exactly_one_side(views: dict[str, Path]) -> None:
    for subset in SUBSETS:
        full, text_only, image_only = (_eval_rows(views[v], subset.name) for v in ("full", "text-only", "image-only"))
        for a, t, i in zip(full, text_only, image_only, strict=True):
            assert a["tgt_text"] == t["tgt_text"] == i["tgt_text"]  # same items, same candidates
            assert t["qry_text"] == a["qry_text"] and i["qry_img_path"] == a["qry_img_path"]
            assert scene_cells(views["text-only"] / "eval" / t["qry_img_path"]) == {}  # a blank image
            assert scene_cells(views["image-only"] / "eval" / i["qry_img_path"]) == scene_cells(
                views["full"] / "eval" / a["qry_img_path"]
            )
        assert len({r["qry_text"] for r in image_only}) == 1  # one neutral text
        assert len({r["qry_text"] for r in full}) > 1 or subset.name == "SynthMostColor"


def test_unknown_suite_or_view_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="suite 'mmeb2'"):
        write_benchmark(tmp_path, suite="mmeb2")
    with pytest.raises(ValueError, match="query_view 'blind'"):
        write_benchmark(tmp_path, query_view="blind")
