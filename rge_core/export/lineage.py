"""What a model artifact was made from, read from the manifests' inputs chain: base model, training dataset,
rationales (with their prompt set and its hash), pairs and the data they came from; and the eval artifacts of
the model under the same root.

    lineage = model_lineage(store.get("model-dcf74d5406f1"))
    lineage.rationales.config["prompt_set"]          # {"name": "rge-v1", "hash": "1785ca47..."}
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rge_core.artifacts.local import checkpoint_folder
from rge_core.artifacts.manifest import Manifest
from rge_core.artifacts.store import Artifact, LineageNode
from rge_core.artifacts.verify import folder_digest
from rge_core.data.hf_source import HF_SCHEME, is_hub_source

# A folder in the Hugging Face cache names its repo: .../models--Qwen--Qwen2.5-VL-3B-Instruct/snapshots/<sha>
_HUB_CACHE_FOLDER = re.compile(r"models--([^/]+)--([^/]+)/snapshots/")


@dataclass(frozen=True)
class Lineage:
    model: Manifest
    base: str  # the base model: its artifact id, or the checkpoint folder it was trained from ("" untrained)
    base_manifest: Manifest | None  # the base model artifact, when it is one
    dataset: Manifest | None  # the assembled training dataset (None: an untrained model)
    rationales: Manifest | None
    pairs: Manifest | None
    evals: list[Manifest]  # eval artifacts of this model under the root (by id or by its folder), oldest first

    @property
    def trained(self) -> bool:
        return self.dataset is not None

    @property
    def prompt_set(self) -> dict | None:
        """{"name", "hash"} of the prompt set the oracle rationales were curated with."""
        return self.rationales.config.get("prompt_set") if self.rationales else None

    @property
    def training_source(self) -> str:
        """data.source of the training pairs: "synthetic", a folder, or hf://TIGER-Lab/MMEB-train."""
        return str(self.pairs.config.get("source", "")) if self.pairs else ""

    def hub_datasets(self) -> list[str]:
        """Hub dataset repos of the training and eval data (for the card's metadata)."""
        sources = [self.training_source, *(str(m.config.get("data", "")) for m in self.evals)]
        repos = [s.removeprefix(HF_SCHEME).partition("@")[0] for s in sources if is_hub_source(s)]
        return list(dict.fromkeys(repos))

    def base_hub_id(self) -> str | None:
        """The base model's Hub repo, when its folder is a Hugging Face cache snapshot."""
        match = _HUB_CACHE_FOLDER.search(self.base)
        return f"{match.group(1)}/{match.group(2)}" if match else None


def _find(node: LineageNode, kind: str) -> Manifest | None:
    """The nearest ancestor of `kind` (breadth first)."""
    queue = list(node.inputs.values())
    while queue:
        current = queue.pop(0)
        if current.manifest is not None and current.manifest.kind == kind:
            return current.manifest
        queue += current.inputs.values()
    return None


def _evals_of(artifact: Artifact) -> list[Manifest]:
    """Eval artifacts whose input is the model, or that evaluated its checkpoint folder by path (their version
    names the folder's content digest instead)."""
    digest: list[str] = []

    def of_model(manifest: Manifest) -> bool:
        if manifest.inputs.get("model") == artifact.id:
            return True
        named = manifest.config.get("model")
        if not isinstance(named, dict) or "content" not in named:
            return False
        if not digest:  # hashed once, and only when some eval names a folder
            digest.append(folder_digest(checkpoint_folder(artifact.store, artifact.id)))
        return named["content"] == digest[0]

    return [manifest for manifest in artifact.store.list("eval") if of_model(manifest)]


def model_lineage(artifact: Artifact) -> Lineage:
    store, manifest = artifact.store, artifact.manifest
    tree = store.lineage(artifact.id)
    base_id = manifest.inputs.get("base", "")
    base_manifest = store.get(base_id).manifest if base_id and store.is_complete(base_id) else None
    base = base_id or str(manifest.config.get("base_model", {}).get("path", ""))
    evals = _evals_of(artifact)
    return Lineage(
        model=manifest,
        base=base,
        base_manifest=base_manifest,
        dataset=_find(tree, "dataset"),
        rationales=_find(tree, "rationales"),
        pairs=_find(tree, "pairs"),
        evals=evals,
    )
