"""eval.rationales on an MMEB-format folder: generated, shuffled (another query's generated rationale) and given
(a file keyed by item id), through `rge eval`; the per-query rationale, budget flag and reference check in
predictions.parquet, the cross-tabulation in summary.md, and the paired test between two modes.

.venv/bin/python -m pytest tests/test_eval_rationale_modes.py -q
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from data_schemas.io import read_table
from rge_core.artifacts.store import ArtifactStore
from rge_core.cli.main import app
from rge_core.embedder import Embedder, Rationale
from rge_core.evaluation.rationale_checks import checks, crosstab_markdown
from rge_core.evaluation.rationale_modes import RationaleModeError, derangement
from rge_core.model.inputs import Query, Target
from rge_core.model.rge_model import RGEModel
from rge_core.pipeline import run_pipeline
from rge_core.synth.facts import conclusion, reaches
from tests.helpers import small_config, write_eval_folder

SETTINGS = ["eval.decoding.max_new_tokens=6", "eval.batch_size=4"]
COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200)]


def write_folder(folder: Path) -> Path:
    """ShapeShots: five image queries (one colour each) with three text candidates; MSCOCO_t2i: four text
    queries with three image candidates."""
    images = [Image.new("RGB", (56, 56), colour) for colour in COLOURS]
    tables = {
        "ShapeShots": {
            "qry_text": ["<|image_1|>\nRepresent the given image for classification"] * 5,
            "qry_img_path": [f"img/{i}.png" for i in range(5)],
            "tgt_text": [[f"colour {i}", f"colour {(i + 1) % 5}", f"colour {(i + 2) % 5}"] for i in range(5)],
            "tgt_img_path": [[""] * 3 for _ in range(5)],
        },
        "MSCOCO_t2i": {
            "qry_text": [f"Find a picture of thing number {i} on a table" for i in range(4)],
            "qry_img_path": [""] * 4,
            "tgt_text": [["<|image_1|>\nRepresent the given image."] * 3 for _ in range(4)],
            "tgt_img_path": [[f"img/{i}.png", f"img/{i + 1}.png", f"img/{(i + 2) % 5}.png"] for i in range(4)],
        },
    }
    return write_eval_folder(folder, images, tables)


def rge_eval(root: Path, model: Path, folder: Path, *sets: str, extra: tuple[str, ...] = ()) -> str:
    """`rge eval` on the folder; returns the eval artifact it built."""
    before = {m.id for m in ArtifactStore(str(root)).list("eval")}
    overrides = [f"run.artifacts_root={root}", *SETTINGS, *sets]
    args = ["eval", "--config", "configs/tiny.yaml", "--model", str(model), "--data", str(folder), *extra]
    done = CliRunner().invoke(app, [*args, *[a for o in overrides for a in ("--set", o)]])
    assert done.exit_code == 0, done.output
    [version] = {m.id for m in ArtifactStore(str(root)).list("eval")} - before
    assert version in done.output
    return version


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> tuple[Path, Path]:
    """(artifact root, MMEB-format folder)."""
    root = tmp_path_factory.mktemp("modes")
    return root, write_folder(root / "my-eval")


@pytest.fixture(scope="module")
def runs(folder, lively_model_dir):
    """Evals of the lively tiny model (its greedy rationales differ between queries) in the three modes."""
    root, folder = folder
    generated = rge_eval(root, lively_model_dir, folder)
    shuffled = rge_eval(root, lively_model_dir, folder, "eval.rationales=shuffled", extra=("--compare-to", generated))
    given_file = root / "given.jsonl"
    ids = [r["item_id"] for r in table(root, generated, "rationales.parquet")]
    given_file.write_text("".join(json.dumps({"item_id": i, "rationale": f"It shows item {i}."}) + "\n" for i in ids))
    given = rge_eval(root, lively_model_dir, folder, "eval.rationales=given", f"eval.given_rationales={given_file}")
    return root, folder, {"generated": generated, "shuffled": shuffled, "given": given}, given_file


def table(root: Path, version: str, name: str) -> list[dict]:
    artifact = ArtifactStore(str(root)).get(version)
    if name == "predictions.parquet":
        return read_table(artifact.file_url(name), "predictions").to_pylist()
    return pq.read_table(artifact.file_url(name)).to_pylist()


@pytest.mark.slow
def test_shuffled_embeds_each_query_after_another_querys_generated_rationale(runs):
    root, _, versions, _ = runs
    own = {r["item_id"]: r for r in table(root, versions["generated"], "rationales.parquet")}
    assert len({r["rationale"] for r in own.values()}) > 2  # the rationales differ: the check below can fail
    shuffled = table(root, versions["shuffled"], "rationales.parquet")
    for dataset in ("ShapeShots", "MSCOCO_t2i"):
        rows = [r for r in shuffled if r["dataset"] == dataset]
        donors = [r["rationale_of"] for r in rows]
        assert sorted(donors) == sorted(r["item_id"] for r in rows)  # a permutation of the dataset's queries
        assert all(r["rationale_of"] != r["item_id"] for r in rows)  # none keeps its own
    for row in shuffled:
        donor = own[row["rationale_of"]]
        assert (row["rationale"], row["budget_hit"]) == (donor["rationale"], donor["budget_hit"])
    predictions = {r["item_id"]: r for r in table(root, versions["shuffled"], "predictions.parquet")}
    assert all(predictions[r["item_id"]]["rationale"] == r["rationale"] for r in shuffled)
    config = ArtifactStore(str(root)).get(versions["shuffled"]).manifest.config
    assert (config["rationales"], config["shuffle_seed"]) == ("shuffled", 0)


def _independent_scores(model: Path, folder: Path, rows: list[dict], rationales: dict[str, str]) -> dict[str, float]:
    """The ground truth's cosine for each query, through the Embedder directly, after the given rationale."""
    embedder = Embedder.load(model, max_new_tokens=6)
    eval_rows = {
        f"{d}/test/{i}": r
        for d in ("ShapeShots", "MSCOCO_t2i")
        for i, r in enumerate(pq.read_table(folder / d / "test.parquet").to_pylist())
    }
    scores = {}
    for row in rows:
        source = eval_rows[row["item_id"]]
        image = folder / source["qry_img_path"] if source["qry_img_path"] else None
        query = Query(source["qry_text"], image)
        gt_image = source["tgt_img_path"][0]
        target = Target(source["tgt_text"][0], folder / gt_image if gt_image else None)
        q = embedder.encode_queries([query], rationales=[Rationale(rationales[row["item_id"]], False, 0)])
        scores[row["item_id"]] = float(q[0] @ embedder.encode_candidates([target])[0])
    return scores


