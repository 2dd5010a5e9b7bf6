"""The Hugging Face Hub side of `rge data fetch`: list a dataset repo's files at one commit, download some of
them into a folder. Both go through a `HubClient`: `HuggingFaceHub` is the real one, huggingface_hub's own code
(resumable downloads, `HF_TOKEN`, `HF_ENDPOINT`, `HF_HUB_OFFLINE`); `LocalSnapshot` serves a folder laid out as
the repo (`rge data fetch ... --from SNAPSHOT`)."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rge_core.data.issues import DataError


@dataclass(frozen=True)
class RepoListing:
    commit: str  # the revision resolved to a commit, so every file comes from the same one
    files: list[str]  # paths inside the repo


class HubClient(Protocol):
    # Where the image archives can be read as they are; None: download them into the data folder (then deleted).
    @property
    def archive_folder(self) -> Path | None: ...

    def listing(self, repo_id: str, revision: str) -> RepoListing: ...

    def download(self, repo_id: str, commit: str, files: list[str], local_dir: Path) -> None: ...


class HuggingFaceHub:
    archive_folder = None

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


# What `huggingface-cli download --local-dir` records per file: its commit on the first line.
_DOWNLOAD_METADATA = Path(".cache/huggingface/download")
_ARCHIVES_AND_TABLES = (".parquet", ".zip")


class LocalSnapshot:
    """A folder laid out as the Hub repo, e.g. what `huggingface-cli download --local-dir` left on a node without
    internet (`rge data fetch ... --from SNAPSHOT`). `download` copies the parquet files it is asked for into the
    destination (nothing when the destination is the snapshot); archives are read where they are
    (`archive_folder`), never copied."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        if not self.folder.is_dir():
            raise DataError(f"--from: {folder} is not a folder")

    @property
    def archive_folder(self) -> Path:
        return self.folder

    def _files(self) -> list[str]:
        # Hidden folders (huggingface_hub's .cache, our .rge-fetch) are bookkeeping, not the repo's files.
        return sorted(
            path.relative_to(self.folder).as_posix()
            for path in self.folder.rglob("*")
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(self.folder).parts)
        )

    def listing(self, repo_id: str, revision: str) -> RepoListing:
        files = self._files()
        return RepoListing(self._commit(files), files)

    def _commit(self, files: list[str]) -> str:
        """The commit huggingface_hub recorded for the snapshot's files; else an id of the parquet files and
        archives (names and sizes), stable while they stay the same."""
        metadata = self.folder / _DOWNLOAD_METADATA
        commits = {
            path.read_text().split("\n", 1)[0].strip() for path in metadata.rglob("*.metadata") if path.is_file()
        }
        if len(commits) > 1:
            raise DataError(
                f"--from: {self.folder} mixes files of {len(commits)} commits ({', '.join(sorted(commits))})"
            )
        if commits:
            return commits.pop()
        digest = hashlib.sha256()
        for name in files:
            if name.endswith(_ARCHIVES_AND_TABLES):
                digest.update(f"{name}\0{(self.folder / name).stat().st_size}\n".encode())
        return f"snapshot-{digest.hexdigest()[:28]}"

    def download(self, repo_id: str, commit: str, files: list[str], local_dir: Path) -> None:
        for name in files:
            source, target = self.folder / name, local_dir / name
            if target.resolve() == source or (target.is_file() and target.stat().st_size == source.stat().st_size):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
