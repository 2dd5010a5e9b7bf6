"""The model card (README.md) of an exported model: Hub metadata, the method, the lineage, the training
settings, the eval table of every eval artifact of the model, and how to use it with the Embedder and with plain
transformers. Both usage snippets are executed by tests/test_export.py against a real export.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rge_core.artifacts.manifest import Manifest
from rge_core.data.mmeb_registry import CATEGORIES, SPLITS
from rge_core.embedder import EmbedSettings
from rge_core.evaluation.reports import LABELS, comparable_with_published
from rge_core.export.lineage import Lineage

TAGS = ["rge", "reasoning-guided-embeddings", "multimodal-embeddings", "embeddings", "mmeb"]
METHOD = (
    "Reasoning Guided Embeddings (RGE, arXiv 2511.16150) let a multimodal LLM write a short rationale about a "
    "query before it embeds it: the embedding is the L2-normalised last-layer hidden state at an `<emb>` token "
    "placed after the generated rationale, while candidates embed at once. Training adds an InfoNCE contrastive "
    "loss on embeddings taken after self-generated rationales to a language-modelling loss on curated oracle "
    "rationales, so the model learns both to reason and to embed what it reasoned."
)


@dataclass(frozen=True)
class CardFacts:
    """What the card says beyond the lineage: how the export was made and how to call it."""

    name: str
    model_ref: str  # how usage code names the model: the Hub repo, or the exported folder
    on_hub: bool  # model_ref is a Hub repo (the Embedder loads a local folder: download it first)
    settings: EmbedSettings  # the eval decoding written into generation_config.json
    dtype: str  # of the exported weights
    base_model: str | None  # the base model's Hub repo, when known


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table; a `|` inside a cell (a regex setting) is escaped, or it would split the cell."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows])


def _flat(settings: Mapping, prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key, value in settings.items():
        if isinstance(value, Mapping):
            rows += _flat(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", f"`{value}`"))
    return rows


def _metadata(lineage: Lineage, facts: CardFacts) -> str:
    from huggingface_hub import ModelCardData

    data = ModelCardData(
        base_model=facts.base_model,
        library_name="transformers",
        tags=TAGS,
        datasets=lineage.hub_datasets(),
        pipeline_tag="image-text-to-text",
    )
    return f"---\n{data.to_yaml()}\n---"


def _lineage_section(lineage: Lineage) -> str:
    model = lineage.model
    rows = [["model", f"`{model.id}`", f"method `{model.stats.get('method', 'untrained')}`"]]
    if lineage.base_manifest is not None:
        stats = lineage.base_manifest.stats
        detail = f"tiny random {stats['arch']}, seed {stats['seed']}" if stats.get("source") == "tiny" else ""
        rows.append(["base model", f"`{lineage.base}`", detail])
    elif lineage.base:
        rows.append(["base model", f"`{Path(lineage.base).name}`", "checkpoint folder"])
    if lineage.dataset is not None:
        stats = lineage.dataset.stats
        rows.append(["training dataset", f"`{lineage.dataset.id}`", f"{stats['train']['rows']} train rows"])
    if lineage.rationales is not None:
        generator = lineage.rationales.config.get("generator", "")
        rows.append(["oracle rationales", f"`{lineage.rationales.id}`", f"generator `{generator}`"])
    if lineage.prompt_set:
        name, digest = lineage.prompt_set["name"], lineage.prompt_set["hash"]
        rows.append(["prompt set", f"`{name}`", f"sha256 `{digest}`"])
    if lineage.pairs is not None:
        rows.append(["training pairs", f"`{lineage.pairs.id}`", f"from `{lineage.training_source}`"])
    text = "## Lineage\n\n" + _table(["", "artifact", "details"], rows)
    if not lineage.trained:
        text += "\n\nThis model artifact was not trained by the pipeline: it is the base model itself."
    return text


def _data_of(manifest: Manifest) -> str:
    data = str(manifest.config.get("data", ""))
    if data == "synthetic":
        return f"synthetic benchmark `{manifest.inputs.get('benchmark', '')}`"
    return f"`{data}`" if data.startswith("hf://") else f"`{Path(data).name}` (folder)"


def _eval_row(manifest: Manifest) -> list[str]:
    stats = manifest.stats
    aggregates, rewrites = stats["aggregates"], stats.get("rewrites") or {}
    groups = ("overall", *CATEGORIES, *SPLITS)

    def p1(group: str) -> str:
        g = aggregates.get(group, {})
        return f"{100 * g['metrics']['precision@1']:.1f}" if g.get("num_datasets") else "–"

    reasoning = (
        f"on ({manifest.config.get('decoding', {}).get('max_new_tokens')} tokens)" if stats.get("reasoning") else "off"
    )
    comparable = comparable_with_published(aggregates, rewrites)["overall"]
    return [
        f"`{manifest.id}`",
        _data_of(manifest),
        str(stats.get("datasets", "")),
        reasoning,
        *(p1(group) for group in groups),
        "yes" if comparable else "no",
    ]


def _eval_section(lineage: Lineage) -> str:
    if not lineage.evals:
        return "## Evaluation\n\nNo eval artifact of this model under the artifact root (run `rge eval --model ...`)."
    header = ["eval", "data", "datasets", "reasoning", *(LABELS.get(g, g) for g in ("overall", *CATEGORIES, *SPLITS))]
    table = _table([*header, "comparable with published MMEB-V1"], [_eval_row(m) for m in lineage.evals])
    return (
        "## Evaluation\n\nPrecision@1 (%), tie-pessimistic (a query counts only when its ground truth scores strictly "
        "highest), unweighted means over the datasets of each group; each eval artifact's `published.md` has the "
        "full comparison.\n\n"
        + table
        + "\n\nA run is comparable with the published MMEB-V1 numbers (RGE-3B 70.1 overall) only on all 36 "
        "MMEB-V1 datasets with the RGE release's rewrite files for queries and candidates."
    )


def _usage(facts: CardFacts) -> str:
    s = facts.settings
    if facts.on_hub:
        folder = f'snapshot_download("{facts.model_ref}")'
        download = "from huggingface_hub import snapshot_download\n"
    else:
        folder, download = f'"{facts.model_ref}"', ""
    decoding = (
        f"max_new_tokens={s.decoding.max_new_tokens}, repetition_penalty={s.decoding.repetition_penalty}, "
        f'on_budget_hit="{s.on_budget_hit}"'
    )
    last_token = s.on_budget_hit == "last-token"
    embedder = f"""```python
{download}from PIL import Image
from rge_core import Embedder  # the rge package (pip install -e . in its repository)

embedder = Embedder.load({folder}, {decoding})
red = Image.new("RGB", (64, 64), "red")
queries, rationales = embedder.encode_queries(
    [{{"text": "<|image_1|>\\nWhat colour is the square?", "image": red}}], return_rationales=True
)
candidates = embedder.encode_candidates([{{"text": "red"}}, {{"text": "blue"}}])
print(rationales[0].text, queries @ candidates.T)  # L2-normalised float32: cosine similarities
```"""
    plain = f'''```python
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

path = "{facts.model_ref}"
processor = AutoProcessor.from_pretrained(path)
model = AutoModelForImageTextToText.from_pretrained(path).eval()
tokenizer = processor.tokenizer
emb_id = tokenizer.convert_tokens_to_ids("<emb>")
image_tokens = "<|vision_start|><|image_pad|><|vision_end|>"
last_token_on_budget_hit = {last_token}  # eval.on_budget_hit: {s.on_budget_hit}


def user_turn(text, image):
    """The chat prompt up to the answer; the image's tokens replace MMEB's <|image_1|>, or come first."""
    if image is None:
        text = text.replace("<|image_1|>", "")  # nothing else changes: a trailing newline stays
    elif "<|image_1|>" in text:
        text = text.replace("<|image_1|>", image_tokens, 1).replace("<|image_1|>", "")
    else:
        text = image_tokens + text
    messages = [{{"role": "user", "content": text}}]
    return tokenizer.apply_chat_template(
        messages, chat_template=processor.chat_template, add_generation_prompt=True, tokenize=False
    )


def stretched(image):
    """A side under 28 pixels is stretched to 28 first (width, then height), as the RGE release does."""
    if image.size[0] < 28:
        image = image.resize((28, image.size[1]))
    if image.size[1] < 28:
        image = image.resize((image.size[0], 28))
    return image.convert("RGB")


@torch.inference_mode()
def embed(text, image=None, reasoning=True):
    """(L2-normalised vector, rationale): greedy reasoning up to <emb> (generation_config.json), then the
    last-layer state at <emb>; candidates embed with reasoning=False."""
    head, images = user_turn(text, image), [stretched(image)] if image is not None else None
    rationale, tail = "", "<emb>"
    if reasoning:
        inputs = processor(text=[head], images=images, return_tensors="pt")
        new = model.generate(**inputs)[0, inputs["input_ids"].shape[1] :].tolist()
        rationale = tokenizer.decode(new[: new.index(emb_id)] if emb_id in new else new, skip_special_tokens=True)
        if emb_id not in new and last_token_on_budget_hit:  # embed at the rationale's last token
            tail = ""
    inputs = processor(text=[head + rationale + tail], images=images, return_tensors="pt")
    state = model.model(**inputs).last_hidden_state[0, -1]
    return torch.nn.functional.normalize(state.float(), dim=-1), rationale


query, rationale = embed("<|image_1|>\\nWhat colour is the square?", Image.new("RGB", (64, 64), "red"))
candidate, _ = embed("red", reasoning=False)
print(rationale, float(query @ candidate))
```'''
    return (
        "## Usage\n\n"
        "`generation_config.json` holds the evaluation's decoding: greedy, "
        f"`max_new_tokens={s.decoding.max_new_tokens}`, `repetition_penalty={s.decoding.repetition_penalty}`, "
        "and `<emb>` as the "
        "end of generation. A rationale that reaches the budget without `<emb>` "
        + (
            "is embedded at its last token (as the RGE release's eval).\n\n"
            if last_token
            else "gets `<emb>` appended.\n\n"
        )
        + "### With rge's Embedder\n\nBatched by length, rationales and vectors as numpy arrays "
        "(docs/inference.md of the rge repository):\n\n"
        f"{embedder}\n\n"
        "### With plain transformers\n\n"
        f"{plain}"
    )


def model_card(lineage: Lineage, facts: CardFacts) -> str:
    model = lineage.model
    training = (
        "## Training settings\n\n" + _table(["setting", "value"], [[k, v] for k, v in _flat(model.config)])
        if lineage.trained
        else ""
    )
    parts = [
        _metadata(lineage, facts),
        f"# {facts.name}",
        f"A multimodal embedding model that reasons before it embeds, exported from the rge pipeline's model "
        f"artifact `{model.id}` (weights in {facts.dtype}, LoRA/DoRA adapters merged).",
        f"## Method\n\n{METHOD}",
        _lineage_section(lineage),
        training,
        _eval_section(lineage),
        _usage(facts),
    ]
    return "\n\n".join(part for part in parts if part) + "\n"
