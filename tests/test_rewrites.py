"""Rewrite files in the RGE release's YAML format: the text ops against hand-computed strings, every bad
input as one line naming setting, file, dataset and key, and their use at ingest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from data_schemas.io import read_table
from rge_core.artifacts.store import ArtifactStore
from rge_core.data.rewrites import RewriteError, load_rewrites
from rge_core.pipeline import run_pipeline
from tests.helpers import small_config

SETTING = "eval.query_rewrites"


def _file(tmp_path: Path, text: str, name: str = "rules.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _load(tmp_path: Path, text: str):
    return load_rewrites(_file(tmp_path, text), SETTING)


ALL_OPS = """
Pets:
  value_map: {"cat": "a cat sat"}
  original: "cat"
  replacement: "dog"
  prefix_add: "cat: "
  suffix_add: " (pet)"
"""


@pytest.mark.parametrize(
    "text, expected",
    [
        # value_map first (its output is then replaced), the prefix after the replace (its "cat" stays).
        ("cat", "cat: a dog sat (pet)\n"),
        ("the cat", "cat: the dog (pet)\n"),  # value_map matches exact texts only
        ("cat and cat", "cat: dog and dog (pet)\n"),  # every occurrence
        ("bird", "cat: bird (pet)\n"),
    ],
)
def test_ops_run_in_order_then_one_newline(tmp_path, text, expected):
    rewrites = _load(tmp_path, ALL_OPS)
    assert rewrites.rewrite("Pets", text) == expected
    assert rewrites.rules_for("Pets").apply(text) == expected[:-1]  # apply itself adds no newline


def test_replacement_defaults_to_empty_and_newline_is_ensured_once(tmp_path):
    rewrites = _load(tmp_path, 'Cls:\n  original: "Represent "\nNl:\n  suffix_add: "\\n"\n')
    assert rewrites.rewrite("Cls", "Represent Represent the image") == "the image\n"
    assert rewrites.rewrite("Cls", "ends\n") == "ends\n"
    assert rewrites.rewrite("Nl", "x") == "x\n"


def test_datasets_not_named_still_get_the_newline(tmp_path):
    rewrites = _load(tmp_path, "Cls:\n  prefix_add: 'P '\n")
    assert rewrites.rules_for("Other") is None
    assert rewrites.rewrite("Other", "hello") == "hello\n"
    assert rewrites.rewrite("Other", "") == "\n"


def test_empty_file_has_no_rules_and_empty_setting_is_none(tmp_path):
    rewrites = _load(tmp_path, "")
    assert rewrites.rules == {} and rewrites.rewrite("Any", "x") == "x\n"
    assert load_rewrites("", SETTING) is None


def test_names_match_with_dash_and_underscore_interchangeable(tmp_path):
    rewrites = _load(tmp_path, "ImageNet_1K:\n  prefix_add: 'A '\nOK-VQA:\n  prefix_add: 'B '\n")
    assert rewrites.rewrite("ImageNet-1K", "x") == "A x\n"
    assert rewrites.rewrite("OK_VQA", "x") == "B x\n"
    rewrites.check_datasets(["ImageNet-1K", "OK_VQA"], SETTING)


def test_the_release_style_double_spelling_with_equal_rules_is_accepted(tmp_path):
    rewrites = _load(tmp_path, "ImageNet_1K:\n  prefix_add: 'A '\nImageNet-1K:\n  prefix_add: 'A '\n")
    assert rewrites.rewrite("ImageNet_1K", "x") == rewrites.rewrite("ImageNet-1K", "x") == "A x\n"


def test_non_ascii_texts_and_the_record(tmp_path):
    text = 'Catégorie:\n  original: "Représente l’image"\n  replacement: "画像を説明して"\n'
    path = _file(tmp_path, text)
    rewrites = load_rewrites(path, SETTING)
    assert (
        rewrites.rewrite("Catégorie", "<|image_1|>\nReprésente l’image — vite")
        == "<|image_1|>\n画像を説明して — vite\n"
    )
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert rewrites.record() == {"path": str(Path(path).resolve()), "sha256": digest}


def test_check_datasets_names_each_absent_dataset(tmp_path):
    rewrites = _load(tmp_path, "VOC2007:\n  prefix_add: 'a'\nNoSuchSet:\n  prefix_add: 'b'\nAlsoMissing: {}\n")
    with pytest.raises(RewriteError) as caught:
        rewrites.check_datasets(["VOC2007", "CIRR"], "data.query_rewrites")
    message = str(caught.value)
    assert message.startswith(f"data.query_rewrites: {rewrites.path}: ")
    assert "NoSuchSet" in message and "AlsoMissing" in message and "\n" not in message


@pytest.mark.parametrize(
    "content, fragments",
    [
        ("a: [unclosed\n", ["not a UTF-8 YAML"]),
        (b"Cls:\n  prefix_add: '\xff'\n", ["not a UTF-8 YAML"]),
        ("- VOC2007\n- CIRR\n", ["top level", "list"]),
        ("2007:\n  prefix_add: x\n", ["dataset name 2007", "int"]),
        ("VOC2007: Represent the image\n", ["VOC2007: expected a mapping", "str"]),
        ("VOC2007:\n", ["VOC2007: expected a mapping", "nothing"]),
        ("VOC2007:\n  prefix: x\n", ["VOC2007: unknown key 'prefix'"]),
        ("VOC2007:\n  prefix_add: 3\n", ["VOC2007: prefix_add: expected a string", "int 3"]),
        ("VOC2007:\n  original: null\n", ["VOC2007: original: expected a string", "nothing"]),
        ("VOC2007:\n  suffix_add: [a]\n", ["VOC2007: suffix_add: expected a string", "list"]),
        ("VOC2007:\n  original: ''\n  replacement: x\n", ["VOC2007: original: empty"]),
        ("VOC2007:\n  replacement: x\n", ["VOC2007: replacement: given without original"]),
        ("Memes:\n  value_map: [Yes, No]\n", ["Memes: value_map: expected a mapping", "list"]),
        ("Memes:\n  value_map:\n    Yes: 'Yes, it is.'\n", ["Memes: value_map: key: expected a string", "bool True"]),
        ("Memes:\n  value_map:\n    'Yes': 1\n", ["Memes: value_map: value: expected a string", "int 1"]),
        (
            "ImageNet_1K:\n  prefix_add: a\nImageNet-1K:\n  prefix_add: b\n",
            ["ImageNet_1K and ImageNet-1K are the same dataset with different rules"],
        ),
        (
            "VOC2007:\n  prefix_add: a\nVOC2007:\n  prefix_add: b\n",
            ["line 3, column 1: a key is given twice in one mapping (first at line 1)"],
        ),
    ],
)
def test_bad_files_fail_in_one_line_naming_setting_file_dataset_and_key(tmp_path, content, fragments):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(RewriteError) as caught:
        load_rewrites(str(path), SETTING)
    message = str(caught.value)
    assert message.startswith(f"{SETTING}: {path.resolve()}: ") and "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_a_missing_file_names_setting_and_path(tmp_path):
    with pytest.raises(RewriteError, match=rf"^{SETTING}: .*nowhere\.yaml: cannot read the file"):
        load_rewrites(str(tmp_path / "nowhere.yaml"), SETTING)


# --- at ingest -----------------------------------------------------------------------------------------

QUERY_RULES = """
ImageNet-1K:  # the folder spells it ImageNet_1K
  original: "What is in"
  replacement: "Name what is in"
