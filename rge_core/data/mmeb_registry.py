"""The MMEB-V1 evaluation registry: the 36 datasets with their category and IND/OOD split, and the published
reference numbers (in percent, as published) that our results are compared with.

Dataset names are canonical as in the MMEB paper; the Hugging Face MMEB-eval folders spell some with
underscores (`ImageNet_1K`), so lookups accept '-' and '_' interchangeably.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

CATEGORIES = ("classification", "vqa", "retrieval", "grounding")
SPLITS = ("IND", "OOD")

_BY_CATEGORY = {
    "classification": (
        "ImageNet-1K",
        "N24News",
        "HatefulMemes",
        "VOC2007",
        "SUN397",
        "Place365",
        "ImageNet-A",
        "ImageNet-R",
        "ObjectNet",
        "Country211",
    ),
    "vqa": (
        "OK-VQA",
        "A-OKVQA",
        "DocVQA",
        "InfographicsVQA",
        "ChartQA",
        "Visual7W",
        "ScienceQA",
        "VizWiz",
        "GQA",
        "TextVQA",
    ),
    "retrieval": (
        "VisDial",
        "CIRR",
        "VisualNews_t2i",
        "VisualNews_i2t",
        "MSCOCO_t2i",
        "MSCOCO_i2t",
        "NIGHTS",
        "WebQA",
        "FashionIQ",
        "Wiki-SS-NQ",
        "OVEN",
        "EDIS",
    ),
    "grounding": ("MSCOCO", "RefCOCO", "RefCOCO-Matching", "Visual7W-Pointing"),
}
_IND = {
    "ImageNet-1K",
    "N24News",
    "HatefulMemes",
    "SUN397",
    "VOC2007",
    "InfographicsVQA",
    "ChartQA",
    "A-OKVQA",
    "DocVQA",
    "OK-VQA",
    "Visual7W",
    "VisDial",
    "CIRR",
    "NIGHTS",
    "WebQA",
    "VisualNews_i2t",
    "VisualNews_t2i",
    "MSCOCO_i2t",
    "MSCOCO_t2i",
    "MSCOCO",
}

# name -> (category, split), in the paper's table order.
MMEB_DATASETS: dict[str, tuple[str, str]] = {
    name: (category, "IND" if name in _IND else "OOD") for category, names in _BY_CATEGORY.items() for name in names
}

# Published MMEB-V1 numbers (percent). RGE-3B: Qwen2.5-VL-3B + LoRA/DoRA, arXiv 2511.16150; its eval used the
# reference code's rewritten instructions. The baseline is the same model trained without reasoning.
PUBLISHED: dict[str, dict[str, float]] = {
    "RGE-3B (published)": {
        "overall": 70.1,
        "classification": 64.4,
        "vqa": 67.8,
        "retrieval": 70.2,
        "grounding": 90.1,
        "IND": 75.3,
        "OOD": 63.7,
    },
    "Baseline, no reasoning (published)": {"overall": 65.2},
}
# sha256 of the RGE release's eval rewrite files (github.com/MCG-NJU/RGE at 6074444, src/; its
# scripts/evaluate.sh passes them): the published RGE-3B numbers were measured with these texts. The files
# are the authors' and are not copied here; docs/evaluation.md says where to get them.
RELEASE_REWRITES = {
    "query": ("instruction_replacements-eval.yaml", "36b915f5eefd6ca2c16b8d70f1e92420517f3775f8e853b97f6e4fae390088b4"),
    "candidate": ("candidate_replacements.yaml", "2300c7ca619b527918a6fd4f61b4adfe28aec4e12c996027ef518d3d3454757f"),
}
# Overall MMEB-V1 scores (percent) of peer embedders.
PEERS: dict[str, float] = {
    "VLM2Vec-2B": 59.3,
    "VLM2Vec-7B": 65.8,
    "MoCa-3B": 67.5,
    "B3-2B": 68.1,
    "RGE-3B": 70.1,
    "UniME-7B": 70.7,
    "MoCa-7B": 71.5,
    "B3-7B": 72.0,
    "QQMM-8B": 72.2,
    "Think-Then-Embed (72B reasoner)": 78.5,
}


def spelling_key(name: str) -> str:
    """One key for both spellings of a dataset name ('ImageNet_1K' and 'ImageNet-1K')."""
    return name.replace("_", "-")


_BY_KEY = {spelling_key(name): name for name in MMEB_DATASETS}


def canonical_name(name: str) -> str | None:
    """The MMEB name of `name` in either spelling ('ImageNet_1K' -> 'ImageNet-1K'); None if not an MMEB dataset."""
    return name if name in MMEB_DATASETS else _BY_KEY.get(spelling_key(name))


OTHER = "other"  # category of a non-MMEB dataset that no setting places


def dataset_info(name: str, extra: Mapping[str, str] | None = None) -> tuple[str, str, str]:
    """(canonical name, category, split) of a dataset. MMEB datasets come from the registry; others (e.g. the
    synthetic benchmark's, or any MMEB-format folder's) take their category from `extra` (name -> category,
    eval.categories) or "other", and split "" (scoring.group_members says which means they enter)."""
    canonical = canonical_name(name)
    if canonical is not None:
        return (canonical, *MMEB_DATASETS[canonical])
    return name, (extra or {}).get(name, OTHER), ""


def missing_datasets(present: Iterable[str]) -> list[str]:
    """The MMEB-V1 datasets (canonical names, registry order) not in `present` (either spelling)."""
    found = {canonical_name(name) for name in present}
    return [name for name in MMEB_DATASETS if name not in found]
