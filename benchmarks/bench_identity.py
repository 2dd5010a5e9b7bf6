"""What verification costs: a data folder identified by content instead of stat, and an artifact reused only
after its files are checked against its manifest.

    .venv/bin/python benchmarks/bench_identity.py [--images 30000] [--repeats 3] [--quick]

Two comparisons, on a folder of `--images` small PNGs (64 x 64 noise, ~12 kB each, like MMEB thumbnails)
with an MMEB-style parquet file, read from the page cache (the first read from disk costs what the disk
does, in both modes alike):
  * folder identity: baseline = `folder_fingerprint(mode="stat")` (names, sizes, mtimes: the old default);
    candidates = `mode="content"` hashing every file (a process's first call) and the same call again in
    that process (hashes cached while the files' size and times stay the same);
  * reuse: baseline = reading the complete artifact's manifest (what reusing cost before); candidate =
    `ArtifactStore.open` of the same version, which now verifies every file of the artifact (the images,
    copied into it) once per process, uncached here.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _timing import Case, measure, parse_args, print_table
from PIL import Image

from rge_core.artifacts import verify
from rge_core.artifacts.store import ArtifactStore
from rge_core.sources import folder_fingerprint

QUICK = {"images": 200, "repeats": 1}


def write_folder(folder: Path, count: int) -> Path:
    rng = np.random.default_rng(0)
    images = folder / "images"
    images.mkdir(parents=True)
    for index in range(count):
        pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"{index:06d}.png", compress_level=1)
    paths = [f"images/{index:06d}.png" for index in range(count)]
    (folder / "Set").mkdir()
    pq.write_table(pa.table({"qry": ["q"] * count, "qry_image_path": paths}), folder / "Set" / "original.parquet")
    return folder


def uncached(fn):
    def run():
        verify._SEEN.clear()  # a new process: nothing hashed yet
        return fn()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=30000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parse_args(parser, QUICK)
    with tempfile.TemporaryDirectory(prefix="bench-identity-") as scratch:
        folder = write_folder(Path(scratch) / "data", args.images)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        print(f"{args.images} images, {size / 1e6:.0f} MB")
        files = args.images + 1
        stat, content, cached = measure(
            [
                Case("stat fingerprint", lambda: folder_fingerprint(folder, mode="stat"), files, "files"),
                Case("content fingerprint", uncached(lambda: folder_fingerprint(folder)), files, "files"),
                Case("content fingerprint, cached in process", lambda: folder_fingerprint(folder), files, "files"),
            ],
            repeats=args.repeats,
        )
        print_table("folder identity (files/s; baseline: sizes and mtimes only)", stat, [content, cached])

        store = ArtifactStore(str(Path(scratch) / "artifacts"))
        writer = store.open("bench", {"images": args.images}, {}, "code")
        for path in sorted((folder / "images").iterdir()):
            writer.write_bytes(f"images/{path.name}", path.read_bytes())
        writer.finish({})
        version = writer.version_id
        manifest_only, verified = measure(
            [
                Case("manifest read", lambda: store.get(version), files - 1, "files"),
                Case(
                    "verified reuse",
                    uncached(lambda: store.open("bench", {"images": args.images}, {}, "code")),
                    files - 1,
                    "files",
                ),
            ],
            repeats=args.repeats,
        )
        print_table(
            "reuse of a complete artifact (files/s; baseline: its manifest read, no check)", manifest_only, [verified]
        )


if __name__ == "__main__":
    main()