CIRR:
  prefix_add: "Find: "
"""
CANDIDATE_RULES = """
CIRR:
  value_map: {"answer 0": "réponse zéro"}
  suffix_add: "!"
WebQA:
  original: "matches no text"
Place365:  # an MMEB set the training folder lacks, as in the release's files
  prefix_add: "A photo of "
"""


def _ingest(tmp_path: Path, source: Path, *overrides: str):
    config = small_config(str(tmp_path / "artifacts"), f"data.source={source}", *overrides)
    store = ArtifactStore(config.run.artifacts_root)
    return store, run_pipeline(config, ["ingest"])["ingest"]


def test_ingest_rewrites_queries_and_candidates_into_a_new_version(tmp_path, data_train_folder):
    store, plain_id = _ingest(tmp_path, data_train_folder)
    query, candidate = _file(tmp_path, QUERY_RULES, "query.yaml"), _file(tmp_path, CANDIDATE_RULES, "cand.yaml")
    rewritten = [f"data.query_rewrites={query}", f"data.candidate_rewrites={candidate}"]
    _, pairs_id = _ingest(tmp_path, data_train_folder, *rewritten)
    assert pairs_id != plain_id

    rows = {r["pair_id"]: r for r in read_table(store.get(pairs_id).file_url("pairs.parquet"), "pairs").to_pylist()}
    texts = {pid: (r["qry_text"], r["pos_text"], r["neg_text"]) for pid, r in rows.items()}
    assert texts["ImageNet_1K/original/2"] == ("<|image_1|>\nName what is in image 2?\n", "answer 2\n", "")
    assert texts["CIRR/original/0"] == ("Find: <|image_1|>\nWhat is in image 0?\n", "réponse zéro!\n", "")
    assert texts["CIRR/original/3"] == ("Find: <|image_1|>\nWhat is in image 3?\n", "answer 3!\n", "wrong 3!\n")
    assert texts["WebQA/original/1"] == ("<|image_1|>\nWhat is in image 1?\n", "answer 1\n", "")

    manifest = store.get(pairs_id).manifest
    records = {side: load_rewrites(path, "x").record() for side, path in (("query", query), ("candidate", candidate))}
    assert manifest.config["rewrites"] == records
    assert manifest.stats["rewrites"] == {
        "query": {**records["query"], "changed": {"CIRR": 5, "ImageNet_1K": 4}},
        "candidate": {**records["candidate"], "changed": {"CIRR": 5 + 2, "WebQA": 0}},
    }
    assert "rewrites" not in store.get(plain_id).manifest.config
    assert store.get(plain_id).manifest.stats["rewrites"] == {"query": None, "candidate": None}

    assert _ingest(tmp_path, data_train_folder, *rewritten)[1] == pairs_id  # reused
    Path(candidate).write_text(CANDIDATE_RULES.replace("!", "?"), encoding="utf-8")
    assert _ingest(tmp_path, data_train_folder, *rewritten)[1] not in (pairs_id, plain_id)


def test_a_file_naming_an_absent_subset_fails_before_anything_is_written(tmp_path, data_train_folder):
    candidate = _file(tmp_path, "CIRR:\n  suffix_add: '!'\nNoSuchSubset:\n  prefix_add: 'x'\n")
    with pytest.raises(
        RewriteError, match=r"^data\.candidate_rewrites: .*rules\.yaml: dataset NoSuchSubset not present"
    ):
        _ingest(tmp_path, data_train_folder, f"data.candidate_rewrites={candidate}")
    assert ArtifactStore(str(tmp_path / "artifacts")).list() == []
    assert not (tmp_path / "artifacts" / "pairs").exists()


def test_a_bad_file_fails_before_the_synthetic_benchmark_is_built(tmp_path):
    query = _file(tmp_path, "SynthColor:\n  prefix: x\n")
    config = small_config(str(tmp_path / "artifacts"), f"data.query_rewrites={query}")
    with pytest.raises(RewriteError, match=r"^data\.query_rewrites: .*SynthColor: unknown key 'prefix'"):
        run_pipeline(config, ["ingest"])
    assert ArtifactStore(config.run.artifacts_root).list() == []


def test_synthetic_source_checks_names_against_the_benchmark_subsets(tmp_path):
    root = str(tmp_path / "artifacts")
    good = _file(tmp_path, "SynthColor:\n  prefix_add: 'Colour? '\n", "good.yaml")
    store = ArtifactStore(root)
    plain_id = run_pipeline(small_config(root), ["ingest"])["ingest"]
    pairs_id = run_pipeline(small_config(root, f"data.query_rewrites={good}"), ["ingest"])["ingest"]
    plain, pairs = (
        read_table(store.get(i).file_url("pairs.parquet"), "pairs").to_pylist() for i in (plain_id, pairs_id)
    )
    for before, after in zip(plain, pairs, strict=True):  # the synthetic queries already end with a newline
        prefix = "Colour? " if before["subset"] == "SynthColor" else ""
        assert after == {**before, "qry_text": prefix + before["qry_text"]}
    bad = _file(tmp_path, "SynthColour:\n  prefix_add: 'x'\n", "bad.yaml")
    with pytest.raises(RewriteError, match="dataset SynthColour not present"):
        run_pipeline(small_config(root, f"data.query_rewrites={bad}"), ["ingest"])
    assert {m.id for m in store.list("pairs")} == {plain_id, pairs_id}
