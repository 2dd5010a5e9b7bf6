"""No result from what was not verified. Reusing an artifact checks its files and its inputs' files against
their manifests (a repainted image inside the benchmark artifact, an edited results.json), and a data folder
given by path is identified by the content of its files: a byte changed with size and mtime kept is a new
version, unless data.fingerprint / eval.fingerprint is `stat`, which is blind to it by choice."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from rge_core.artifacts.local import local_folder
from rge_core.artifacts.store import ArtifactError, ArtifactStore
from rge_core.pipeline import run_pipeline
from tests.helpers import small_config

NO_REASONING = ["eval.reasoning=false", "eval.batch_size=8"]


def same_size_and_mtime_edit(path: Path) -> None:
    """Repaint the image at `path` in another colour, into a file of the same size, and put its modification
    time back: what a stat-only fingerprint cannot see."""
    stat, size = path.stat(), Image.open(path).size
    for red in range(256):
        buffer = io.BytesIO()
        Image.new("RGB", size, (red, 7, 7)).save(buffer, format="PNG")
        if len(buffer.getvalue()) == stat.st_size and buffer.getvalue() != path.read_bytes():
            break
    path.write_bytes(buffer.getvalue())
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("reuse")
    config = small_config(str(root), *NO_REASONING)
    model = run_pipeline(config, ["model"])["model"]
    config = small_config(str(root), *NO_REASONING, f"eval.model={model}")
    return config, ArtifactStore(str(root)), run_pipeline(config, ["evaluate"])["evaluate"]


def test_a_repainted_image_inside_the_benchmark_stops_the_reuse_of_its_eval(evaluated):
    config, store, version = evaluated
    assert run_pipeline(config, ["evaluate"])["evaluate"] == version  # reused while nothing changed
    [benchmark] = store.list("benchmark")
    image = next(sorted((local_folder(store.get(benchmark.id)) / "eval").rglob("*.png")).__iter__())
    original = image.read_bytes()
    Image.new("RGB", Image.open(image).size, (1, 2, 3)).save(image)
    try:
        with pytest.raises(ArtifactError, match=rf"artifact {benchmark.id}: eval/.*\.png was changed after"):
            run_pipeline(config, ["evaluate"])
    finally:
        image.write_bytes(original)
    assert run_pipeline(config, ["evaluate"])["evaluate"] == version


def test_an_edited_result_of_a_reused_artifact_is_refused(evaluated):
    config, store, version = evaluated
    results = Path(store.path(version)) / "results.json"
    original = results.read_text()
    data = json.loads(original)
    data["aggregates"]["overall"]["precision@1"] = 0.99
    results.write_text(json.dumps(data))
    try:
        with pytest.raises(ArtifactError, match=rf"artifact {version}: results.json was changed after"):
            run_pipeline(config, ["evaluate"])
    finally:
        results.write_text(original)


def test_a_data_folder_is_identified_by_content_unless_stat_is_chosen(tmp_path, data_train_folder):
    root = str(tmp_path / "artifacts")
    first = run_pipeline(small_config(root, f"data.source={data_train_folder}"), ["ingest"])["ingest"]
    stat = run_pipeline(small_config(root, f"data.source={data_train_folder}", "data.fingerprint=stat"), ["ingest"])
    assert stat["ingest"] != first  # another identity, so another version
    same_size_and_mtime_edit(data_train_folder / "images/CIRR/q1.jpg")
    assert run_pipeline(small_config(root, f"data.source={data_train_folder}"), ["ingest"])["ingest"] != first
    again = run_pipeline(small_config(root, f"data.source={data_train_folder}", "data.fingerprint=stat"), ["ingest"])
    assert again == stat  # blind to an edit that keeps size and mtime, as documented


def test_an_eval_folder_with_a_byte_changed_is_not_the_old_eval(evaluated, tmp_path, data_eval_folder):
    config, store, _ = evaluated
    extra = [f"eval.data={data_eval_folder}", f"eval.model={config.eval.model}", *NO_REASONING]
    first = run_pipeline(small_config(store.root, *extra), ["evaluate"])["evaluate"]
    same_size_and_mtime_edit(data_eval_folder / "VOC2007/q1.jpg")
    assert run_pipeline(small_config(store.root, *extra), ["evaluate"])["evaluate"] != first
