"""MMEB laid out exactly as the Hugging Face Hub serves it, made from the synthetic benchmark's scenes, so the
real path (fetch, the shipped preset, the release's rewrite files) can be rehearsed on a CPU (`make rehearsal`):

    OUT/MMEB-train/<Subset>/{original,diverse_instruction,train}-00000-of-00001.parquet
    OUT/MMEB-train/images_zip/<Subset>.zip   members <Subset>/Train/..., while the rows say images/<Subset>/Train/...
    OUT/MMEB-eval/<Dataset>/test-00000-of-00001.parquet
    OUT/MMEB-eval/images.zip                 one archive, members and rows <Dataset>/...
    OUT/RGE/src/*.yaml                       rewrite files in the release's format (as a clone of the release)
    OUT/reference-rationales.parquet         the scenes' facts keyed by MMEB-train pair id, for curating without
                                             a generator (curation.generator: reference; benchmarks/gpu_check.py)

Each synthetic subset stands in for an MMEB set of its kind under that set's name (train and eval spell some
differently, as the Hub does); MMEB-eval also holds CIFAR-100, which is not one of MMEB-V1's 36 sets.

    rge synth OUT --hub-layout
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rge_core.synth.writer import write_benchmark

# synthetic subset -> (MMEB-train folder, MMEB-eval folder) of the set it stands in for
STAND_INS = {
    "SynthColor": ("ImageNet_1K", "ImageNet-1K"),
    "SynthCount": ("VOC2007", "VOC2007"),
    "SynthVQA": ("OK-VQA", "OK-VQA"),
    "SynthT2I": ("MSCOCO_t2i", "MSCOCO_t2i"),
    "SynthI2T": ("MSCOCO_i2t", "MSCOCO_i2t"),
    "SynthGround": ("MSCOCO", "MSCOCO"),
}
NOT_MMEB_V1 = ("CIFAR-100", "SynthColor")  # the Hub's extra eval set, and what stands in for it (another seed)
TRAIN_SPLITS = ("original", "diverse_instruction", "train")
REFERENCE = "reference-rationales.parquet"
SHARD = "-00000-of-00001.parquet"
_IMAGE_COLUMNS = ("qry_image_path", "pos_image_path", "neg_image_path", "qry_img_path", "tgt_img_path")

# The release's rewrite files in its own format (src/dataset.py apply_simple_text_ops): value_map, original and
# replacement, prefix_add, suffix_add per dataset; ensure_trailing_newline then ends every text with "\n".
_QUERY_RULES = """\
ImageNet_1K:
  original: "Represent the given image for classification: "
  replacement: "Classify the image: "
OK-VQA:
  prefix_add: "Answer from the image. "
MSCOCO_t2i:
  original: "Find me an everyday image that matches the given caption"
  replacement: "Retrieve the image described by the caption"
"""
REWRITES = {
    "instruction_replacements.yaml": _QUERY_RULES,
    # the eval file names the sets as MMEB-eval's folders spell them
    "instruction_replacements-eval.yaml": _QUERY_RULES.replace("ImageNet_1K:", "ImageNet-1K:"),
    "candidate_replacements.yaml": """\
VOC2007:
  value_map:
    "one": "one shape"
    "two": "two shapes"
ImageNet_1K:
  suffix_add: " (the colour of the largest shape)"
