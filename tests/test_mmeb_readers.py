"""MMEB-train / MMEB-eval readers: layouts, ids, normalisation, and errors that name dataset/file/row/field."""

from __future__ import annotations

import os

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_schemas import SCHEMAS
from rge_core.data import DataError, list_subsets, read_mmeb_eval, read_mmeb_train, resolve_image

# ---------------------------------------------------------------- images


def test_resolve_image_accepts_paths_inside_the_root(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg").write_bytes(b"x")
    assert resolve_image(tmp_path, "a/x.jpg", where="w") == (tmp_path / "a" / "x.jpg").resolve()
    assert resolve_image(str(tmp_path), "a/../a/x.jpg", where="w").name == "x.jpg"


@pytest.mark.parametrize(
    ("rel", "pattern"),
    [
        ("../outside.jpg", "escapes the image root"),
        ("a/../../outside.jpg", "escapes the image root"),
        ("/etc/passwd", "absolute image path"),
        ("a/missing.jpg", "missing image 'a/missing.jpg'"),
        ("link/secret.jpg", "resolves outside the image root"),
        ("", "empty image path"),
    ],
)
def test_resolve_image_rejects_escapes_and_missing_files(tmp_path, rel, pattern):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"x")
    (tmp_path / "outside.jpg").write_bytes(b"x")
    os.symlink(outside, root / "link")
    with pytest.raises(DataError, match=rf"^VOC2007: test\.parquet: row 3: field 'qry_img_path': .*{pattern}"):
        resolve_image(root, rel, where="VOC2007: test.parquet: row 3: field 'qry_img_path'")


# ---------------------------------------------------------------- layout


def test_list_subsets_ignores_folders_without_parquet(data_train_folder, data_eval_folder):
    (data_train_folder / "images" / "stray.parquet").write_bytes(b"")  # a file, not a split
    assert list_subsets(data_train_folder) == ["CIRR", "ImageNet_1K", "WebQA"]
    assert list_subsets(data_train_folder, ("diverse_instruction",)) == ["ImageNet_1K"]
    assert list_subsets(data_eval_folder) == ["MSCOCO_t2i", "VOC2007"]


def test_split_stored_in_two_layouts_is_an_error(data_train_folder, data_write_split, data_train_columns):
    data_write_split(data_train_folder, "WebQA", "original", data_train_columns("WebQA", 3, False), "single")
    with pytest.raises(DataError, match=r"WebQA: split 'original' is stored in more than one layout"):
        read_mmeb_train(data_train_folder)


# ---------------------------------------------------------------- MMEB-train


def test_train_reader_reads_all_three_layouts(data_train_folder):
    pairs, rejects = read_mmeb_train(data_train_folder)
    assert rejects == []
    assert pairs.schema.equals(SCHEMAS["pairs"])
    ids = pairs.column("pair_id").to_pylist()
    assert ids == [f"CIRR/original/{i}" for i in range(5)] + [f"ImageNet_1K/original/{i}" for i in range(4)] + [
        f"WebQA/original/{i}" for i in range(3)
    ]
    row = pairs.to_pylist()[7]  # ImageNet_1K row 2, single-file layout without neg columns
    assert row == {
        "pair_id": "ImageNet_1K/original/2",
        "subset": "ImageNet_1K",
        "split": "original",
        "qry_text": "<|image_1|>\nWhat is in image 2?",
        "qry_image": "images/ImageNet_1K/q2.jpg",
        "pos_text": "answer 2",
        "pos_image": "",
        "neg_text": "",
        "neg_image": "",
    }
    cirr = pairs.filter(pa.compute.equal(pairs["subset"], "CIRR"))
    assert cirr.column("neg_text").to_pylist() == ["", "wrong 1", "", "wrong 3", ""]  # None -> ""
    assert pairs.column("qry_image").to_pylist()[-1] == "images/WebQA/q2.jpg"  # nested layout, 2nd shard


def test_train_reader_diverse_instruction_split_and_subset_filter(data_train_folder):
    pairs, _ = read_mmeb_train(data_train_folder, split="diverse_instruction")
    assert pairs.column("pair_id").to_pylist() == [
        "ImageNet_1K/diverse_instruction/0",
        "ImageNet_1K/diverse_instruction/1",
    ]
    assert set(pairs.column("qry_text").to_pylist()) == {"<|image_1|>\nName the object shown."}
    pairs, _ = read_mmeb_train(data_train_folder, subsets=["WebQA"])
    assert set(pairs.column("subset").to_pylist()) == {"WebQA"}
    with pytest.raises(DataError, match=r"no split diverse_instruction for \['CIRR'\]"):
        read_mmeb_train(data_train_folder, split="diverse_instruction", subsets=["CIRR"])
    with pytest.raises(ValueError, match="split must be one of"):
        read_mmeb_train(data_train_folder, split="test")


