"""Where an image archive's members go so that the rows' image paths resolve against the data folder.

The rows and the archive need not agree on the leading folders: MMEB-train's rows name `images/CIRR/x.png`
while `images_zip/CIRR.zip` holds `CIRR/x.png` (a folder to add), and an archive may also wrap the rows'
paths in a folder of its own, e.g. `image-tasks/ImageNet-1K/x.jpg` for a row's `ImageNet-1K/x.jpg` (a folder
to strip). The first row path found in the archive, either way, fixes both.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Leading folders of an archive that the rows may not name (one or two levels of wrapping).
_MAX_STRIP = 2


@dataclass(frozen=True)
class MemberPlacement:
    strip: str = ""  # leading folders of the members that the rows do not name ("" or ending in "/")
    add: str = ""  # leading folders that the rows name and the members lack ("" or ending in "/")

    def target(self, member: str) -> str:
        """Where `member` goes, relative to the data folder."""
        return self.add + member.removeprefix(self.strip)


def member_placement(archive: Path, image_paths: Iterable[str], default_add: str) -> MemberPlacement:
    """The placement that makes `image_paths` (rows' paths, relative to the data folder) exist once `archive`
    is extracted; MemberPlacement(add=default_add) when none of them is in the archive."""
    with zipfile.ZipFile(archive) as zipped:
        members = [info.filename for info in zipped.infolist() if not info.is_dir()]
    # member path with k leading folders dropped -> those folders (the shallowest wrapping wins)
    unwrapped: dict[str, str] = {}
    for depth in range(_MAX_STRIP + 1):
        for member in members:
            parts = member.split("/")
            if len(parts) > depth:
                unwrapped.setdefault("/".join(parts[depth:]), "".join(f"{p}/" for p in parts[:depth]))
    for path in image_paths:
        parts = path.split("/")
        for start in range(len(parts)):
            strip = unwrapped.get("/".join(parts[start:]))
            if strip is not None:
                return MemberPlacement(strip, "".join(f"{part}/" for part in parts[:start]))
    return MemberPlacement(add=default_add)
