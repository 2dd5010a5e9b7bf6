"""What the Embedder works on: where a model is (locate.py) and plain items as model inputs (items.py)."""