""",
}


def write_hub_snapshot(
    out: Path, *, seed: int = 0, train_rows: int = 16, eval_rows: int = 12, candidates: int = 8, image_size: int = 64
) -> Path:
    """Write MMEB-train, MMEB-eval and the release's rewrite files under `out` (see the module docstring)."""
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="rge-hub-") as scratch:
        main, extra = Path(scratch) / "main", Path(scratch) / "extra"
        for folder, benchmark_seed, train_per_subset in ((main, seed, train_rows), (extra, seed + 1, 0)):
            write_benchmark(
                folder,
                seed=benchmark_seed,
                train_per_subset=train_per_subset,
                eval_per_subset=eval_rows,
                candidates=candidates,
                image_size=image_size,
            )
        for synthetic, (train_name, _) in STAND_INS.items():
            _train_subset(main / "train", synthetic, train_name, out / "MMEB-train")
        _reference_rationales(main / "facts.parquet", out / REFERENCE)
        sets = {eval_name: (main / "eval", synthetic) for synthetic, (_, eval_name) in STAND_INS.items()}
        sets[NOT_MMEB_V1[0]] = (extra / "eval", NOT_MMEB_V1[1])
        (out / "MMEB-eval").mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out / "MMEB-eval" / "images.zip", "w") as zipped:
            for name, (folder, synthetic) in sorted(sets.items()):
                _eval_subset(folder, synthetic, name, out / "MMEB-eval", zipped)
    (out / "MMEB-train" / "README.md").write_text("MMEB-train, Hub layout (rge synth --hub-layout)\n")
    (out / "MMEB-eval" / "README.md").write_text("MMEB-eval, Hub layout (rge synth --hub-layout)\n")
    release = out / "RGE" / "src"
    release.mkdir(parents=True, exist_ok=True)
    for name, text in REWRITES.items():
        (release / name).write_text(text)
    return out


def _reference_rationales(facts: Path, out: Path) -> None:
    """The train rows' facts under their pair ids in the snapshot (`<MMEB name>/original/<row>`)."""
    table = pq.read_table(facts)
    table = table.filter(pc.equal(table.column("split"), "train"))
    names = {synthetic: train_name for synthetic, (train_name, _) in STAND_INS.items()}
    pair_ids = [
        f"{names[subset]}/{rest}"
        for subset, rest in (item.split("/", 1) for item in table.column("item_id").to_pylist())
    ]
    pq.write_table(pa.table({"pair_id": pair_ids, "rationale": table.column("facts")}), out)


def _renamed(table: pa.Table, synthetic: str, prefix: str) -> pa.Table:
    """`images/<synthetic>/x.png` in every image column becomes `<prefix>x.png`."""
    old = f"images/{synthetic}/"
    for name in _IMAGE_COLUMNS:
        if name in table.column_names:
            column = table.column(name).combine_chunks()
            if pa.types.is_list(column.type):
                column = pa.ListArray.from_arrays(column.offsets, pc.replace_substring(column.values, old, prefix))
            else:
                column = pc.replace_substring(column, old, prefix)
            table = table.set_column(table.column_names.index(name), name, column)
    return table


def _train_subset(train: Path, synthetic: str, name: str, dest: Path) -> None:
    """Rows say images/<name>/Train/...; images_zip/<name>.zip holds <name>/Train/... (the Hub's unzip script
    extracts it into images/)."""
    table = _renamed(pq.read_table(train / synthetic / "original.parquet"), synthetic, f"images/{name}/Train/")
    (dest / name).mkdir(parents=True, exist_ok=True)
    for split in TRAIN_SPLITS:
        pq.write_table(table, dest / name / f"{split}{SHARD}")
    (dest / "images_zip").mkdir(exist_ok=True)
    with zipfile.ZipFile(dest / "images_zip" / f"{name}.zip", "w") as zipped:
        for image in sorted((train / "images" / synthetic).iterdir()):
            zipped.write(image, f"{name}/Train/{image.name}")


def _eval_subset(evaluation: Path, synthetic: str, name: str, dest: Path, zipped: zipfile.ZipFile) -> None:
    """Rows and members of the one images.zip say <name>/..."""
    table = _renamed(pq.read_table(evaluation / synthetic / "test.parquet"), synthetic, f"{name}/")
    (dest / name).mkdir(parents=True, exist_ok=True)
    pq.write_table(table, dest / name / f"test{SHARD}")
    for image in sorted((evaluation / "images" / synthetic).iterdir()):
        zipped.write(image, f"{name}/{image.name}")
