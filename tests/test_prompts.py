"""Prompt sets: the shipped sets load and cover every training subset, hashes track bytes, every template
problem fails at load naming file and line, and rendering yields the right message parts."""

from __future__ import annotations

import dataclasses
import pickle
import re
import shutil
from pathlib import Path

import pytest

from rge_core.prompts import (
    PromptSet,
    PromptSetError,
    check_subsets,
    clean_text,
    load_prompt_set,
    matches_format,
    render_pair,
)
from rge_core.strict_yaml import load_strict
from rge_core.synth.writer import SUITES as SYNTH_SUITES

PROMPTS = Path(__file__).resolve().parents[1] / "prompts"
SETS = ("rge-v1", "rge-terse")
FAMILIES = (
    "classification",
    "vqa",
    "retrieval_t2i",
    "retrieval_i2t",
    "retrieval_it2i",
    "retrieval_it2t",
    "retrieval_t2it",
    "grounding",
)
MMEB_TRAIN = (
    "ImageNet_1K",
    "N24News",
    "HatefulMemes",
    "SUN397",
    "VOC2007",
    "InfographicsVQA",
    "ChartQA",
    "A-OKVQA",
    "DocVQA",
    "OK-VQA",
    "Visual7W",
    "VisDial",
    "CIRR",
    "NIGHTS",
    "WebQA",
    "VisualNews_i2t",
    "VisualNews_t2i",
    "MSCOCO_i2t",
    "MSCOCO_t2i",
    "MSCOCO",
)
SYNTH = {
    "SynthColor": "classification",
    "SynthCount": "classification",
    "SynthVQA": "vqa",
    "SynthT2I": "retrieval_t2i",
    "SynthI2T": "retrieval_i2t",
    "SynthGround": "grounding",
    "SynthCountColor": "classification",
    "SynthMostColor": "classification",
    "SynthRelation": "vqa",
    "SynthGroundRelation": "grounding",
    "SynthRankMost": "classification",
    "SynthRankMiddle": "classification",
    "SynthRankFewest": "classification",
}


def _copy(tmp_path: Path, name: str = "rge-v1") -> Path:
    return Path(shutil.copytree(PROMPTS / name, tmp_path / name))


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _error(folder: Path) -> str:
    with pytest.raises(PromptSetError) as info:
        load_prompt_set(folder)
    return str(info.value)


@pytest.mark.parametrize("name", SETS)
def test_shipped_sets_load_and_cover_all_training_subsets(name: str) -> None:
    prompt_set = load_prompt_set(PROMPTS / name)
    manifest = load_strict((PROMPTS / name / "manifest.yaml").read_text())
    assert (prompt_set.name, prompt_set.version) == (name, manifest["version"])
    assert set(prompt_set.templates) == set(FAMILIES)
    assert {s.name for suite in SYNTH_SUITES.values() for s in suite} == set(SYNTH)  # the synthetic subsets
    check_subsets(prompt_set, MMEB_TRAIN + tuple(SYNTH))
    assert set(prompt_set.mapping) == set(MMEB_TRAIN) | set(SYNTH)
    assert {s: prompt_set.mapping[s] for s in SYNTH} == SYNTH
    assert prompt_set.mapping["N24News"] == "classification"
    assert prompt_set.mapping["WebQA"] == "retrieval_t2it"
    assert prompt_set.mapping["CIRR"] == prompt_set.mapping["NIGHTS"] == "retrieval_it2i"
    assert prompt_set.mapping["MSCOCO"] == "grounding"
    assert re.fullmatch(r"[0-9a-f]{64}", prompt_set.hash)


def test_token_budget_is_declared_or_absent(tmp_path: Path) -> None:
    assert load_prompt_set("rge-v1").max_tokens == 128  # RGE's rationale budget
    folder = _copy(tmp_path)
    _edit(folder / "manifest.yaml", "  max_tokens: 128\n", "")
    assert load_prompt_set(folder).max_tokens is None  # optional: no token rule


