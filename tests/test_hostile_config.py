"""Hostile or broken settings: YAML alias bombs wherever YAML is read (config files, `--set`, the flow's
overrides, prompt set manifests, rewrite files), error messages that quote at most ~200 characters of a value
and nothing of a file that is not a config, non-finite numbers, and bounds that contradict each other."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml

from rge_core.config.loader import ConfigError, load_config
from rge_core.data.rewrites import RewriteError, load_rewrites
from rge_core.prompts.prompt_set import PromptSetError, load_prompt_set
from rge_core.strict_yaml import load_strict

TINY = Path("configs/tiny.yaml")
QUOTE_LIMIT = 200  # characters of a value an error message may quote
SECRET = "SECRETHASH"


def alias_bomb(levels: int = 9) -> str:
    """A value whose first item is an anchor of nine aliases of the anchor inside it, and so on `levels` deep:
    9**levels strings when expanded, from a few hundred bytes."""
    value = "&a0 [x, x, x, x, x, x, x, x, x]"
    for level in range(1, levels):
        value = f"&a{level} [{value}, {', '.join([f'*a{level - 1}'] * 8)}]"
    return f"[{value}]"


def quick(call, error: type[Exception]) -> str:
    """The message of `error` raised by `call`, which must fail within a second."""
    started = time.monotonic()
    with pytest.raises(error) as raised:
        call()
    assert time.monotonic() - started < 1.0
    return str(raised.value)


def test_the_bomb_is_a_few_hundred_bytes():
    assert len(alias_bomb()) < 500


def test_an_alias_bomb_in_a_config_file_is_refused_at_once(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(f"data:\n  subsets: {alias_bomb()}\n")
    message = quick(lambda: load_config(path), ConfigError)
    assert message.startswith(f"{path}: invalid YAML: line 2") and "alias" in message
    assert len(message) < 400


def test_an_alias_bomb_in_a_set_value_is_refused_at_once():
    message = quick(lambda: load_config(TINY, [f"data.subsets={alias_bomb()}"]), ConfigError)
    assert "alias" in message and len(message) < 600


def test_an_alias_bomb_in_a_prompt_set_manifest_is_refused_at_once(tmp_path):
    folder = tmp_path / "set"
    shutil.copytree("prompts/rge-terse", folder)
    manifest = folder / "manifest.yaml"
    text = manifest.read_text().replace("templates:\n", f"templates:\n  bomb: {alias_bomb()}\n")
    manifest.write_text(text)
    message = quick(lambda: load_prompt_set(folder), PromptSetError)
    assert "alias" in message and len(message) < 400


def test_an_alias_bomb_in_a_rewrite_file_is_refused_at_once(tmp_path):
    path = tmp_path / "rewrites.yaml"
    path.write_text(f"VOC2007:\n  value_map: {{a: b}}\nbomb: {alias_bomb()}\n")
    message = quick(lambda: load_rewrites(str(path), "eval.query_rewrites"), RewriteError)
    assert "alias" in message and len(message) < 400


def test_small_aliases_still_load_and_recursion_is_refused():
    assert load_strict("base: &b {x: 1}\none: *b\ntwo: *b\n") == {"base": {"x": 1}, "one": {"x": 1}, "two": {"x": 1}}
    assert load_strict(Path("prefect.yaml").read_text())["deployments"]  # the shipped file uses a few
    with pytest.raises(yaml.YAMLError, match="alias"):
        load_strict("a: &a [1, *a]\n")
    with pytest.raises(yaml.YAMLError, match="nested"):
        load_strict("[" * 50_000 + "]" * 50_000)


def test_a_long_value_is_quoted_in_at_most_200_characters(tmp_path):
    value = "A" * 100_000
    for call in (
        lambda: load_config(TINY, [f"train.seed={value}"]),
        lambda: load_config(TINY, [f"train.schedule={value}"]),
        lambda: load_config(TINY, [f"{value}=1"]),
    ):
        message = quick(call, ConfigError)
        assert "A" * (QUOTE_LIMIT + 1) not in message and len(message) < 2 * QUOTE_LIMIT + 300
    folder = tmp_path / "set"
    shutil.copytree("prompts/rge-terse", folder)
    (folder / "mapping.yaml").write_text(f"SynthColor: {value}\n")
    message = quick(lambda: load_prompt_set(folder), PromptSetError)
    assert "A" * (QUOTE_LIMIT + 1) not in message
    rewrites = tmp_path / "rewrites.yaml"
    rewrites.write_text(f"VOC2007: {value}\n")
    message = quick(lambda: load_rewrites(str(rewrites), "eval.query_rewrites"), RewriteError)
    assert "A" * (QUOTE_LIMIT + 1) not in message


@pytest.mark.parametrize(
    "content",
    [
        f"alice: $6${SECRET}:19000:0:99999:7:::\nbob: x\n",  # a mapping none of whose keys is a config section
        f"root:x:0:0:{SECRET}:/root:/bin/bash\ndaemon:x:1:1\n",  # one long string
        f"{{'private_key': '{SECRET}', 'client_email': [\n",  # invalid YAML: PyYAML would quote the line
        f"token: [{SECRET}\n",
        f"\t{SECRET}: 1\n",
        f"{SECRET}: 1\n{SECRET}: 2\n",  # a key given twice
    ],
)
def test_a_file_that_is_not_a_config_is_never_quoted(tmp_path, content):
    path = tmp_path / "shadow"
    path.write_text(content)
    message = quick(lambda: load_config(path), ConfigError)
    assert SECRET not in message and "alice" not in message and "private_key" not in message
    assert message.startswith(f"{path}: ")


def test_a_config_whose_every_key_is_unknown_says_so_without_naming_them(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("alice: 1\nbob: 2\n")
    assert quick(lambda: load_config(path), ConfigError) == (
        f"{path}: not an rge config: none of its top-level keys is a section "
        "(run, data, model, curation, assemble, train, eval)"
    )
    path.write_text("train:\n  steps: 3\ntrian: 1\n")  # a config with a typo still gets the key named
    assert "trian: unknown key" in quick(lambda: load_config(path), ConfigError)


@pytest.mark.parametrize("value", ["nan", ".nan", ".inf", "-.inf", "1e309", "-1e309", "inf"])
def test_non_finite_numbers_are_refused_naming_the_key(value, tmp_path):
    message = quick(lambda: load_config(TINY, [f"train.lr={value}"]), ConfigError)
    assert message.startswith(f"--set train.lr={value}: train.lr: ") and "not a finite number" in message
    path = tmp_path / "c.yaml"
    path.write_text(f"train:\n  max_grad_norm: {value}\n")
    assert "train.max_grad_norm: " in quick(lambda: load_config(path), ConfigError)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.min_pixels=5000", "model.max_pixels=1000"], "model.min_pixels (5000) > model.max_pixels (1000)"),
        (["curation.min_chars=300", "curation.max_chars=200"], "curation.min_chars (300) > curation.max_chars (200)"),
        (["curation.num_nodes=2", "curation.node_rank=2"], "curation.node_rank (2) must be below curation.num_nodes"),
        (
            ["train.launch.nnodes=2", "train.launch.node_rank=5"],
            "train.launch.node_rank (5) must be below train.launch.nnodes (2)",
        ),
        (
            ["curation.decoding.max_new_tokens=2048", "curation.max_model_len=1024"],
            "curation.decoding.max_new_tokens (2048) must be below curation.max_model_len (1024)",
        ),
        (
            ["eval.engine=vllm", "eval.decoding.max_new_tokens=5000", "eval.vllm.max_model_len=4096"],
            "eval.decoding.max_new_tokens (5000) must be below eval.vllm.max_model_len (4096)",
        ),
        (
            ["train.rationale_engine=vllm", "train.decoding.max_new_tokens=4096", "train.vllm.max_model_len=4096"],
            "train.decoding.max_new_tokens (4096) must be below train.vllm.max_model_len (4096)",
        ),
    ],
)
def test_contradictory_bounds_are_refused_at_load_naming_both_keys(overrides, message):
    assert message in quick(lambda: load_config(TINY, overrides), ConfigError)


def test_bounds_are_checked_once_all_overrides_are_applied():
    """Raising both bounds one override at a time passes through a contradiction that the end result lacks."""
    config = load_config(TINY, ["model.min_pixels=100", "model.max_pixels=200"])
    assert (config.model.min_pixels, config.model.max_pixels) == (100, 200)
    raised = load_config(TINY, ["model.max_pixels=200", "model.min_pixels=300", "model.max_pixels=400"])
    assert (raised.model.min_pixels, raised.model.max_pixels) == (300, 400)
    assert load_config(TINY, ["model.min_pixels=5000"]).model.max_pixels == 0  # 0: the processor's own bound


def test_an_alias_bomb_in_a_flow_runs_overrides_is_refused_at_once():
    from flows.rge_flow import rge

    message = quick(lambda: rge.fn(config="configs/tiny.yaml", overrides=[f"data.subsets={alias_bomb()}"]), ConfigError)
    assert "aliases expand to more than" in message and len(message) < 600
