"""Tests for the synthetic benchmark (`rge synth`): layout, determinism, answer correctness.

.venv/bin/python -m pytest tests/test_synth.py -q
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from rge_core.cli.synth_cmd import synth
from rge_core.synth.scenes import COLORS
from rge_core.synth.tasks import NUMBER_WORDS, SUBSETS
from rge_core.synth.writer import write_benchmark

PARAMS = {"train_per_subset": 16, "eval_per_subset": 12, "candidates": 6, "image_size": 48}
NAMES = [s.name for s in SUBSETS]
COLOR_OF_RGB = {rgb: name for name, rgb in COLORS.items()}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(root: Path, split: str, name: str) -> list[dict]:
    config = "original" if split == "train" else "test"
    return pq.read_table(root / split / name / f"{config}.parquet").to_pylist()


def _colors(path: Path) -> dict[str, int]:
    """Pixel count per palette colour; fails on any pixel that is neither palette nor background."""
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    values, counts = np.unique(pixels, axis=0, return_counts=True)
    found = {tuple(int(v) for v in value): int(count) for value, count in zip(values, counts, strict=True)}
    found.pop((235, 235, 235), None)  # background
    assert set(found) <= set(COLOR_OF_RGB), f"non-palette pixels in {path}"
    return {COLOR_OF_RGB[rgb]: count for rgb, count in found.items()}


def _answer_pairs(root: Path, name: str) -> list[tuple[str, str, str]]:
    """(query image path, query text, ground-truth text or image path) over both splits, paths absolute."""
    pairs = [
        (
            str(root / "train" / r["qry_image_path"]) if r["qry_image_path"] else "",
            r["qry"],
            r["pos_text"] if not r["pos_image_path"] else str(root / "train" / r["pos_image_path"]),
        )
        for r in _rows(root, "train", name)
    ]
    pairs += [
        (
            str(root / "eval" / r["qry_img_path"]) if r["qry_img_path"] else "",
            r["qry_text"],
            r["tgt_text"][0] if not r["tgt_img_path"][0] else str(root / "eval" / r["tgt_img_path"][0]),
        )
        for r in _rows(root, "eval", name)
    ]
    return pairs


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "a"
    write_benchmark(root, seed=7, **PARAMS)
    return root


def test_same_seed_same_bytes_other_seed_differs(bench: Path, tmp_path: Path) -> None:
    write_benchmark(tmp_path / "same", seed=7, **PARAMS)
    write_benchmark(tmp_path / "other", seed=8, **PARAMS)
    original, same, other = _files(bench), _files(tmp_path / "same"), _files(tmp_path / "other")
    assert len(original) > 300
    assert same == original
    for name in NAMES:
        for path in (f"train/{name}/original.parquet", f"eval/{name}/test.parquet"):
            assert other[path] != original[path], path
    assert other["facts.parquet"] != original["facts.parquet"]


def test_layout_row_counts_and_summary(bench: Path) -> None:
    summary = json.loads((bench / "benchmark.json").read_text())
    assert summary["seed"] == 7 and summary["parameters"] == {**PARAMS, "suite": "mmeb", "query_view": "full"}
    assert {s["category"] for s in summary["subsets"]} == {"classification", "vqa", "retrieval", "grounding"}
    assert [s["name"] for s in summary["subsets"]] == NAMES
    for name in NAMES:
        train = pq.read_table(bench / "train" / name / "original.parquet")
        assert train.column_names == [
            "qry",
            "qry_image_path",
            "pos_text",
            "pos_image_path",
            "neg_text",
            "neg_image_path",
        ]
        assert train.num_rows == PARAMS["train_per_subset"]
        eval_table = pq.read_table(bench / "eval" / name / "test.parquet")
        assert eval_table.column_names == ["qry_text", "qry_img_path", "tgt_text", "tgt_img_path"]
        assert str(eval_table.schema.field("tgt_text").type) == "list<element: string>"
        assert eval_table.num_rows == PARAMS["eval_per_subset"]


def test_every_image_exists_at_size_and_none_is_orphaned(bench: Path) -> None:
    for split in ("train", "eval"):
        referenced = set()
        for name in NAMES:
            for row in _rows(bench, split, name):
                for key, value in row.items():
                    if key.endswith("_path"):
                        referenced.update(value if isinstance(value, list) else [value])
        referenced.discard("")
        assert all(re.fullmatch(r"images/Synth\w+/\d{5}(_\w+)?\.png", p) for p in referenced)
        for path in referenced:
            with Image.open(bench / split / path) as image:
                assert image.size == (PARAMS["image_size"],) * 2
        on_disk = {str(p.relative_to(bench / split)) for p in (bench / split / "images").rglob("*.png")}
        assert on_disk == referenced


def test_texts_follow_mmeb_conventions(bench: Path) -> None:
    for name in NAMES:
        for row in _rows(bench, "eval", name):
            assert row["qry_text"].startswith("<|image_1|>\n") == bool(row["qry_img_path"])
            for text, path in zip(row["tgt_text"], row["tgt_img_path"], strict=True):
                assert text.startswith("<|image_1|>\n") == bool(path)
    assert _rows(bench, "train", "SynthT2I")[0]["qry"].startswith(
        "Find me an everyday image that matches the given caption: "
    )


def test_candidates_distinct_with_ground_truth_first(bench: Path) -> None:
    for name in NAMES:
        for row in _rows(bench, "eval", name):
            assert len(row["tgt_text"]) == len(row["tgt_img_path"]) == PARAMS["candidates"]
            # Distinct content, not just distinct file names: two identical crops would tie.
            keys = [
                (text, (bench / "eval" / path).read_bytes() if path else b"")
                for text, path in zip(row["tgt_text"], row["tgt_img_path"], strict=True)
            ]
            assert len(set(keys)) == len(keys), (name, row["qry_text"])
        for row in _rows(bench, "train", name):
            assert (row["pos_text"], row["pos_image_path"]) != (row["neg_text"], row["neg_image_path"])


def test_facts_keyed_for_every_row(bench: Path) -> None:
    facts = pq.read_table(bench / "facts.parquet").to_pylist()
    expected = {f"{n}/original/{i}" for n in NAMES for i in range(PARAMS["train_per_subset"])}
    expected |= {f"{n}/test/{i}" for n in NAMES for i in range(PARAMS["eval_per_subset"])}
    assert [f["item_id"] for f in facts].count(facts[0]["item_id"]) == 1
    assert {f["item_id"] for f in facts} == expected and len(facts) == len(expected)
    for fact in facts:
        assert fact["item_id"].startswith(fact["subset"] + "/")
        assert fact["split"] == ("train" if "/original/" in fact["item_id"] else "eval")
        assert fact["facts"].startswith("The ") and len(fact["facts"]) > 40


def test_query_text_alone_cannot_decide(bench: Path) -> None:
    for name in NAMES:
        rows = _rows(bench, "eval", name)
        if all(row["tgt_img_path"][0] for row in rows):
            # Image targets: every candidate carries the same text, so only the pixels can decide.
            assert all(len(set(row["tgt_text"])) == 1 for row in rows), name
            continue
        answers: dict[str, set[str]] = defaultdict(set)
        for _, query, answer in _answer_pairs(bench, name):
            assert not re.search(rf"\b{re.escape(answer)}\b", query), (name, query)  # no leaked answer
            answers[query].add(answer)
        assert max(len(a) for a in answers.values()) >= 2, name


def test_count_answers_match_the_rendered_shapes(bench: Path) -> None:
    # Colours are distinct within a scene, so the number of palette colours is the number of shapes.
    for image, _, answer in _answer_pairs(bench, "SynthCount"):
        assert NUMBER_WORDS[len(_colors(Path(image))) - 1] == answer


def test_color_answer_is_the_largest_rendered_shape(bench: Path) -> None:
    for image, _, answer in _answer_pairs(bench, "SynthColor"):
        counts = _colors(Path(image))
        assert max(counts, key=counts.get) == answer


def test_grounding_ground_truth_crop_shows_the_labeled_color(bench: Path) -> None:
    for image, query, crop in _answer_pairs(bench, "SynthGround"):
        color = re.search(r'labeled as "(\w+) \w+"', query).group(1)
        assert color in _colors(Path(image))
        counts = _colors(Path(crop))
        assert max(counts, key=counts.get) == color


def test_captions_name_exactly_the_rendered_colors(bench: Path) -> None:
    for image, _, caption in _answer_pairs(bench, "SynthI2T"):
        assert set(re.findall("|".join(COLORS), caption)) == set(_colors(Path(image)))
    for _, query, image in _answer_pairs(bench, "SynthT2I"):
        assert set(re.findall("|".join(COLORS), query)) == set(_colors(Path(image)))


def test_vqa_colors_mentioned_are_in_the_image(bench: Path) -> None:
    for image, query, answer in _answer_pairs(bench, "SynthVQA"):
        present = _colors(Path(image))
        assert set(re.findall("|".join(COLORS), query)) <= set(present)
        assert answer not in COLORS or answer in present


def test_invalid_parameters_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="candidates"):
        write_benchmark(tmp_path, candidates=len(NUMBER_WORDS) + 1)
    with pytest.raises(ValueError, match="image_size"):
        write_benchmark(tmp_path, image_size=8)


def test_cli_writes_the_benchmark(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(synth)
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(
        app,
        [
            str(out),
            "--seed",
            "3",
            "--train-per-subset",
            "2",
            "--eval-per-subset",
            "3",
            "--candidates",
            "4",
            "--image-size",
            "32",
        ],
    )
    assert result.exit_code == 0, result.output
    assert '"seed": 3' in result.output
    assert len(_rows(out, "eval", "SynthGround")[0]["tgt_text"]) == 4
    assert pq.read_table(out / "train" / "SynthVQA" / "original.parquet").num_rows == 2
    bad = runner.invoke(app, [str(tmp_path / "bad"), "--candidates", "1"])
    assert bad.exit_code != 0 and not (tmp_path / "bad" / "benchmark.json").exists()
