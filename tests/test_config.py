"""Typed config loading: YAML presets, dotted overrides, strict errors, and `rge config show`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
from typer.testing import CliRunner

from rge_core.cli import config_cmd
from rge_core.config.loader import ConfigError, apply_overrides, from_dict, load_config, to_dict
from rge_core.config.schema import Config
from rge_core.strict_yaml import load_strict
from tests.helpers import leaf_keys

TINY = Path(__file__).resolve().parent.parent / "configs" / "tiny.yaml"


@dataclass
class Inner:
    name: str = "x"
    scale: float = 1.0


@dataclass
class Checked:
    lr: float = 1e-3

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


@dataclass
class Tree:
    mode: Literal["lora", "full"] = "lora"
    steps: int = 10
    flag: bool = False
    limit: int | None = None
    tag: str | None = None
    ids: list[int] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)
    extra: Inner | None = None
    groups: list[Inner] = field(default_factory=list)
    checked: Checked = field(default_factory=Checked)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_and_tiny_preset() -> None:
    assert load_config(None) == Config()
    tiny = load_config(TINY)
    assert (tiny.data.source, tiny.model.path, tiny.model.arch) == ("synthetic", "tiny", "qwen2-vl")
    # The preset spells out every setting, so it documents the whole config.
    assert leaf_keys(load_strict(TINY.read_text())) == leaf_keys(to_dict(Config()))


def test_file_errors_name_file_and_dotted_key(tmp_path: Path) -> None:
    path = write(tmp_path, "data:\n  synth:\n    seed: abc\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == f"{path}: data.synth.seed: expected int, got str 'abc'"
    with pytest.raises(ConfigError, match=r"c\.yaml: model\.paht: unknown key \(known: path, arch"):
        load_config(write(tmp_path, "model:\n  paht: x\n"))
    with pytest.raises(ConfigError, match=r"data\.subsets: expected a list, got str 'A'"):
        load_config(write(tmp_path, "data:\n  subsets: A\n"))
    with pytest.raises(ConfigError, match=r"data\.subsets\[1\]: expected str, got int 3"):
        load_config(write(tmp_path, "data:\n  subsets: [A, 3]\n"))
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(write(tmp_path, "data: [\n"))
    with pytest.raises(ConfigError, match="expected a mapping at the top level"):
        load_config(write(tmp_path, "- 1\n"))
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"c\.yaml: the config file is empty"):
        load_config(write(tmp_path, ""))
    with pytest.raises(ConfigError, match=r"line 3, column 3: a key is given twice in one mapping \(first at line 2\)"):
        load_config(write(tmp_path, "train:\n  steps: 3\n  steps: 4\n"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.steps=-5", "train.steps: -5 is below the minimum 1"),
        ("train.batch_size=0", "train.batch_size: 0 is below the minimum 1"),
        ("curation.shard_size=0", "curation.shard_size: 0 is below the minimum 1"),
        ("eval.chunk_size=0", "eval.chunk_size: 0 is below the minimum 1"),
        ("curation.max_retries=-1", "curation.max_retries: -1 is below the minimum 0"),
        ("curation.max_reject_rate=1.5", "curation.max_reject_rate: 1.5 is above the maximum 1.0"),
        ("train.lr=0", "train.lr: 0.0 must be above 0.0"),
        ("train.batching=random", "train.batching: 'random' is not one of mixed, per-subset"),
        ("train.zero_stage=1", "train.zero_stage: 1 is not one of 2, 3"),
        ("curation.generator=openai", "curation.generator: 'openai' is not one of vllm, transformers, reference"),
        (
            "train.report_to=[tensorboard, comet]",
            "train.report_to[1]: 'comet' is not one of tensorboard, wandb, mlflow",
        ),
        ("train.report_to=tensorboard", "train.report_to: expected a list, got str 'tensorboard'"),
    ],
)
def test_out_of_range_and_unknown_choices_fail_at_load_naming_the_key(override, message) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(TINY, [override])
    assert str(error.value) == f"--set {override}: {message}"


def test_every_preset_is_within_range() -> None:
    for preset in sorted(TINY.parent.glob("*.yaml")):
        load_config(preset)


def test_overrides() -> None:
    config = load_config(TINY, ["data.subsets=[A,B]", "assemble.seed=7", "run.artifacts_root=", "model.path=/ckpt"])
    assert config.data.subsets == ["A", "B"] and config.assemble.seed == 7
    assert config.run.artifacts_root == "" and config.model.path == "/ckpt"
    assert config.data.synth.train_per_subset == 64  # untouched keys keep the file's values
    merged = apply_overrides(config, ["data.synth={seed: 3}"])
    assert merged.data.synth.seed == 3 and merged.data.synth.train_per_subset == 64
    assert config.data.synth.seed == 0  # overrides return a new config


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.synth.sed=1", "--set data.synth.sed=1: data.synth.sed: unknown key (known: seed,"),
        ("trian.lr=1e-4", "--set trian.lr=1e-4: trian: unknown key"),
        ("assemble.seed.x=1", "assemble.seed.x: unknown key (assemble.seed holds int, not a section)"),
        ("assemble.seed=abc", "--set assemble.seed=abc: assemble.seed: expected int, got str 'abc'"),
        ("assemble.seed=true", "assemble.seed: expected int, got bool True"),
        ("assemble.seed", "--set assemble.seed: expected key=value"),
    ],
)
def test_override_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(TINY, [override])
    assert message in str(error.value)


def test_generic_dataclass_tree() -> None:
    data = {
        "mode": "full",
        "steps": 3,
        "flag": True,
        "limit": 5,
        "tag": None,
        "ids": [1, 2],
        "weights": {"a": 1, "b": 0.5},
        "inner": {"name": "y"},
        "extra": {"scale": 2},
        "groups": [{"name": "g"}],
    }
    tree = from_dict(Tree, data)
    assert tree.weights == {"a": 1.0, "b": 0.5} and isinstance(tree.weights["a"], float)
    assert tree.inner == Inner("y", 1.0) and tree.extra == Inner("x", 2.0) and tree.groups == [Inner("g")]
    assert from_dict(Tree, to_dict(tree)) == tree
    assert from_dict(Tree, {}) == Tree()

    updated = apply_overrides(Tree(), ["inner.scale=1e-4", "weights.c=2", "extra.name=z", "limit=null", "ids=[4]"])
    assert updated.inner.scale == pytest.approx(1e-4) and updated.weights == {"c": 2.0}
    assert updated.extra == Inner("z") and updated.limit is None and updated.ids == [4]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"mode": "half"}, "mode: expected one of ['lora', 'full'], got str 'half'"),
        ({"steps": 1.5}, "steps: expected int, got float 1.5"),
        ({"steps": True}, "steps: expected int, got bool True"),
        ({"flag": 1}, "flag: expected bool, got int 1"),
        ({"limit": "x"}, "limit: expected int | None, got str 'x'"),
        ({"ids": [1, "2"]}, "ids[1]: expected int, got str '2'"),
        ({"weights": {"a": "heavy"}}, "weights.a: expected float, got str 'heavy'"),
        ({"inner": {"scale": "big"}}, "inner.scale: expected float, got str 'big'"),
        ({"groups": [{"nam": "g"}]}, "groups[0].nam: unknown key"),
        ({"tag": 3}, "tag: expected str | None, got int 3"),
        ({"weights": [1]}, "weights: expected a mapping, got list [1]"),
        ({"checked": {"lr": -1}}, "checked: lr must be positive, got -1.0"),
        ({"extra": 3}, "extra: expected Inner | None, got int 3"),
    ],
)
def test_generic_type_errors(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        from_dict(Tree, data, "t.yaml")
    assert str(error.value).startswith(f"t.yaml: {message}")


def test_cli_show() -> None:
    runner = CliRunner()
    shown = runner.invoke(
        config_cmd.app, ["show", "--config", str(TINY), "--set", "assemble.seed=5", "--set", "data.subsets=[A]"]
    )
    assert shown.exit_code == 0, shown.output
    assert load_strict(shown.output) == to_dict(load_config(TINY, ["assemble.seed=5", "data.subsets=[A]"]))
    assert load_strict(runner.invoke(config_cmd.app, ["show"]).output) == to_dict(Config())

    failed = runner.invoke(config_cmd.app, ["show", "--config", str(TINY), "--set", "data.synth.seed=abc"])
    assert failed.exit_code == 1 and "Traceback" not in failed.output
    assert "data.synth.seed: expected int, got str 'abc'" in failed.stderr


def test_every_preset_loads() -> None:
    """Presets other than tiny.yaml list only what they change; each must still load and be well typed."""
    for preset in sorted(TINY.parent.glob("*.yaml")):
        config = load_config(preset, [])
        assert config.train.steps > 0, preset


def test_versioned_leaves_out_exactly_the_settings_marked_as_changing_no_artifact() -> None:
    from rge_core.config.schema import TrainConfig, versioned

    train = TrainConfig()
    kept = versioned(train)
    assert set(to_dict(train)) - set(kept) == {
        "launch",
        "vllm",
        "log_every",
        "checkpoint_every",
        "log_samples",
        "report_to",
    }
    assert kept["lora"] == to_dict(train)["lora"]  # nested sections alike
    spread = apply_overrides(
        load_config(TINY), ["train.launch.launcher=none", "train.log_every=5", "train.vllm.max_model_len=99"]
    )
    assert versioned(spread.train) == versioned(load_config(TINY).train)
    assert versioned(apply_overrides(spread, ["train.lr=3e-4"]).train) != versioned(spread.train)


def test_report_to_takes_any_list_of_known_trackers() -> None:
    assert load_config(None).train.report_to == ["tensorboard"]
    assert load_config(TINY, ["train.report_to=[]"]).train.report_to == []
    assert load_config(TINY, ["train.report_to=[wandb, tensorboard]"]).train.report_to == ["wandb", "tensorboard"]


def test_later_config_files_override_earlier_ones_key_by_key(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("train:\n  steps: 3\n  lora:\n    rank: 2\n  report_to: []\ndata:\n  subsets: [SynthVQA]\n")
    base = load_config(TINY)
    both = load_config([TINY, overlay], ["train.steps=4"])
    assert both.train.steps == 4  # overrides still come last
    assert both.train.lora.rank == 2 and both.train.lora.alpha == base.train.lora.alpha  # sections merge
    assert both.train.report_to == [] and both.data.subsets == ["SynthVQA"]  # lists replace
    assert both.train.lr == base.train.lr and both.eval == base.eval
    expected = to_dict(base)
    expected["train"].update(steps=4, report_to=[])
    expected["train"]["lora"]["rank"] = 2
    expected["data"]["subsets"] = ["SynthVQA"]
    assert to_dict(both) == expected
    # A bad key names the file that holds it, not the merge.
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  stepz: 3\n")
    with pytest.raises(ConfigError, match=rf"^{bad}: train.stepz: unknown key"):
        load_config([TINY, overlay, bad])


def test_cli_show_takes_several_configs(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("train:\n  steps: 7\n")
    shown = CliRunner().invoke(config_cmd.app, ["show", "-c", str(TINY), "--config", str(overlay)])
    assert shown.exit_code == 0, shown.output
    assert load_strict(shown.output) == to_dict(load_config([TINY, overlay]))
    assert load_strict(shown.output)["train"]["steps"] == 7


@pytest.mark.parametrize(
    ("yaml_text", "override", "message"),
    [
        ("train:\n  rationale_temperature: 0.5\n", "train.rationale_temperature=0.5", "use train.decoding.temperature"),
        ("eval:\n  max_new_tokens: 64\n", "eval.max_new_tokens=64", "use eval.decoding.max_new_tokens"),
        ("curation:\n  sampling:\n    max_tokens: 3\n", "curation.sampling.max_tokens=3", "use curation.decoding"),
        ("train:\n  nproc: 2\n", "train.nproc=2", "use train.launch.nproc"),
        ("eval:\n  vllm_max_model_len: 99\n", "eval.vllm_max_model_len=99", "use eval.vllm.max_model_len"),
        ("run:\n  seed: 1\n", "run.seed=1", "it was never read"),
    ],
)
def test_an_old_key_fails_in_one_line_naming_what_it_is_now(tmp_path: Path, yaml_text, override, message) -> None:
    old = tmp_path / "old.yaml"
    old.write_text(yaml_text)
    for load in (lambda: load_config(old), lambda: load_config(TINY, [override])):
        with pytest.raises(ConfigError, match="no longer a setting: " + re.escape(message)) as error:
            load()
        assert "\n" not in str(error.value)
