"""Unpacking an image archive is bounded: declared sizes, the compression ratio and the free space are checked
before anything is written, and what is written is capped per member and in all. A bomb is one line naming
the archive and the member. Real zip archives throughout; `rge data fetch` on them is in test_data_fetch.py."""

from __future__ import annotations

import shutil
import struct
import time
import zipfile
from pathlib import Path

import pytest

from rge_core.data.archive_layout import MemberPlacement
from rge_core.data.issues import DataError
from rge_core.data.unpack import UnpackLimits, unpack

MB = 1 << 20

KEEP = MemberPlacement().target  # members land where they are named
INTO_IMAGES = MemberPlacement(add="images/").target  # MMEB-train: rows say images/<subset>/...


def archive(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
    return path


def written(dest: Path) -> list[str]:
    return sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())


@pytest.fixture
def bomb(tmp_path) -> Path:
    """Two real images and 64 MB of zeros that deflate to ~64 kB (about 1000:1)."""
    return archive(
        tmp_path / "CIRR.zip",
        {"CIRR/a.png": b"\x89PNG" * 100, "CIRR/b.png": b"x" * 500, "CIRR/zeros.png": bytes(64 * MB)},
    )


def test_a_member_above_the_ratio_is_refused_naming_archive_and_member_before_anything_is_written(tmp_path, bomb):
    dest = tmp_path / "dest"
    started = time.monotonic()
    with pytest.raises(DataError) as raised:
        unpack(bomb, dest, INTO_IMAGES, tmp_path / "scratch")
    message = str(raised.value)
    assert message.startswith(f"{bomb}: member 'CIRR/zeros.png': ") and "\n" not in message
    assert "above the limit of 200:1" in message
    assert not dest.exists() or written(dest) == []  # checked before the first write
    assert time.monotonic() - started < 2.0


def test_the_ratio_limit_is_a_setting(tmp_path, bomb):
    dest = tmp_path / "dest"
    assert unpack(bomb, dest, INTO_IMAGES, tmp_path / "scratch", UnpackLimits(max_ratio=5000)) == 3
    assert (dest / "images/CIRR/zeros.png").stat().st_size == 64 * MB


def test_a_highly_compressible_small_member_is_not_a_bomb(tmp_path):
    path = archive(tmp_path / "small.zip", {"a/blank.png": bytes(512 * 1024)})  # 512 kB of zeros: harmless
    assert unpack(path, tmp_path / "dest", KEEP, tmp_path / "scratch") == 1


def test_declared_sizes_are_capped_per_member_and_in_all(tmp_path):
    path = archive(tmp_path / "big.zip", {f"d/{i}.png": bytes([i]) * 3 * MB for i in range(4)})
    with pytest.raises(DataError, match=r"big\.zip: member 'd/0\.png': .*above the cap of 2\.1 MB per member"):
        unpack(
            path, tmp_path / "dest", KEEP, tmp_path / "scratch", UnpackLimits(max_ratio=5000, max_member_bytes=2 * MB)
        )
    with pytest.raises(DataError, match=r"big\.zip: .*12\.6 MB in 4 members, above the cap of 10\.5 MB per archive"):
        unpack(
            path, tmp_path / "dest", KEEP, tmp_path / "scratch", UnpackLimits(max_ratio=5000, max_total_bytes=10 * MB)
        )
    assert not (tmp_path / "dest").exists() or written(tmp_path / "dest") == []


def test_an_archive_that_does_not_fit_the_free_space_is_refused_before_writing(tmp_path, monkeypatch):
    path = archive(tmp_path / "imgs.zip", {"d/a.png": b"a" * 1000, "d/b.png": b"b" * 1000})
    real = shutil.disk_usage

    def nearly_full(target):
        usage = real(target)
        return usage._replace(free=1500 + UnpackLimits().reserve_bytes)

    monkeypatch.setattr(shutil, "disk_usage", nearly_full)
    with pytest.raises(
        DataError, match=r"imgs\.zip: needs 2\.0 kB on .*, which has 1\.5 kB free \(beyond the 1\.0 GB kept free\)"
    ):
        unpack(path, tmp_path / "dest", KEEP, tmp_path / "scratch")
    assert not (tmp_path / "dest").exists() or written(tmp_path / "dest") == []


def _lie_about_size(path: Path, member: str, declared: int) -> None:
    """Rewrite the uncompressed size that the local header and the central directory declare for `member`."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zipped:
        info = zipped.getinfo(member)
    struct.pack_into("<I", data, info.header_offset + 22, declared)  # local file header
    central = data.find(b"PK\x01\x02" + data[info.header_offset + 4 : info.header_offset + 6])
    while central != -1:
        name_length = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46 : central + 46 + name_length] == member.encode():
            struct.pack_into("<I", data, central + 24, declared)
            break
        central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))


def test_a_member_that_lies_about_its_size_is_one_line_and_leaves_nothing_partial(tmp_path):
    path = archive(tmp_path / "liar.zip", {"d/ok.png": b"fine" * 10, "d/liar.png": b"y" * 5 * MB})
    _lie_about_size(path, "d/liar.png", 1000)
    dest = tmp_path / "dest"
    with pytest.raises(DataError) as raised:
        unpack(path, dest, KEEP, tmp_path / "scratch")
    message = str(raised.value)
    assert message.startswith(f"{path}: member 'd/liar.png': ") and "\n" not in message
    assert not (dest / "d/liar.png").exists()  # no partial member in place
    assert not (tmp_path / "scratch").exists()
