"""Every setting is explained: help on every field of the schema, `rge config explain KEY` with its default,
range, version effect and the presets' values, and docs/settings.md generated from the same source."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from rge_core.cli import config_cmd
from rge_core.config.explain import settings_docs, settings_markdown
from rge_core.config.loader import load_config, to_dict
from rge_core.config.schema import REMOVED, RENAMED, Config
from tests.helpers import leaf_keys

DOC = Path(__file__).resolve().parent.parent / "docs" / "settings.md"


def test_docs_settings_md_is_generated_from_the_schema():
    assert DOC.read_text() == settings_markdown(), "regenerate: rge config explain --markdown > docs/settings.md"


def test_every_setting_of_config_show_is_explained_in_the_docs():
    shown = leaf_keys(to_dict(Config()))
    explained = {doc.key: doc for doc in settings_docs()}
    assert set(explained) - shown == {"eval.categories"}  # a mapping setting: no leaves of its own in `show`
    assert shown <= set(explained)
    text = DOC.read_text()
    for key, doc in explained.items():
        assert len(doc.help) > 15 and f"| `{key}` | {doc.help.replace('|', chr(92) + '|')} |" in text, key


def test_explain_prints_help_default_range_version_and_presets():
    shown = CliRunner().invoke(config_cmd.app, ["explain", "train.decoding.temperature"])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == "train.decoding.temperature" and "greedily" in lines[1]
    assert "type float, default 1.0; >= 0.0" in lines[2]
    assert "changes the version: yes: part of the train stage's artifact version" in lines[3]
    assert f"configs/tiny.yaml: {load_config(Path('configs/tiny.yaml')).train.decoding.temperature!r}" in shown.output
    unversioned = CliRunner().invoke(config_cmd.app, ["explain", "train.launch.nproc"]).output
    assert "changes the version: no" in unversioned
    section = CliRunner().invoke(config_cmd.app, ["explain", "eval.decoding"]).output
    assert section.count("\neval.decoding.") == 5 and section.startswith("eval.decoding.max_new_tokens")
    missing = CliRunner().invoke(config_cmd.app, ["explain", "train.nope"])
    assert missing.exit_code == 1 and "train.nope: no such setting or section" in missing.output


def test_an_old_key_is_explained_by_what_replaced_it():
    renamed = CliRunner().invoke(config_cmd.app, ["explain", "eval.nproc"])
    assert renamed.exit_code == 1 and "eval.nproc: no longer a setting: use eval.launch.nproc" in renamed.output
    text = DOC.read_text()
    for old, new in RENAMED.items():
        assert f"| `{old}` | `{new}` |" in text and new in {d.key for d in settings_docs()} | {"curation.decoding"}
    assert all(f"| `{old}` | removed:" in text for old in REMOVED)
