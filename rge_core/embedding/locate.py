"""Where a model named by the user lives: a model artifact id (under an artifact root), a model artifact folder,
or a plain checkpoint folder (e.g. an `rge export`). Artifacts are checked against their manifest before use.

    source = locate_model("model-3f2a9c01b7de")        # or "rge-artifacts/model/model-3f2a…", or "my-export/"
    source.folder, source.artifact                      # the checkpoint folder; the artifact (None for a folder)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rge_core.artifacts.local import checkpoint_folder
from rge_core.artifacts.manifest import MANIFEST_NAME
from rge_core.artifacts.store import Artifact, ArtifactError, ArtifactStore, looks_like_version_id


class ModelNotFound(ValueError):
    """A model name that is no model artifact and no checkpoint folder; the message names the setting."""


@dataclass(frozen=True)
class ModelSource:
    folder: Path  # the checkpoint folder transformers loads
    artifact: Artifact | None  # the model artifact it belongs to; None for a plain checkpoint folder


def _artifact_of_folder(folder: Path) -> Artifact:
    """The artifact whose folder this is: `<root>/<kind>/<id>/` with its manifest."""
    resolved = folder.resolve()
    return ArtifactStore(str(resolved.parent.parent)).get(resolved.name)


def _named_artifact(text: str, path: Path, root: str | None, setting: str) -> Artifact | None:
    """The artifact `text` names (by folder or id), or None for a plain checkpoint folder."""
    if (path / MANIFEST_NAME).is_file():
        try:
            return _artifact_of_folder(path)
        except ArtifactError:
            if (path / "config.json").is_file():  # a checkpoint folder with a manifest.json of its own
                return None
            raise
    if looks_like_version_id(text) and not path.exists():
        store = ArtifactStore(root)
        if not store.is_complete(text):
            raise ModelNotFound(f"{setting}: no complete artifact {text} under {store.root}")
        return store.get(text)
    if (path / "config.json").is_file():
        return None
    raise ModelNotFound(
        f"{setting}: {text} is neither a model artifact (id or folder) nor a checkpoint folder (no config.json)"
    )


def locate_model(model: str | Path, root: str | None = None, setting: str = "model") -> ModelSource:
    """`model` as a checkpoint folder; `root` is the artifact root for an id (default $RGE_ARTIFACTS, else
    ./rge-artifacts). Raises ModelNotFound in one line naming `setting`."""
    path = Path(model)
    artifact = _named_artifact(str(model), path, root, setting)
    if artifact is None:
        return ModelSource(path.resolve(), None)
    if artifact.manifest.kind != "model":
        raise ModelNotFound(f"{setting}: {artifact.id} is not a model artifact (its kind is {artifact.manifest.kind})")
    checkpoint = artifact.manifest.stats.get("checkpoint", "")
    # Only the weights, config and tokenizer are read: optimizer states and logs of a trained model stay unhashed.
    artifact.verify([rel for rel in artifact.manifest.files if not checkpoint or rel.startswith(f"{checkpoint}/")])
    return ModelSource(checkpoint_folder(artifact.store, artifact.id), artifact)
