"""What `rge embed` reads and writes: collections to embed from files or MMEB-eval folders (collection.py) and
their chunked, resumable embedding into the artifact (chunks.py)."""