@pytest.mark.slow
def test_scores_are_those_of_the_query_after_its_assigned_rationale(runs, lively_model_dir):
    root, folder, versions, given_file = runs
    given = {json.loads(line)["item_id"]: json.loads(line)["rationale"] for line in given_file.read_text().splitlines()}
    for mode, texts in (
        ("shuffled", {r["item_id"]: r["rationale"] for r in table(root, versions["shuffled"], "rationales.parquet")}),
        ("given", given),
    ):
        predictions = table(root, versions[mode], "predictions.parquet")
        assert {r["item_id"]: r["rationale"] for r in predictions} == texts
        expected = _independent_scores(lively_model_dir, folder, predictions, texts)
        for row in predictions:
            assert row["gt_score"] == pytest.approx(expected[row["item_id"]], abs=1e-4), (mode, row["item_id"])
    generated = {r["item_id"]: r["gt_score"] for r in table(root, versions["generated"], "predictions.parquet")}
    shuffled = {r["item_id"]: r["gt_score"] for r in table(root, versions["shuffled"], "predictions.parquet")}
    assert any(abs(generated[i] - shuffled[i]) > 1e-4 for i in generated)  # the mode changes the embeddings


@pytest.mark.slow
def test_the_modes_are_distinct_versions_and_compare_with_a_paired_test(runs):
    root, _, versions, _ = runs
    assert len(set(versions.values())) == 3
    diff = ArtifactStore(str(root)).get(versions["shuffled"]).read_bytes("diff.md").decode()
    assert "p (exact McNemar)" in diff
    assert f"Queries embedded after their rationales: {versions['generated']} generated, " in diff
    assert f"{versions['shuffled']} shuffled." in diff
    stats = ArtifactStore(str(root)).get(versions["given"]).manifest.stats
    assert stats["rationales"] == "given" and stats["rationale_checks"] == {"right": 0, "wrong": 0}  # no facts


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["eval.rationales=given"], r"eval.given_rationales: eval.rationales given needs a file"),
        (["eval.given_rationales=x.jsonl"], r"eval.given_rationales: x.jsonl is set but eval.rationales is generated"),
        (["eval.rationales=shuffled", "eval.reasoning=false"], r"eval.rationales: shuffled .* needs eval.reasoning"),
        (
            ["eval.rationales=given", "eval.given_rationales=synthetic-facts"],
            r"eval.given_rationales: synthetic-facts needs eval.data synthetic",
        ),
        (
            ["eval.rationales=given", "eval.given_rationales=/nonexistent.jsonl"],
            r"eval.given_rationales: /nonexistent.jsonl is not a .parquet or .jsonl file",
        ),
        (
            ["eval.rationales=given", "eval.given_rationales=eval-0123456789ab"],
            r"eval.given_rationales: no complete artifact eval-0123456789ab",
        ),
    ],
)
def test_bad_mode_settings_fail_in_one_line_before_any_model_loads(folder, tiny_model_dir, monkeypatch, extra, message):
    root, folder = folder
    monkeypatch.setattr(RGEModel, "load", lambda *a, **k: pytest.fail("loaded a model before checking the settings"))
    config = small_config(str(root), f"eval.data={folder}", f"eval.model={tiny_model_dir}", *SETTINGS, *extra)
    with pytest.raises(RationaleModeError, match=message):
        run_pipeline(config, ["evaluate"])


