"""Shared fixtures. Data fixtures (prefix `data_`) build small MMEB-format folders with real parquet files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

# The test support modules get pytest's assert messages too (it rewrites only test modules by default).
pytest.register_assert_rewrite("tests.helpers", "tests.benchmark_output", "tests.dockerfile")

_IMAGE_COLUMNS = ("qry_img_path", "tgt_img_path", "qry_image_path", "pos_image_path", "neg_image_path")


def _write_split(
    folder: Path, subset: str, split: str, columns: dict, layout: str = "single", shards: int = 2
) -> list[Path]:
    """Write one split in an MMEB layout: "single" <split>.parquet, "shards" <split>-0000i-of-0000n.parquet,
    "nested" <split>/part-i.parquet. Rows are spread over the shards in order."""
    table = pa.table(columns)
    if layout == "single":
        paths, parts = [folder / subset / f"{split}.parquet"], [table]
    else:
        step = -(-table.num_rows // shards)
        parts = [table.slice(i * step, step) for i in range(shards)]
        names = [f"{split}-{i:05d}-of-{shards:05d}.parquet" for i in range(shards)]
        if layout == "nested":
            names = [f"{split}/part-{i}.parquet" for i in range(shards)]
        paths = [folder / subset / name for name in names]
    for path, part in zip(paths, parts, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(part, path)
    return paths


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _touch_images(root: Path, columns: dict) -> None:
    """Create a tiny real PNG for every image path referenced in `columns`."""
    png = _png()
    for name in _IMAGE_COLUMNS:
        for value in columns.get(name, []):
            for path in value if isinstance(value, list) else [value]:
                if path:
                    (root / path).parent.mkdir(parents=True, exist_ok=True)
                    (root / path).write_bytes(png)


def _eval_columns(dataset: str, rows: int, candidates: int, image_queries: bool) -> dict:
    """MMEB-eval rows: image query + text candidates, or text query + image candidates."""
    if image_queries:
        return {
            "qry_text": ["<|image_1|>\nRepresent the given image for classification"] * rows,
            "qry_img_path": [f"{dataset}/q{r}.jpg" for r in range(rows)],
            "tgt_text": [[f"class {r}-{c}" for c in range(candidates)] for r in range(rows)],
            "tgt_img_path": [[""] * candidates for _ in range(rows)],
        }
    return {
        "qry_text": [f"Find an image of thing {r}" for r in range(rows)],
        "qry_img_path": [""] * rows,
        "tgt_text": [["<|image_1|>\nRepresent the given image."] * candidates for _ in range(rows)],
        "tgt_img_path": [[f"{dataset}/t{(r + c) % 4}.jpg" for c in range(candidates)] for r in range(rows)],
    }


def _train_columns(subset: str, rows: int, with_neg: bool) -> dict:
    columns = {
        "qry": [f"<|image_1|>\nWhat is in image {r}?" for r in range(rows)],
        "qry_image_path": [f"images/{subset}/q{r}.jpg" for r in range(rows)],
        "pos_text": [f"answer {r}" for r in range(rows)],
        "pos_image_path": [""] * rows,
    }
    if with_neg:
        columns["neg_text"] = [f"wrong {r}" if r % 2 else None for r in range(rows)]
        columns["neg_image_path"] = [None] * rows
    return columns


@pytest.fixture
def data_eval_columns():
    return _eval_columns


@pytest.fixture
def data_train_columns():
    return _train_columns


@pytest.fixture
def data_write_split():
    return _write_split


@pytest.fixture
def data_touch_images():
    return _touch_images


@pytest.fixture
def data_eval_folder(tmp_path: Path) -> Path:
    """Clean MMEB-eval folder: VOC2007 (3 rows x 4 candidates, one file), MSCOCO_t2i (5 rows x 3
    candidates, two shards); images under the folder itself."""
    folder = tmp_path / "mmeb-eval"
    for dataset, rows, candidates, image_queries, layout in (
        ("VOC2007", 3, 4, True, "single"),
        ("MSCOCO_t2i", 5, 3, False, "shards"),
    ):
        columns = _eval_columns(dataset, rows, candidates, image_queries)
        _write_split(folder, dataset, "test", columns, layout)
        _touch_images(folder, columns)
    return folder


@pytest.fixture
def data_train_folder(tmp_path: Path) -> Path:
    """Clean MMEB-train folder, one subset per layout: ImageNet_1K (single file, no neg columns, also a
    diverse_instruction split), CIRR (two shards, neg columns with None), WebQA (files inside original/)."""
    folder = tmp_path / "mmeb-train"
    for subset, rows, with_neg, layout in (
        ("ImageNet_1K", 4, False, "single"),
        ("CIRR", 5, True, "shards"),
        ("WebQA", 3, False, "nested"),
    ):
        columns = _train_columns(subset, rows, with_neg)
        _write_split(folder, subset, "original", columns, layout)
        _touch_images(folder, columns)
    diverse = _train_columns("ImageNet_1K", 2, False)
    diverse["qry"] = ["<|image_1|>\nName the object shown."] * 2
    _write_split(folder, "ImageNet_1K", "diverse_instruction", diverse, "shards", shards=1)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen2-VL checkpoint, built once per test session."""
    from rge_core.model.tiny import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny-qwen2-vl"), arch="qwen2-vl", seed=0)