def test_sets_differ_and_load_by_relative_path_or_name() -> None:
    v1, terse = (load_prompt_set(name) for name in SETS)
    assert v1.hash != terse.hash and v1.output_regex != terse.output_regex
    assert load_prompt_set("prompts/rge-v1").hash == v1.hash == load_prompt_set(PROMPTS / "rge-v1").hash


def test_regexes_compile_for_vllm_structured_output() -> None:
    xgrammar = pytest.importorskip("xgrammar")  # vLLM's default structured-output backend
    llguidance = pytest.importorskip("llguidance")  # the guidance backend (configs/tiny.yaml)
    for name in SETS:
        regex = load_prompt_set(name).output_regex
        xgrammar.Grammar.from_regex(regex)
        assert llguidance.LLMatcher.validate_grammar(llguidance.LLMatcher.grammar_from_regex(regex)) == ""


def test_hash_is_stable_and_tracks_every_byte(tmp_path: Path) -> None:
    original = load_prompt_set(PROMPTS / "rge-v1")
    folder = _copy(tmp_path)
    copy = load_prompt_set(folder)
    assert copy.hash == original.hash and copy.template_hashes == original.template_hashes  # location-free
    assert load_prompt_set(folder).hash == copy.hash
    _edit(folder / "vqa.jinja", "Task:", "Task :")
    edited = load_prompt_set(folder)
    assert edited.hash != copy.hash
    assert edited.template_hashes["vqa"] != copy.template_hashes["vqa"]
    assert {f: h for f, h in edited.template_hashes.items() if f != "vqa"} == {
        f: h for f, h in copy.template_hashes.items() if f != "vqa"
    }
    _edit(folder / "mapping.yaml", "# Grounding", "#  Grounding")
    assert load_prompt_set(folder).hash not in (edited.hash, copy.hash)
    assert load_prompt_set(folder).template_hashes == edited.template_hashes


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    lines = (folder / "vqa.jinja").read_text().split("\n")
    lines[3] += " {% if query_text %}unclosed"  # line 4
    (folder / "vqa.jinja").write_text("\n".join(lines))
    message = _error(folder)
    assert f"{folder / 'vqa.jinja'}:" in message and "syntax error" in message
    assert re.search(r"vqa\.jinja:\d+:", message)


def test_syntax_error_line_is_the_offending_line(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    lines = (folder / "grounding.jinja").read_text().split("\n")
    lines[4] += " {{ query_text | }}"  # line 5
    (folder / "grounding.jinja").write_text("\n".join(lines))
    assert f"{folder / 'grounding.jinja'}:5: template syntax error" in _error(folder)


def test_undefined_variable_fails_at_load_naming_file_and_line(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    lines = (folder / "retrieval_i2t.jinja").read_text().split("\n")
    lines[2] += " {{ answer }}"  # line 3
    (folder / "retrieval_i2t.jinja").write_text("\n".join(lines))
    message = _error(folder)
    assert f"{folder / 'retrieval_i2t.jinja'}:3: UndefinedError" in message and "answer" in message


def test_undefined_variable_in_a_rare_branch_fails_at_load(tmp_path: Path) -> None:
    # Only one subset and only image-less targets reach the branch; load must still find it.
    folder = _copy(tmp_path)
    _edit(
        folder / "classification.jinja",
        "\nTask:",
        "\n{% if subset == 'SUN397' and not target_image %}{{ scene_hint }}{% endif %}Task:",
    )
    message = _error(folder)
    assert f"{folder / 'classification.jinja'}:" in message and "scene_hint" in message


@pytest.mark.parametrize("expression", ["''.__class__", "query_text.__class__.__mro__", "family.__init__.__globals__"])
def test_sandbox_blocks_attribute_tricks_at_load(tmp_path: Path, expression: str) -> None:
    folder = _copy(tmp_path)
    _edit(folder / "vqa.jinja", "\nTask:", "\n{{ " + expression + " }}Task:")
    message = _error(folder)
    assert f"{folder / 'vqa.jinja'}:" in message and ("SecurityError" in message or "UndefinedError" in message)


def test_missing_template_file(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "grounding.jinja").unlink()
    message = _error(folder)
    assert str(folder / "grounding.jinja") in message and "not found" in message


@pytest.mark.parametrize(
    ("regex", "reason"),
    [
        ("Reasoning: [A-Z", "does not compile"),
        ("(?=Reason)[A-Za-z ]{5,50}", "lookarounds"),
        ("([a-z])\\1{3,9}", "backreferences"),
        ("[a-z]{0,10}", "empty"),
    ],
)
def test_bad_regex(tmp_path: Path, regex: str, reason: str) -> None:
    folder = _copy(tmp_path)
    text = (folder / "manifest.yaml").read_text()
    old = re.search(r"regex: \|-\n(.*)\n", text).group(1)
    _edit(folder / "manifest.yaml", old, "    " + regex)
    message = _error(folder)
    assert str(folder / "manifest.yaml") in message and reason in message


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("max_tokens: 128", "max_tokens: 0", "max_tokens must be a positive int"),
        ("max_tokens: 128", "max_tokens: '128'", "max_tokens must be int"),
        ("max_tokens: 128", "max_tokens: true", "max_tokens must be int"),
        ("version: 2", "version: '2'", "version must be int"),
        ("version: 2", "version: true", "version must be int"),
        ("version: 2", "version: 2\nauthor: me", "unknown key"),
        ("name: rge-v1\n", "", "lacks 'name'"),
        ("  grounding: grounding.jinja", "  grounding: ../grounding.jinja", "inside the set folder"),
    ],
)
def test_bad_manifest(tmp_path: Path, old: str, new: str, reason: str) -> None:
    folder = _copy(tmp_path)
    _edit(folder / "manifest.yaml", old, new)
    message = _error(folder)
    assert str(folder / "manifest.yaml") in message and reason in message


