"""What the Embedder works on: where a model is (locate.py), plain items as model inputs (items.py), collections
to embed from files or MMEB-eval folders (collection.py) and their chunked, resumable embedding (chunks.py)."""