@pytest.fixture(scope="session")
def lively_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model with stronger residual branches. Its tied embeddings otherwise make greedy decoding
    repeat the prompt's last token ("\\n") whatever the prompt, which would make greedy checks vacuous."""
    import shutil

    import torch
    from transformers import AutoModelForImageTextToText

    out = tmp_path_factory.mktemp("lively")
    shutil.copytree(tiny_model_dir, out, dirs_exist_ok=True)
    model = AutoModelForImageTextToText.from_pretrained(out)
    generator = torch.Generator().manual_seed(0)
    branches = ("v_proj.weight", "o_proj.weight", "up_proj.weight", "down_proj.weight")
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "language_model.layers" in name and name.endswith(branches):
                param.normal_(0.0, 0.1, generator=generator)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_rge(tiny_model_dir):
    from rge_core.model.rge_model import RGEModel

    return RGEModel.load(str(tiny_model_dir))


@pytest.fixture(autouse=True, scope="session")
def private_rge_cache(tmp_path_factory):
    """Keep the embedding/artifact read-back cache of the test session out of the project's ./.cache."""
    import os

    previous = os.environ.get("RGE_CACHE")
    os.environ["RGE_CACHE"] = str(tmp_path_factory.mktemp("rge-cache"))
    yield
    if previous is None:
        os.environ.pop("RGE_CACHE", None)
    else:
        os.environ["RGE_CACHE"] = previous


def zip_folder(archive: Path, staged: Path) -> None:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(staged.rglob("*")):
            zipped.write(path, path.relative_to(staged).as_posix())


@pytest.fixture
def hub_snapshots(tmp_path, data_write_split, data_train_columns, data_eval_columns, data_touch_images):
    """{repo id: folder laid out as its Hub snapshot}. MMEB-train rows name `images/<subset>/...` and each
    `images_zip/<subset>.zip` holds `<subset>/...` (its unzip script extracts into images/); MMEB-eval rows
    name `<dataset>/...` and the one `images.zip` holds exactly those paths."""
    train, evaluation, staged = tmp_path / "hub-train", tmp_path / "hub-eval", tmp_path / "staged"
    for subset, rows in (("CIRR", 3), ("ImageNet_1K", 2)):
        columns = data_train_columns(subset, rows, True)
        for split in ("original", "diverse_instruction", "train"):  # "train": on the Hub, unused by the readers
            data_write_split(train, subset, split, columns, "shards", shards=1)
        data_touch_images(staged / subset, columns)
        zip_folder(train / "images_zip" / f"{subset}.zip", staged / subset / "images")
    (train / "unzip_file.py").write_text("# the Hub's own unzip script\n")
    for dataset, rows, image_queries in (("VOC2007", 3, True), ("MSCOCO_t2i", 4, False)):
        columns = data_eval_columns(dataset, rows, 3, image_queries)
        data_write_split(evaluation, dataset, "test", columns, "shards", shards=1)
        data_touch_images(staged / "eval", columns)
    zip_folder(evaluation / "images.zip", staged / "eval")
    (evaluation / "README.md").write_text("MMEB-eval\n")
    return {"TIGER-Lab/MMEB-train": train, "TIGER-Lab/MMEB-eval": evaluation}
