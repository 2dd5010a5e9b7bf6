"""Stage summaries (what the flow publishes), progress reports and Prefect artifact keys."""

from __future__ import annotations

import base64
import json
import re

from flows.publish import artifact_key
from rge_core import progress
from rge_core.artifacts.store import ArtifactStore
from rge_core.stages.summaries import artifact_summary, eval_score_rows, training_curve_markdown
from rge_core.training.curve import draw_training_curve
from rge_core.training.files import CURVE


def _records(steps: int) -> list[dict]:
    return [
        {"step": s, "loss": 10.0 / s, "lm_loss": 6.0, "emb_loss": 4.0 / s, "accuracy": 0.5, "samples_per_s": 17.0}
        for s in range(1, steps + 1)
    ]


def _table_steps(markdown: str) -> list[int]:
    return [int(line.split("|")[1]) for line in markdown.splitlines()[2:]]


def test_training_curve_keeps_about_ten_points_with_the_first_and_last_step():
    for steps in (1, 7, 10, 30, 301):
        shown = _table_steps(training_curve_markdown(_records(steps)))
        assert shown[0] == 1 and shown[-1] == steps and shown == sorted(set(shown))
        assert len(shown) <= 11 and (len(shown) >= 10 or len(shown) == steps)
    assert "| 30 | 0.3333 | 6 | 0.1333 | 0.5 | 17 |" in training_curve_markdown(_records(30))


def test_summaries_read_back_what_each_kind_of_artifact_holds(tmp_path):
    store = ArtifactStore(str(tmp_path))
    model = store.open("model", {"steps": 3}, inputs={}, code="c")
    model.write_text("metrics.jsonl", "".join(json.dumps(r) + "\n" for r in _records(3)))
    model.finish({"final_loss": 3.33})
    evaluation = store.open("eval", {"x": 1}, inputs={}, code="c")
    evaluation.write_text("summary.md", "| Dataset | P@1 |\n")
    evaluation.write_text("summary.csv", "dataset,precision@1 (%)\nSynthColor,40.6\nSynthVQA,12.5\n")
    evaluation.finish({})

    model_md = artifact_summary(store.get(model.version_id))
    assert model_md.startswith(f"# Model {model.version_id}") and "- **final_loss**: 3.33" in model_md
    assert _table_steps(model_md.split("## Training curve\n\n")[1]) == [1, 2, 3]
    assert artifact_summary(store.get(evaluation.version_id)).endswith("| Dataset | P@1 |\n")
    assert eval_score_rows(store.get(evaluation.version_id)) == [
        {"dataset": "SynthColor", "precision@1 (%)": "40.6"},
        {"dataset": "SynthVQA", "precision@1 (%)": "12.5"},
    ]


def test_the_train_summary_shows_the_training_curve_inline(tmp_path):
    records = _records(300)
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
    draw_training_curve(records, tmp_path / CURVE)
    png = (tmp_path / CURVE).read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) < 60_000  # kept small: the summary carries it inline
    store = ArtifactStore(str(tmp_path / "store"))
    model = store.open("model", {"steps": 300}, inputs={}, code="c")
    model.write_text("metrics.jsonl", metrics.read_text())
    model.write_bytes(CURVE, png)
    model.finish({})
    summary = artifact_summary(store.get(model.version_id))
    (encoded,) = re.findall(r"!\[training curve\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", summary)
    assert base64.b64decode(encoded) == png


def test_progress_reaches_listeners_only_while_they_listen():
    heard = []
    progress.report("train", 1, 10)
    with progress.listening(lambda *args: heard.append(args)):
        progress.report("train", 2, 10)
    progress.report("train", 3, 10)
    assert heard == [("train", 2, 10)]


def test_artifact_keys_use_lowercase_letters_digits_and_dashes_only():
    for parts in (("evaluate", "summary"), ("Eval", "scores"), ("curate_v2", "progress!")):
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", artifact_key(*parts))
    assert artifact_key("Eval", "scores") == "eval-scores"
