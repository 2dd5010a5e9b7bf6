"""The Hugging Face Hub side of `rge data fetch`: list a dataset repo's files at one commit, download some of
them into a folder. Both go through a `HubClient`, so tests (or a mirror) can serve a local folder laid out
as the Hub snapshot; `HuggingFaceHub` is the real one, huggingface_hub's own code (resumable downloads,
`HF_TOKEN`, `HF_ENDPOINT`, `HF_HUB_OFFLINE`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rge_core.data.issues import DataError


@dataclass(frozen=True)
class RepoListing:
    commit: str  # the revision resolved to a commit, so every file comes from the same one
    files: list[str]  # paths inside the repo


class HubClient(Protocol):
    def listing(self, repo_id: str, revision: str) -> RepoListing: ...

    def download(self, repo_id: str, commit: str, files: list[str], local_dir: Path) -> None: ...


class HuggingFaceHub:
    def listing(self, repo_id: str, revision: str) -> RepoListing:
        import httpx2
        from huggingface_hub import HfApi

        try:
            info = HfApi().dataset_info(repo_id, revision=revision)
        except (OSError, httpx2.HTTPError) as error:  # offline, unknown repo or revision, Hub down
            raise DataError(f"cannot list {repo_id}@{revision} on the Hugging Face Hub: {error}") from error
        if info.sha is None:
            raise DataError(f"{repo_id}@{revision}: the Hub returned no commit")
        return RepoListing(info.sha, [sibling.rfilename for sibling in info.siblings or []])

    def download(self, repo_id: str, commit: str, files: list[str], local_dir: Path) -> None:
        import glob

        import httpx2
        from huggingface_hub import snapshot_download

        # Into local_dir, not the Hub cache: the files are the data folder. An interrupted download resumes
        # from huggingface_hub's `.cache/huggingface/` inside it; a complete file is not fetched again.
        try:
            snapshot_download(
                repo_id,
                repo_type="dataset",
                revision=commit,
                local_dir=local_dir,
                allow_patterns=[glob.escape(name) for name in files],
            )
        except (OSError, httpx2.HTTPError) as error:
            raise DataError(f"download of {repo_id}@{commit} stopped ({error}); rerun to resume it") from error