def test_mapping_to_a_family_without_template(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit(folder / "mapping.yaml", "CIRR: retrieval_it2i", "CIRR: composed")
    message = _error(folder)
    assert str(folder / "mapping.yaml") in message and "CIRR" in message and "'composed'" in message


def test_unmapped_template_is_allowed_and_unmapped_subset_is_an_error(tmp_path: Path) -> None:
    prompt_set = load_prompt_set(PROMPTS / "rge-v1")
    assert "retrieval_it2t" not in prompt_set.mapping.values()  # template without a subset: fine
    with pytest.raises(PromptSetError) as info:
        check_subsets(prompt_set, ["CIRR", "FashionIQ", "OVEN"])
    message = str(info.value)
    assert str(prompt_set.path / "mapping.yaml") in message and "FashionIQ, OVEN" in message
    with pytest.raises(PromptSetError, match="FashionIQ"):
        render_pair(prompt_set, _pair("FashionIQ", True, True))


def test_template_must_place_each_image_exactly_once(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit(folder / "vqa.jinja", "Image: {{ query_image }}", "Image: {{ query_image }} {{ query_image }}")
    assert "appears 2 times" in _error(folder)
    _edit(folder / "vqa.jinja", "Image: {{ query_image }} {{ query_image }}", "Image:")
    message = _error(folder)
    assert f"{folder / 'vqa.jinja'}:" in message and "query_image" in message and "appears 0 times" in message


def _pair(subset: str, query_image: bool, target_image: bool) -> dict[str, str]:
    return {
        "pair_id": f"{subset}/original/0",
        "subset": subset,
        "split": "original",
        "qry_text": ("<|image_1|>\n" if query_image else "") + "Find the thing: a red cup on a table\n",
        "qry_image": "q/0.jpg" if query_image else "",
        "pos_text": ("<|image_1|> " if target_image else "") + "a red cup",
        "pos_image": "t/0.jpg" if target_image else "",
        "neg_text": "",
        "neg_image": "",
    }


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("query_image", "target_image"), [(True, True), (True, False), (False, True), (False, False)])
def test_render_every_family_with_and_without_images(
    name: str,
    family: str,
    query_image: bool,
    target_image: bool,
) -> None:
    prompt_set = load_prompt_set(PROMPTS / name)
    # retrieval_it2t has no training subset; map one so that render_pair reaches it.
    prompt_set = dataclasses.replace(prompt_set, mapping={**prompt_set.mapping, "OVEN": "retrieval_it2t"})
    subset = next(s for s, f in prompt_set.mapping.items() if f == family)
    rendered = render_pair(prompt_set, _pair(subset, query_image, target_image))
    assert rendered.family == family and rendered.template_hash == prompt_set.template_hashes[family]
    assert rendered.template == f"{family}.jinja"
    sides = [p["side"] for p in rendered.parts if p["type"] == "image"]
    assert sides == ["query"] * query_image + ["target"] * target_image  # shipped templates: query first
    texts = [p["text"] for p in rendered.parts if p["type"] == "text"]
    assert texts and all(set(p) == {"type", "text"} for p in rendered.parts if p["type"] == "text")
    assert not [t for t in texts if "\x00" in t or "<|image" in t or "\n\n\n" in t]
    joined = "".join(texts)
    assert "Find the thing: a red cup on a table" in joined and subset in joined
    assert prompt_set.output_description in joined
    assert rendered.parts[0]["type"] == "text" and not joined.startswith((" ", "\n"))


def test_image_parts_follow_template_order(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "vqa.jinja").write_text(
        "Target first: {{ target_image }}then the query {{ query_image }}{{ query_text }} -> {{ target_text }}"
    )
    prompt_set = load_prompt_set(folder)
    parts = render_pair(prompt_set, _pair("OK-VQA", True, True)).parts
    assert parts == [
        {"type": "text", "text": "Target first: "},
        {"type": "image", "side": "target"},
        {"type": "text", "text": "then the query "},
        {"type": "image", "side": "query"},
        {"type": "text", "text": "Find the thing: a red cup on a table -> a red cup"},
    ]
    assert [p["type"] for p in render_pair(prompt_set, _pair("OK-VQA", False, False)).parts] == ["text"]


def test_clean_text_drops_placeholder() -> None:
    assert clean_text("<|image_1|>\nRepresent the given image.\n") == "Represent the given image."
    assert clean_text("  plain text ") == "plain text"


GOOD_V1 = (
    "The photo shows a large olive fish held by an angler. Its thick body, small scales and "
    "barbels at the mouth point to a tench, a freshwater carp."
)
BAD_V1 = [
    "Tiny.",  # too short
    GOOD_V1[:-1],  # no final punctuation
    GOOD_V1.replace(". Its", ".\nIts"),  # line break
    GOOD_V1 + " <emb>",  # special token
    "**The fish** is a tench, judging by its olive body.",  # markdown
    "A long sentence about fish " * 40 + ".",  # over the regex's 1,000 characters
]
GOOD_TERSE = [
    "Its olive body and barbel mouth mark the fish held by the angler as a tench.",
    "The tallest bar reads 17.5 percent, the highest value on the chart.",
]
BAD_TERSE = [
    "It is a fish. It is a tench.",
    "is it a tench?",
    "Short.",
    "The fish is a tench",
    "Reasoning: the fish\nis a tench.",
    "The answer is <emb>.",
]


def test_matches_format() -> None:
    v1, terse = (load_prompt_set(name) for name in SETS)
    assert matches_format(v1, GOOD_V1) and matches_format(v1, "The chart peaks at 3.5 percent.")
    assert not [t for t in BAD_V1 if matches_format(v1, t)]
    assert all(matches_format(terse, t) for t in GOOD_TERSE)
    assert not [t for t in BAD_TERSE if matches_format(terse, t)]
    assert not matches_format(terse, GOOD_V1)  # the two sets declare different formats


def test_prompt_set_pickles_for_engine_processes() -> None:
    # Curation hands the set to one process per engine; it must travel as plain data and render there.
    prompt_set = load_prompt_set("rge-v1")
    copy = pickle.loads(pickle.dumps(prompt_set))
    assert isinstance(copy, PromptSet) and copy == prompt_set and copy.path == PROMPTS / "rge-v1"
    assert render_pair(copy, _pair("CIRR", True, True)) == render_pair(prompt_set, _pair("CIRR", True, True))