def _break_cirr(folder, write_split, columns_fn, **changes):
    columns = {**columns_fn("CIRR", 5, True), **changes}
    for path in (folder / "CIRR").glob("*.parquet"):
        path.unlink()
    write_split(folder, "CIRR", "original", columns, "shards")
    return folder


def test_train_reader_raises_naming_file_row_field(data_train_folder, data_write_split, data_train_columns):
    _break_cirr(
        data_train_folder,
        data_write_split,
        data_train_columns,
        qry=["q"] * 4 + [""],
        qry_image_path=["images/CIRR/q0.jpg"] * 4 + [None],
    )
    with pytest.raises(DataError, match=r"^CIRR: .*original-00001-of-00002\.parquet: row 1: field 'qry': empty query"):
        read_mmeb_train(data_train_folder)


def test_train_reader_skip_mode_counts_rejects_and_keeps_ids_stable(
    data_train_folder, data_write_split, data_train_columns
):
    _break_cirr(
        data_train_folder,
        data_write_split,
        data_train_columns,
        qry=["q", "", "q", "q", "q"],
        qry_image_path=["images/CIRR/q0.jpg", "", "gone.jpg", "../x.jpg", ""],
        pos_text=["p", "", "p", "p", ""],  # row 1 has two problems: still one reject
    )
    pairs, rejects = read_mmeb_train(data_train_folder, on_error="skip")
    assert [(r.item_id, r.field) for r in rejects] == [
        ("CIRR/original/1", "qry"),
        ("CIRR/original/2", "qry_image_path"),
        ("CIRR/original/3", "qry_image_path"),
        ("CIRR/original/4", "pos_text"),
    ]
    assert "missing image 'gone.jpg'" in rejects[1].message and "escapes" in rejects[2].message
    assert rejects[2].file.endswith("original-00001-of-00002.parquet") and rejects[2].row == 0
    ids = pairs.column("pair_id").to_pylist()
    assert "CIRR/original/0" in ids and not any(i.startswith("CIRR/original/") and i != "CIRR/original/0" for i in ids)
    assert len(ids) == 12 - 4


def test_train_structural_errors_raise_even_in_skip_mode(data_train_folder, data_write_split, data_train_columns):
    columns = data_train_columns("WebQA", 3, False)
    del columns["pos_image_path"]
    for path in (data_train_folder / "WebQA" / "original").glob("*.parquet"):
        path.unlink()
    data_write_split(data_train_folder, "WebQA", "original", columns, "nested")
    with pytest.raises(DataError, match=r"^WebQA: .*part-0\.parquet: field 'pos_image_path': missing column"):
        read_mmeb_train(data_train_folder, on_error="skip")
    _break_cirr(data_train_folder, data_write_split, data_train_columns, pos_text=[1, 2, 3, 4, 5])
    with pytest.raises(DataError, match=r"^CIRR: .*field 'pos_text': type int64, expected string"):
        read_mmeb_train(data_train_folder, subsets=["CIRR"], on_error="skip")


def test_train_images_relative_to_configurable_root(data_train_folder, tmp_path):
    with pytest.raises(DataError, match="missing image"):
        read_mmeb_train(data_train_folder, image_root=tmp_path / "elsewhere")
    (data_train_folder / "images").rename(tmp_path / "images")
    pairs, _ = read_mmeb_train(data_train_folder, image_root=tmp_path)
    assert pairs.num_rows == 12
    pairs, _ = read_mmeb_train(data_train_folder, check_images=False)
    assert pairs.num_rows == 12


def test_train_check_images_false_still_rejects_escaping_paths(data_train_folder, data_write_split, data_train_columns):
    _break_cirr(data_train_folder, data_write_split, data_train_columns, qry_image_path=["/abs.jpg"] + [""] * 4)
    with pytest.raises(DataError, match=r"row 0: field 'qry_image_path': absolute image path"):
        read_mmeb_train(data_train_folder, check_images=False)


def test_train_reader_on_fsspec_folder(data_train_folder):
    fs = fsspec.filesystem("memory")
    for path in data_train_folder.rglob("*.parquet"):
        fs.pipe(f"/mmeb-train-{id(fs)}/{path.relative_to(data_train_folder)}", path.read_bytes())
    url = f"memory:///mmeb-train-{id(fs)}"
    pairs, _ = read_mmeb_train(url, check_images=False)
    assert pairs.num_rows == 12
    with pytest.raises(DataError, match="needs a local image root"):
        read_mmeb_train(url)
    assert read_mmeb_train(url, image_root=data_train_folder)[0].num_rows == 12


# ---------------------------------------------------------------- MMEB-eval


