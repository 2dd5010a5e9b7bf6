"""`rge data check`: every row validated, all errors collected, exit status 0 / 1."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from rge_core.cli.data_cmd import app
from rge_core.data import check_folder

runner = CliRunner()


def test_clean_eval_folder_exits_0_with_summary(data_eval_folder):
    result = runner.invoke(app, ["check", str(data_eval_folder)])
    assert result.exit_code == 0, result.output
    assert "(eval)" in result.output and "MSCOCO_t2i" in result.output and "VOC2007" in result.output
    assert "3/3.0/3" in result.output and "4/4.0/4" in result.output
    assert "2 subsets, 8 rows" in result.output
    assert "images referenced: 7" in result.output and ": 0" in result.output and "OK" in result.output


def test_clean_train_folder_exits_0_and_covers_both_splits(data_train_folder):
    result = runner.invoke(app, ["check", str(data_train_folder), "--kind", "train"])
    assert result.exit_code == 0, result.output
    assert "(train)" in result.output and "diverse_instruction" in result.output
    assert "3 subsets, 14 rows" in result.output


def test_images_option_sets_the_image_root(data_train_folder, tmp_path):
    (data_train_folder / "images").rename(tmp_path / "images")
    assert runner.invoke(app, ["check", str(data_train_folder)]).exit_code == 1
    result = runner.invoke(app, ["check", str(data_train_folder), "--images", str(tmp_path)])
    assert result.exit_code == 0, result.output


def test_broken_eval_folder_collects_every_error(data_eval_folder, data_eval_columns, data_touch_images):
    columns = data_eval_columns("VOC2007", 30, 2, True)
    data_touch_images(data_eval_folder, columns)
    columns["tgt_img_path"] = [[""]] * 30  # 30 length mismatches
    pq.write_table(pa.table(columns), data_eval_folder / "VOC2007" / "test.parquet")
    # t{(row + candidate) % 4}.jpg: t0 is candidate 0/2/1/0 of rows 0/2/3/4; shards hold rows 0-2 and 3-4.
    (data_eval_folder / "MSCOCO_t2i" / "t0.jpg").unlink()

    report = check_folder(data_eval_folder)
    assert not report.ok and report.error_count == 4 + 30
    assert (
        report.errors[0].startswith("MSCOCO_t2i: ")
        and "row 0: field 'tgt_img_path': candidate 0: missing" in report.errors[0]
    )
    assert "test-00000-of-00002.parquet: row 2: field 'tgt_img_path': candidate 2: missing" in report.errors[1]
    assert "test-00001-of-00002.parquet: row 1: field 'tgt_img_path': candidate 0: missing" in report.errors[3]
    assert report.images_bad == 1 and report.images_referenced == 4 + 30

    result = runner.invoke(app, ["check", str(data_eval_folder)])
    assert result.exit_code == 1
    assert "34 errors" in result.output and "... and 14 more" in result.output
    assert "VOC2007/test.parquet: row 15: field 'tgt_img_path': 1 image paths but tgt_text has 2" in result.output
    assert "row 16:" not in result.output  # the printed list is capped at 20


def test_file_level_errors_do_not_stop_the_check(data_train_folder, data_train_columns, data_write_split):
    columns = data_train_columns("ImageNet_1K", 4, False)
    del columns["qry"]
    data_write_split(data_train_folder, "ImageNet_1K", "original", columns, "single")
    data_write_split(data_train_folder, "CIRR", "original", data_train_columns("CIRR", 5, True), "single")
    (data_train_folder / "WebQA" / "original" / "part-1.parquet").write_bytes(b"not parquet")
    report = check_folder(data_train_folder)
    assert report.error_count == 3
    assert report.errors[0].startswith("CIRR: split 'original' is stored in more than one layout")
    assert "ImageNet_1K: " in report.errors[1] and "field 'qry': missing column" in report.errors[1]
    assert "part-1.parquet: cannot read parquet" in report.errors[2]
    assert [(s.subset, s.split) for s in report.splits] == [
        ("ImageNet_1K", "original"),
        ("ImageNet_1K", "diverse_instruction"),
        ("WebQA", "original"),
    ]
    assert runner.invoke(app, ["check", str(data_train_folder)]).exit_code == 1


def test_wrong_kind_unknown_layout_and_missing_folder_exit_1(data_train_folder, tmp_path):
    result = runner.invoke(app, ["check", str(data_train_folder), "--kind", "eval"])
    assert result.exit_code == 1 and "no subset folder with split test" in result.output
    odd = tmp_path / "odd" / "sub"
    odd.mkdir(parents=True)
    pq.write_table(pa.table({"foo": [1]}), odd / "test.parquet")
    result = runner.invoke(app, ["check", str(tmp_path / "odd")])
    assert result.exit_code == 1 and "neither MMEB-train nor MMEB-eval" in result.output
    result = runner.invoke(app, ["check", str(tmp_path / "absent")])
    assert result.exit_code == 1 and "not a folder" in result.output


def test_a_corrupt_image_fails_the_check_by_name_unless_decoding_is_off(data_eval_folder):
    import os

    image = next(p for p in sorted(data_eval_folder.rglob("*")) if p.suffix in (".png", ".jpg") and p.is_file())
    image.write_bytes(os.urandom(256))  # random bytes under an image name
    rel = image.relative_to(data_eval_folder).as_posix()
    result = runner.invoke(app, ["check", str(data_eval_folder)])
    assert result.exit_code == 1 and f"corrupt image '{rel}'" in result.output
    assert runner.invoke(app, ["check", str(data_eval_folder), "--no-decode"]).exit_code == 0
