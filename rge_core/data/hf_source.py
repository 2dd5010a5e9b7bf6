"""`hf://TIGER-Lab/MMEB-train[@revision]` and `hf://TIGER-Lab/MMEB-eval[@revision]` as `data.source` /
`eval.data`: the dataset fetched (`rge data fetch`, a no-op once complete) into the local cache, then used
as any local folder. The stage's reader validates every row right after, so the check is not run twice.
"""

from __future__ import annotations

from pathlib import Path

from rge_core.data.fetch import HUB_DATASETS, fetch, fetched
from rge_core.data.issues import DataError

HF_SCHEME = "hf://"


def is_hub_source(value: str) -> bool:
    return value.startswith(HF_SCHEME)


class NotFetchedYet(LookupError):
    """An hf:// source that is not in the cache yet, asked for without fetching (`rge run --check`)."""


def hub_folder(
    value: str, cache: Path, name: str, subsets: list[str] | None, setting: str, fetch_missing: bool = True
) -> tuple[Path, str]:
    """(local folder, "repo@commit") of the hf:// `value` of `setting`, which must name HUB_DATASETS[name].
    Without `fetch_missing`, a folder that would need a fetch raises NotFetchedYet instead (no network)."""
    repo_id, _, revision = value.removeprefix(HF_SCHEME).partition("@")
    expected = HUB_DATASETS[name].repo_id
    if repo_id != expected:
        raise DataError(f"{setting}: {value} is not {HF_SCHEME}{expected}[@revision] (the one Hub dataset it takes)")
    revision = revision or "main"
    folder = cache / "hub" / f"{repo_id.replace('/', '--')}@{revision.replace('/', '--')}"
    if not fetch_missing:
        commit = fetched(name, folder, subsets, revision)
        if commit is None:
            raise NotFetchedYet(f"{setting}: {value} is not fetched into {folder} yet (the run fetches it first)")
        return folder.resolve(), f"{repo_id}@{commit}"
    result = fetch(name, folder, subsets, revision, check=False)
    return result.folder, f"{repo_id}@{result.commit}"
