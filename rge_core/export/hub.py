"""The Hugging Face Hub side of `rge export --push`: upload a folder as a model repo. It goes through a
`ModelHub`, so tests (or a mirror) can stand in for the Hub; `HuggingFaceModelHub` is the real one,
huggingface_hub's own code (`HF_TOKEN`, `HF_ENDPOINT`, `HF_HUB_OFFLINE`), as rge_core/data/hub.py is for fetch."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class HubError(ValueError):
    """The upload failed; the message names the repo and says why."""


class ModelHub(Protocol):
    def upload(self, repo_id: str, folder: Path, commit_message: str) -> str:
        """Create the model repo if needed, upload every file of `folder`; returns the commit's URL."""
        ...


class HuggingFaceModelHub:
    def upload(self, repo_id: str, folder: Path, commit_message: str) -> str:
        import httpx2
        from huggingface_hub import HfApi

        api = HfApi()
        try:
            api.create_repo(repo_id, repo_type="model", exist_ok=True)
            commit = api.upload_folder(
                repo_id=repo_id, folder_path=folder, repo_type="model", commit_message=commit_message
            )
        except (OSError, ValueError, httpx2.HTTPError) as error:  # offline, no token, no rights, Hub down
            raise HubError(f"cannot upload to {repo_id} on the Hugging Face Hub: {error}") from error
        return str(commit.commit_url)