def test_eval_reader_reads_items_in_order(data_eval_folder):
    items = read_mmeb_eval(data_eval_folder)
    assert items.schema.equals(SCHEMAS["eval_items"])
    assert items.column("item_id").to_pylist() == [f"MSCOCO_t2i/test/{i}" for i in range(5)] + [
        f"VOC2007/test/{i}" for i in range(3)
    ]
    voc = items.to_pylist()[5]
    assert voc["qry_text"].startswith("<|image_1|>") and voc["qry_image"] == "VOC2007/q0.jpg"
    assert voc["tgt_text"] == ["class 0-0", "class 0-1", "class 0-2", "class 0-3"] and voc["tgt_image"] == [""] * 4
    assert items.to_pylist()[4]["tgt_image"] == ["MSCOCO_t2i/t0.jpg", "MSCOCO_t2i/t1.jpg", "MSCOCO_t2i/t2.jpg"]
    assert read_mmeb_eval(data_eval_folder, datasets=["VOC2007"]).num_rows == 3


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"tgt_img_path": None}, r"field 'tgt_img_path': missing column"),
        ({"tgt_text": ["a", "b", "c"]}, r"field 'tgt_text': type string, expected a list of strings"),
        (
            {"tgt_img_path": [[""] * 4, [""] * 3, [""] * 4]},
            r"row 1: field 'tgt_img_path': 3 image paths but tgt_text has 4",
        ),
        (
            {"tgt_text": [["a"], [], ["c"]], "tgt_img_path": [[""], [], [""]]},
            r"row 1: field 'tgt_text': empty candidate list",
        ),
        (
            {"tgt_text": [["a", ""], ["b", "c"], ["d", "e"]], "tgt_img_path": [[""] * 2] * 3},
            r"row 0: field 'tgt_text': a candidate has neither",
        ),
        (
            {"qry_text": ["q", "q", ""], "qry_img_path": ["VOC2007/q0.jpg", "VOC2007/q1.jpg", None]},
            r"row 2: field 'qry_text': query has neither",
        ),
        (
            {"qry_img_path": ["VOC2007/q0.jpg", "VOC2007/nope.jpg", "VOC2007/q2.jpg"]},
            r"row 1: field 'qry_img_path': missing image 'VOC2007/nope.jpg'",
        ),
        (
            {"qry_img_path": ["VOC2007/q0.jpg", "VOC2007/q1.jpg", "../../etc/passwd"]},
            r"row 2: field 'qry_img_path': image path '../../etc/passwd' escapes",
        ),
        (
            {"tgt_img_path": [[""] * 4, ["", "", "/abs.jpg", ""], [""] * 4]},
            r"row 1: field 'tgt_img_path': candidate 2: absolute image path",
        ),
    ],
)
def test_eval_reader_errors_name_dataset_file_row_field(data_eval_folder, data_eval_columns, changes, pattern):
    columns = {k: v for k, v in {**data_eval_columns("VOC2007", 3, 4, True), **changes}.items() if v is not None}
    pq.write_table(pa.table(columns), data_eval_folder / "VOC2007" / "test.parquet")
    with pytest.raises(DataError, match=rf"^VOC2007: {data_eval_folder}/VOC2007/test\.parquet: {pattern}"):
        read_mmeb_eval(data_eval_folder)


def test_eval_reader_missing_candidate_image_in_second_shard(data_eval_folder):
    (data_eval_folder / "MSCOCO_t2i" / "t3.jpg").unlink()
    # t3 first appears in row 1 of the split; rows 0-2 are in shard 0 (3 rows per shard).
    with pytest.raises(
        DataError, match=r"test-00000-of-00002\.parquet: row 1: field 'tgt_img_path': candidate 2: missing image"
    ) as err:
        read_mmeb_eval(data_eval_folder)
    assert "more problems" in str(err.value)
    assert read_mmeb_eval(data_eval_folder, check_images=False).num_rows == 8


def test_eval_reader_symlink_escape(data_eval_folder, tmp_path):
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "q1.jpg").write_bytes(b"x")
    (data_eval_folder / "VOC2007" / "q1.jpg").unlink()
    os.symlink(tmp_path / "secret" / "q1.jpg", data_eval_folder / "VOC2007" / "q1.jpg")
    with pytest.raises(DataError, match=r"row 1: field 'qry_img_path': image path 'VOC2007/q1.jpg' resolves outside"):
        read_mmeb_eval(data_eval_folder)


def test_eval_reader_unknown_dataset_and_empty_folder(data_eval_folder, tmp_path):
    with pytest.raises(DataError, match=r"no split test for \['ImageNet-1K'\]; present: \['MSCOCO_t2i', 'VOC2007'\]"):
        read_mmeb_eval(data_eval_folder, datasets=["ImageNet-1K"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no subset folder with split test"):
        read_mmeb_eval(tmp_path / "empty")
    with pytest.raises(DataError, match="not a folder"):
        read_mmeb_eval(tmp_path / "absent")
