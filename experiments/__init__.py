"""Experiments that run the pipeline end to end to test the paper's claims (not part of the installed package)."""
