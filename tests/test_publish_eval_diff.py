"""The flow publishes an eval's diff.md as its own markdown artifact, and only when the eval has one. Prefect's
artifact calls are recorded instead of sent (tests/test_flows.py runs them against a real server)."""

from __future__ import annotations

import pytest

import flows.publish as publish
from rge_core.artifacts.store import ArtifactStore


@pytest.fixture
def published(monkeypatch) -> list[dict]:
    calls: list[dict] = []
    for name in ("create_markdown_artifact", "create_link_artifact", "create_table_artifact"):
        monkeypatch.setattr(publish, name, lambda _name=name, **kwargs: calls.append({"call": _name, **kwargs}))
    return calls


def _eval(store: ArtifactStore, diff: str | None) -> str:
    writer = store.open("eval", {"diff": diff is not None}, inputs={}, code="c")
    writer.write_text("summary.md", "| Dataset | P@1 |\n")
    writer.write_text("summary.csv", "dataset,precision@1 (%)\nSynthColor,40.6\n")
    if diff is not None:
        writer.write_text("diff.md", diff)
    writer.finish({})
    return writer.version_id


def test_the_diff_is_published_when_the_eval_has_one(tmp_path, published):
    store = ArtifactStore(str(tmp_path))
    diff = "## eval-a vs eval-b: per dataset (%)\n\n| Dataset | b | c | p (exact McNemar) |\n"
    with_diff, without = _eval(store, diff), _eval(store, None)
    publish.publish_stage("evaluate", store.get(with_diff), reused=False)
    [shown] = [c for c in published if c.get("key") == "eval-diff"]
    assert shown["call"] == "create_markdown_artifact" and shown["markdown"] == diff
    assert with_diff in shown["description"]
    published.clear()
    publish.publish_stage("evaluate", store.get(without), reused=True)
    assert "eval-diff" not in {c.get("key") for c in published} and "eval-scores" in {c.get("key") for c in published}