def test_missing_ids_in_a_given_file_are_counted_and_named_before_any_model_loads(folder, tiny_model_dir, monkeypatch):
    root, folder = folder
    ids = [f"ShapeShots/test/{i}" for i in range(5)] + [f"MSCOCO_t2i/test/{i}" for i in range(4)]
    partial = root / "partial.parquet"
    pq.write_table(pa.table({"item_id": ids[1:], "rationale": ["It is red."] * 8}), partial)
    monkeypatch.setattr(RGEModel, "load", lambda *a, **k: pytest.fail("loaded a model before checking the ids"))
    config = small_config(
        str(root),
        f"eval.data={folder}",
        f"eval.model={tiny_model_dir}",
        *SETTINGS,
        "eval.rationales=given",
        f"eval.given_rationales={partial}",
    )
    with pytest.raises(
        RationaleModeError, match=rf"{partial} has no rationale for 1 of 9 eval queries \(first: {ids[0]}\)"
    ):
        run_pipeline(config, ["evaluate"])


def test_derangement_moves_every_query_and_depends_on_seed_and_dataset():
    donors = derangement(50, 0, "A")
    assert sorted(donors) == list(range(50)) and all(d != i for i, d in enumerate(donors))
    assert derangement(50, 0, "A") == donors  # fixed
    assert derangement(50, 1, "A") != donors and derangement(50, 0, "B") != donors
    with pytest.raises(RationaleModeError, match="shuffled needs two queries or more per dataset; A has 1"):
        derangement(1, 0, "A")


def test_conclusions_checks_and_their_crosstab():
    assert conclusion("pink four, brown three, yellow one; answer: yellow.") == "answer: yellow"
    assert conclusion("The counts: cyan four, yellow three, so cyan.") == "cyan"
    assert reaches("red two, blue one; answer: blue.", "blue three, red two; answer: blue.")
    assert not reaches("", "x; answer: blue.") and not reaches("answer: red.", "x; answer: blue.")
    facts = {"a": "x; answer: red.", "b": "x; answer: blue.", "c": "x; answer: red."}
    found = checks(facts, ["a", "b", "c", "d"], ["y; answer: red.", "y; answer: red.", "", "y; answer: red."])
    assert found == ["right", "wrong", "", ""]
    predictions = pa.table(
        {
            "dataset": ["S", "S", "S", "T", "T"],
            "gt_rank": [1, 2, 1, 1, 3],
            "rationale_check": ["right", "right", "wrong", "wrong", ""],
        }
    )
    section = crosstab_markdown(predictions)
    assert "| S | 2 | 50.0 | 1 | 100.0 |" in section
    assert "| T | 0 | – | 1 | 100.0 |" in section
    assert "| all | 2 | 50.0 | 2 | 100.0 |" in section
    assert crosstab_markdown(predictions.slice(4)) == ""


@pytest.mark.slow
def test_synthetic_facts_as_given_rationales_are_all_right_and_the_check_is_the_facts(tmp_path, lively_model_dir):
    """On the synthetic benchmark: given synthetic-facts reach their own conclusions; generated rationales are
    checked against facts.parquet exactly as an independent comparison says."""
    store = ArtifactStore(str(tmp_path))
    base = [f"eval.model={lively_model_dir}", *SETTINGS]
    versions = {}
    for mode, extra in (
        ("generated", []),
        ("given", ["eval.rationales=given", "eval.given_rationales=synthetic-facts"]),
    ):
        versions[mode] = run_pipeline(small_config(str(tmp_path), *base, *extra), ["evaluate"])["evaluate"]
    [benchmark] = store.list("benchmark")
    facts_table = pq.read_table(Path(store.path(benchmark.id)) / "facts.parquet").to_pylist()
    facts = {r["item_id"]: r["facts"] for r in facts_table}
    given = table(tmp_path, versions["given"], "predictions.parquet")
    assert {r["rationale_check"] for r in given} == {"right"}
    assert all(r["rationale"] == facts[r["item_id"]] for r in given)
    generated = table(tmp_path, versions["generated"], "predictions.parquet")
    expected = ["right" if reaches(r["rationale"], facts[r["item_id"]]) else "wrong" for r in generated]
    assert [r["rationale_check"] for r in generated] == expected
    summary = store.get(versions["given"]).read_bytes("summary.md").decode()
    right = Counter(r["gt_rank"] == 1 for r in given)
    assert f"| all | {len(given)} | {100 * right[True] / len(given):.1f} | 0 | – |" in summary
    assert np.isfinite([r["gt_score"] for r in given]).all()
